//! [`BufferOps`]: the buffer and error types of a backend, and the operations that
//! allocate, transfer, copy and fill buffers.

use crate::Real;

#[cfg(feature = "alloc")]
use {alloc::vec, alloc::vec::Vec, core::convert::Infallible};

/// A backend's buffers of `T` and its errors; allocation, host transfers, copies, fills.
/// Every other family extends it.
pub trait BufferOps<T: Real> {
    /// A buffer of `T` owned by the device. Matrices are row-major.
    type Buf;
    /// A device failure (out of memory, a failed launch, a lost device).
    type Error: core::fmt::Debug + core::fmt::Display;

    /// Allocates a buffer of `len` zeros.
    fn zeros(&mut self, len: usize) -> Result<Self::Buf, Self::Error>;

    /// The number of elements in `buf`.
    fn buf_len(&self, buf: &Self::Buf) -> usize;

    /// Copies host values into `dst[offset..offset + src.len()]`.
    fn upload(&mut self, src: &[T], dst: &mut Self::Buf, offset: usize) -> Result<(), Self::Error>;

    /// Copies `src[offset..offset + dst.len()]` to the host.
    fn download(
        &mut self,
        src: &Self::Buf,
        offset: usize,
        dst: &mut [T],
    ) -> Result<(), Self::Error>;

    /// Copies `len` elements from `src[src_offset..]` to `dst[dst_offset..]`.
    fn copy(
        &mut self,
        src: &Self::Buf,
        src_offset: usize,
        dst: &mut Self::Buf,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), Self::Error>;

    /// Moves `len` elements inside one buffer from `src_offset` to `dst_offset`; the ranges
    /// may overlap (memmove semantics).
    fn copy_within(
        &mut self,
        buf: &mut Self::Buf,
        src_offset: usize,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), Self::Error>;

    /// Sets every element of `buf` to `value`.
    fn fill(&mut self, buf: &mut Self::Buf, value: T) -> Result<(), Self::Error>;
}

/// [`BufferOps`] on host memory: buffers are `Vec<T>` and nothing fails. Every method is
/// the reference; a host backend overrides those it does otherwise.
#[cfg(feature = "alloc")]
pub trait HostBufferOps<T: Real> {
    /// [`BufferOps::upload`] on host memory.
    fn upload(&mut self, src: &[T], dst: &mut [T], offset: usize) {
        dst[offset..offset + src.len()].copy_from_slice(src);
    }

    /// [`BufferOps::download`] on host memory.
    fn download(&mut self, src: &[T], offset: usize, dst: &mut [T]) {
        dst.copy_from_slice(&src[offset..offset + dst.len()]);
    }

    /// [`BufferOps::copy`] on host memory.
    fn copy(&mut self, src: &[T], src_offset: usize, dst: &mut [T], dst_offset: usize, len: usize) {
        dst[dst_offset..dst_offset + len].copy_from_slice(&src[src_offset..src_offset + len]);
    }

    /// [`BufferOps::copy_within`] on host memory.
    fn copy_within(&mut self, buf: &mut [T], src_offset: usize, dst_offset: usize, len: usize) {
        buf.copy_within(src_offset..src_offset + len, dst_offset);
    }

    /// [`BufferOps::fill`] on host memory.
    fn fill(&mut self, buf: &mut [T], value: T) {
        buf.fill(value);
    }
}

#[cfg(feature = "alloc")]
impl<T: Real, H: HostBufferOps<T>> BufferOps<T> for H {
    type Buf = Vec<T>;
    type Error = Infallible;

    fn zeros(&mut self, len: usize) -> Result<Vec<T>, Infallible> {
        Ok(vec![T::zero(); len])
    }

    fn buf_len(&self, buf: &Vec<T>) -> usize {
        buf.len()
    }

    fn upload(&mut self, src: &[T], dst: &mut Vec<T>, offset: usize) -> Result<(), Infallible> {
        HostBufferOps::upload(self, src, dst, offset);
        Ok(())
    }

    fn download(&mut self, src: &Vec<T>, offset: usize, dst: &mut [T]) -> Result<(), Infallible> {
        HostBufferOps::download(self, src, offset, dst);
        Ok(())
    }

    fn copy(
        &mut self,
        src: &Vec<T>,
        src_offset: usize,
        dst: &mut Vec<T>,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), Infallible> {
        HostBufferOps::copy(self, src, src_offset, dst, dst_offset, len);
        Ok(())
    }

    fn copy_within(
        &mut self,
        buf: &mut Vec<T>,
        src_offset: usize,
        dst_offset: usize,
        len: usize,
    ) -> Result<(), Infallible> {
        HostBufferOps::copy_within(self, buf, src_offset, dst_offset, len);
        Ok(())
    }

    fn fill(&mut self, buf: &mut Vec<T>, value: T) -> Result<(), Infallible> {
        HostBufferOps::fill(self, buf, value);
        Ok(())
    }
}
