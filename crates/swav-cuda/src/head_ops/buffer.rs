//! [`BufferOps`] on the GPU: allocation, host transfers (bf16 buffers convert on the way),
//! copies (converting between element types) and fills (`elementwise.cu`).

use cudarc::driver::DevicePtr;
use swav_core::BufferOps;

use super::launch::{Arg::*, Grid, HeadKernel};
use crate::buffer::Storage;
use crate::profile::OpCategory;
use crate::raw_view::RawView;
use crate::{CudaBackend, CudaBuffer, CudaError, DType};

impl CudaBackend {
    /// A device-to-device copy of `bytes` bytes between raw addresses, in stream order.
    fn copy_raw(&self, src: u64, dst: u64, bytes: usize) -> Result<(), CudaError> {
        if bytes == 0 {
            return Ok(());
        }
        // SAFETY: both ranges lie inside live buffers (checked by the callers) and do not
        // overlap.
        unsafe {
            cudarc::driver::result::memcpy_dtod_async(
                dst,
                src,
                bytes,
                self.device.stream.cu_stream(),
            )?;
        }
        Ok(())
    }
}

impl BufferOps<f32> for CudaBackend {
    type Buf = CudaBuffer;
    type Error = CudaError;

    fn zeros(&mut self, len: usize) -> Result<CudaBuffer, CudaError> {
        let _op = self.profile_op("zeros", OpCategory::Memory);
        self.alloc(len, DType::F32)
    }

    fn buf_len(&self, buf: &CudaBuffer) -> usize {
        buf.len()
    }

    fn upload(
        &mut self,
        src: &[f32],
        dst: &mut CudaBuffer,
        offset: usize,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("upload", OpCategory::Data);
        assert!(
            offset + src.len() <= dst.len(),
            "upload past the end of the buffer"
        );
        if src.is_empty() {
            return Ok(());
        }
        let stream = self.device.stream.clone();
        if dst.dtype() == DType::Bf16 {
            let staged = stream.clone_htod(src)?;
            let staged_ptr = staged.device_ptr(&stream).0;
            let dst_ptr = dst.ptr_mut();
            return self.convert_raw(
                RawView::new(staged_ptr, DType::F32, 0),
                RawView::new(dst_ptr, DType::Bf16, offset),
                src.len(),
            );
        }
        if let Storage::F32(slice) = dst.storage_mut() {
            let mut view = slice.slice_mut(offset..offset + src.len());
            stream.memcpy_htod(src, &mut view)?;
        }
        Ok(())
    }

    fn download(
        &mut self,
        src: &CudaBuffer,
        offset: usize,
        dst: &mut [f32],
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("download", OpCategory::Data);
        assert!(
            offset + dst.len() <= src.len(),
            "download past the end of the buffer"
        );
        if dst.is_empty() {
            return Ok(());
        }
        let stream = self.device.stream.clone();
        match src.storage() {
            Storage::F32(slice) => {
                stream.memcpy_dtoh(&slice.slice(offset..offset + dst.len()), dst)?;
            }
            Storage::Bf16(_) => {
                let mut widened = self.alloc_uninit(dst.len(), DType::F32)?;
                let widened_ptr = widened.ptr_mut();
                self.convert_raw(
                    RawView::new(src.ptr(), DType::Bf16, offset),
                    RawView::new(widened_ptr, DType::F32, 0),
                    dst.len(),
                )?;
                if let Storage::F32(slice) = widened.storage() {
                    stream.memcpy_dtoh(&slice.slice(..dst.len()), dst)?;
                }
            }
        }
        self.synchronize()
    }

    fn copy(
        &mut self,
        src: &CudaBuffer,
        src_offset: usize,
        dst: &mut CudaBuffer,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("copy", OpCategory::Memory);
        assert!(
            src_offset + len <= src.len() && dst_offset + len <= dst.len(),
            "copy out of bounds"
        );
        if src.dtype() == dst.dtype() {
            let dst_ptr = dst.ptr_mut_at(dst_offset);
            self.copy_raw(src.ptr_at(src_offset), dst_ptr, len * src.dtype().size())
        } else {
            let (src_dtype, dst_dtype) = (src.dtype(), dst.dtype());
            let dst_ptr = dst.ptr_mut();
            self.convert_raw(
                RawView::new(src.ptr(), src_dtype, src_offset),
                RawView::new(dst_ptr, dst_dtype, dst_offset),
                len,
            )
        }
    }

    fn copy_within(
        &mut self,
        buf: &mut CudaBuffer,
        src_offset: usize,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("copy_within", OpCategory::Memory);
        assert!(
            src_offset + len <= buf.len() && dst_offset + len <= buf.len(),
            "copy_within out of bounds"
        );
        let size = buf.dtype().size();
        let overlap = src_offset < dst_offset + len && dst_offset < src_offset + len;
        let src = buf.ptr_at(src_offset);
        let dst = buf.ptr_mut_at(dst_offset);
        if !overlap {
            return self.copy_raw(src, dst, len * size);
        }
        // Overlapping ranges: go through a temporary (memmove semantics).
        let mut staging = self.alloc_uninit(len, buf.dtype())?;
        let staging_ptr = staging.ptr_mut();
        self.copy_raw(src, staging_ptr, len * size)?;
        self.copy_raw(staging_ptr, dst, len * size)
    }

    fn fill(&mut self, buf: &mut CudaBuffer, value: f32) -> Result<(), CudaError> {
        let n = buf.len();
        let fill = HeadKernel::op("fill").category(OpCategory::Memory);
        self.head_kernel(
            fill,
            Grid::Elements(n),
            &mut [AnyOut(buf, n), Size(n), F32(value)],
        )
    }
}
