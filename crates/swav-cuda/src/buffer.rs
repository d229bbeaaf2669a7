//! [`CudaBuffer`]: a typed device buffer, with the bf16 shadow copy a weight keeps for the
//! convolutions and matrix products of mixed precision.

use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaEvent, CudaSlice, DevicePtr};
use half::bf16;

use crate::DType;

/// A buffer in GPU memory: the `Buf` of the backend's `HeadOps` and model operations.
///
/// Its element type is a run-time property ([`DType`]): parameters, gradients, optimiser
/// state, statistics and head buffers are f32; activations follow the backend's
/// [`Precision`](crate::Precision). Every operation accepts either type where it reads or
/// writes activations, and widens to f32 for its arithmetic.
///
/// An f32 buffer used as a convolution or linear weight under mixed precision also owns a
/// bf16 copy of itself, made on first use and kept in step: every write through the backend
/// marks the copy stale, and the optimiser update refreshes it in the same kernel that writes
/// the weight, so the next step reads an up-to-date copy without an extra pass.
///
/// Memory is allocated from the device's stream-ordered pool on the backend's compute
/// stream and returned to it, in stream order, when the buffer is dropped (after any copy
/// of a staged input batch into it, which runs on another stream).
#[derive(Debug)]
pub struct CudaBuffer {
    storage: Storage,
    /// Bumped by every mutable access; a bf16 copy is current when it carries the same value.
    version: u64,
    bf16_copy: Mutex<Option<Bf16Copy>>,
    /// Recorded on the copy stream after it last wrote this buffer (a staged input batch):
    /// the buffer's memory goes back to the pool only after it.
    copy_stream_write: Option<Arc<CudaEvent>>,
}

#[derive(Debug)]
pub(crate) enum Storage {
    F32(CudaSlice<f32>),
    Bf16(CudaSlice<bf16>),
}

#[derive(Debug)]
struct Bf16Copy {
    version: u64,
    data: CudaSlice<bf16>,
}

/// What [`CudaBuffer::bf16_copy`] found.
pub(crate) enum CopyState {
    /// The copy exists and matches the buffer: read it at this address.
    Current(u64),
    /// The copy exists but is stale: refresh it at this address, then it is current.
    Stale(u64),
    /// No copy yet: the caller allocates one with [`CudaBuffer::install_bf16_copy`].
    Missing,
}

impl CudaBuffer {
    pub(crate) fn from_f32(slice: CudaSlice<f32>) -> Self {
        Self::new(Storage::F32(slice))
    }

    pub(crate) fn from_bf16(slice: CudaSlice<bf16>) -> Self {
        Self::new(Storage::Bf16(slice))
    }

    fn new(storage: Storage) -> Self {
        Self {
            storage,
            version: 0,
            bf16_copy: Mutex::new(None),
            copy_stream_write: None,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::F32(s) => s.len(),
            Storage::Bf16(s) => s.len(),
        }
    }

    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match &self.storage {
            Storage::F32(_) => DType::F32,
            Storage::Bf16(_) => DType::Bf16,
        }
    }

    /// Bytes of device memory the buffer's elements occupy (its bf16 copy excluded).
    pub fn num_bytes(&self) -> usize {
        self.len() * self.dtype().size()
    }

    /// The device address of element 0, for reading.
    pub(crate) fn ptr(&self) -> u64 {
        match &self.storage {
            Storage::F32(s) => s.device_ptr(s.stream()).0,
            Storage::Bf16(s) => s.device_ptr(s.stream()).0,
        }
    }

    /// The device address of element `offset`, for reading.
    pub(crate) fn ptr_at(&self, offset: usize) -> u64 {
        self.ptr() + (offset * self.dtype().size()) as u64
    }

    /// The device address of element 0, for writing: the bf16 copy becomes stale.
    pub(crate) fn ptr_mut(&mut self) -> u64 {
        self.version += 1;
        self.ptr()
    }

    /// The device address of element `offset`, for writing (see [`Self::ptr_mut`]).
    pub(crate) fn ptr_mut_at(&mut self, offset: usize) -> u64 {
        self.ptr_mut() + (offset * self.dtype().size()) as u64
    }

    /// For a kernel that writes the buffer *and* its bf16 copy (the optimiser): the address
    /// of the buffer and of the copy if one exists, which stays current.
    pub(crate) fn ptr_mut_with_copy(&mut self) -> (u64, Option<u64>) {
        let ptr = self.ptr_mut();
        let version = self.version;
        let mut copy = self.bf16_copy.lock().unwrap_or_else(|e| e.into_inner());
        let copy_ptr = copy.as_mut().map(|c| {
            c.version = version;
            c.data.device_ptr(c.data.stream()).0
        });
        (ptr, copy_ptr)
    }

    /// The state of the bf16 copy of this (f32) buffer. A `Stale` copy is marked current:
    /// the caller must refresh it before anything reads it.
    pub(crate) fn bf16_copy(&self) -> CopyState {
        let mut copy = self.bf16_copy.lock().unwrap_or_else(|e| e.into_inner());
        match copy.as_mut() {
            None => CopyState::Missing,
            Some(c) => {
                let ptr = c.data.device_ptr(c.data.stream()).0;
                if c.version == self.version {
                    CopyState::Current(ptr)
                } else {
                    c.version = self.version;
                    CopyState::Stale(ptr)
                }
            }
        }
    }

    /// Installs a freshly allocated bf16 copy, current from now on (the caller fills it);
    /// returns its address.
    pub(crate) fn install_bf16_copy(&self, data: CudaSlice<bf16>) -> u64 {
        let ptr = data.device_ptr(data.stream()).0;
        let mut copy = self.bf16_copy.lock().unwrap_or_else(|e| e.into_inner());
        *copy = Some(Bf16Copy {
            version: self.version,
            data,
        });
        ptr
    }

    /// Notes that the copy stream writes this buffer until `done` (recorded there after the
    /// write) completes: freeing the buffer waits for it.
    pub(crate) fn written_on_copy_stream(&mut self, done: &Arc<CudaEvent>) {
        self.copy_stream_write = Some(done.clone());
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Mutable access to the storage (for library calls that take cudarc slices): the bf16
    /// copy becomes stale.
    pub(crate) fn storage_mut(&mut self) -> &mut Storage {
        self.version += 1;
        &mut self.storage
    }
}

impl Drop for CudaBuffer {
    fn drop(&mut self) {
        // The memory is freed on the compute stream when the storage drops, right after
        // this; a copy-stream write still in flight must come first.
        if let Some(done) = self.copy_stream_write.take() {
            let stream = match &self.storage {
                Storage::F32(s) => s.stream(),
                Storage::Bf16(s) => s.stream(),
            };
            stream.context().record_err(stream.wait(&done));
        }
    }
}
