//! [`ActivationOps`] for [`CudaBackend`]: activation buffers in the activation element type,
//! and staged input batches (`stage_inputs` / `await_staged_inputs`), so that a batch goes
//! to the GPU while the previous step computes.
//!
//! [`BatchUploader`] owns a copy stream and two slots, each a pinned (page-locked) host
//! buffer and a device staging buffer holding one whole batch (every resolution group of a
//! multi-crop batch, back to back, f32 NHWC). Staging a batch:
//! 1. waits (on the host) for the slot's `copied` event, so that its previous
//!    host-to-device copy has finished reading the pinned buffer, then copies the host
//!    groups into that buffer (double buffering makes the wait rare);
//! 2. on the copy stream: copies the pinned buffer to the device staging buffer (a DMA that
//!    overlaps whatever the compute stream is doing) and records `copied`, waits for every
//!    piece of work the compute stream had been given so far (it may still read the input
//!    buffers), and converts each group into its input buffer (bf16 under mixed precision);
//! 3. records the slot's `ready` event on the copy stream.
//!
//! The slot keeps its own `copied` event because cudarc's pinned buffers only record theirs
//! when the context tracks events, which the backend turns off (`context.rs`): without it,
//! `PinnedHostSlice::as_mut_slice` and its drop would not wait for a copy in flight. A slot
//! that is replaced (a batch of another size) waits for `copied` before its pinned memory is
//! freed.
//!
//! Awaiting makes the compute stream wait for the `ready` event of every batch staged since
//! the last await, without blocking the host. A training loop awaits batch `i`, stages batch
//! `i + 1` into its second set of input buffers and runs step `i`: the copy of batch `i + 1`
//! runs during step `i`, whose loss download is the first point where the host waits. An
//! input buffer dropped before its batch was awaited still waits for the copy before its
//! memory returns to the pool (`CudaBuffer`'s drop).

use std::sync::Arc;
use swav_nn::ActivationOps;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaEvent, CudaSlice, CudaStream, DevicePtr, PinnedHostSlice};

use crate::profile::OpCategory;
use crate::raw_view::RawView;
use crate::{CudaBackend, CudaBuffer, CudaError, DType};

/// Batches in flight at once: one being computed on, one being copied.
const SLOTS: usize = 2;

/// One batch's worth of staging memory.
#[derive(Debug)]
struct Slot {
    /// Pinned host memory, read by the host-to-device copy.
    host: PinnedHostSlice<f32>,
    /// Recorded on the copy stream right after the copy out of `host`: until it completes,
    /// `host` must be neither written nor freed.
    copied: CudaEvent,
    /// The batch on the device in f32, before its conversion into the input buffers.
    device: CudaSlice<f32>,
    /// Recorded on the copy stream once the batch sits converted in the input buffers.
    ready: Arc<CudaEvent>,
}

impl Slot {
    /// The pinned buffer, once the last copy out of it has finished.
    fn writable_host(&mut self) -> Result<&mut [f32], CudaError> {
        self.copied.synchronize()?;
        Ok(self.host.as_mut_slice()?)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The pinned memory is freed right after this; the copy out of it must be done. A
        // failure has nowhere to go but the context's error state, which
        // `CudaBackend::synchronize` reports.
        let result = self.copied.synchronize();
        self.copied.context().record_err(result);
    }
}

/// The copy stream and the double-buffered staging memory of a [`CudaBackend`].
#[derive(Debug)]
pub(crate) struct BatchUploader {
    copy: Arc<CudaStream>,
    slots: [Option<Slot>; SLOTS],
    next: usize,
    /// Slots staged since the last await.
    pending: Vec<usize>,
    /// Recorded on the compute stream at each staging; the conversion waits for it.
    compute_mark: CudaEvent,
}

impl BatchUploader {
    /// A copy stream for `backend`'s GPU; staging memory comes with the first batch.
    pub(crate) fn new(backend: &CudaBackend) -> Result<Self, CudaError> {
        let ctx = backend.context();
        Ok(Self {
            copy: ctx.new_stream()?,
            slots: [None, None],
            next: 0,
            pending: Vec::with_capacity(SLOTS),
            compute_mark: ctx.new_event(Some(CUevent_flags::CU_EVENT_DISABLE_TIMING))?,
        })
    }

    /// Stages `groups` into `inputs` (see the module documentation).
    pub(crate) fn stage(
        &mut self,
        backend: &CudaBackend,
        groups: &[&[f32]],
        inputs: &mut [CudaBuffer],
    ) -> Result<(), CudaError> {
        assert_eq!(groups.len(), inputs.len(), "one input buffer per group");
        for (group, input) in groups.iter().zip(inputs.iter()) {
            assert!(
                input.len() >= group.len(),
                "an input buffer of {} values is shorter than its group of {}",
                input.len(),
                group.len()
            );
        }
        let total: usize = groups.iter().map(|g| g.len()).sum();
        let index = self.next;
        self.next = (index + 1) % SLOTS;
        let slot = ensure_slot(&mut self.slots[index], &self.copy, backend, total)?;

        let host = slot.writable_host()?;
        let mut offset = 0;
        for group in groups {
            host[offset..offset + group.len()].copy_from_slice(group);
            offset += group.len();
        }

        let timing = backend
            .profiler()
            .and_then(|mut p| p.copy_start(&self.copy));
        self.copy.memcpy_htod(&slot.host, &mut slot.device)?;
        slot.copied.record(&self.copy)?;
        self.compute_mark.record(backend.stream())?;
        self.copy.wait(&self.compute_mark)?;
        let staged = slot.device.device_ptr(&self.copy).0;
        let mut offset = 0;
        for (group, input) in groups.iter().zip(inputs.iter_mut()) {
            let (dtype, ptr) = (input.dtype(), input.ptr_mut());
            backend.convert_on(
                &self.copy,
                RawView::new(staged, DType::F32, offset),
                RawView::new(ptr, dtype, 0),
                group.len(),
            )?;
            offset += group.len();
        }
        slot.ready.record(&self.copy)?;
        for input in inputs.iter_mut() {
            input.written_on_copy_stream(&slot.ready);
        }
        if let Some(mut profiler) = backend.profiler() {
            profiler.copy_end(&self.copy, timing);
        }
        if !self.pending.contains(&index) {
            self.pending.push(index);
        }
        Ok(())
    }

    /// Makes `compute` wait for every batch staged since the last call.
    pub(crate) fn await_staged(&mut self, compute: &CudaStream) -> Result<(), CudaError> {
        for index in self.pending.drain(..) {
            let slot = self.slots[index].as_ref().expect("a pending slot exists");
            compute.wait(&slot.ready)?;
        }
        Ok(())
    }
}

/// `slot`, holding exactly `total` values (reallocated when the batch size changes).
fn ensure_slot<'s>(
    slot: &'s mut Option<Slot>,
    copy: &Arc<CudaStream>,
    backend: &CudaBackend,
    total: usize,
) -> Result<&'s mut Slot, CudaError> {
    let len = total.max(1);
    if slot.as_ref().is_none_or(|s| s.host.len() != len) {
        // Dropping the old slot waits for its last copy out of the pinned memory and frees
        // its staging buffer in copy-stream order.
        *slot = None;
        let ctx = backend.context();
        *slot = Some(Slot {
            // SAFETY: every value is written by `stage` before the slot is copied.
            host: unsafe { ctx.alloc_pinned_with_flags::<f32>(len, 0) }?,
            copied: ctx.new_event(Some(CUevent_flags::CU_EVENT_DISABLE_TIMING))?,
            // SAFETY: written by the host-to-device copy before the conversion reads it.
            device: unsafe { copy.alloc::<f32>(len) }?,
            ready: Arc::new(ctx.new_event(Some(CUevent_flags::CU_EVENT_DISABLE_TIMING))?),
        });
    }
    Ok(slot.as_mut().expect("allocated above"))
}

impl Drop for BatchUploader {
    fn drop(&mut self) {
        // The staging buffers are freed on the copy stream, which must be done with them.
        // A failure here has nowhere to go but the context's error state, which
        // `CudaBackend::synchronize` reports.
        let result = self.copy.synchronize();
        self.copy.context().record_err(result);
    }
}

impl ActivationOps for CudaBackend {
    /// Allocates an activation buffer of `len` zeros, in the activation element type.
    fn alloc_activation(&mut self, len: usize) -> Result<CudaBuffer, CudaError> {
        let _op = self.profile_op("alloc_activation", OpCategory::Memory);
        self.alloc(len, self.activation_dtype())
    }

    /// Starts moving one input batch to the GPU: `groups[g]` (host f32 NHWC) into the
    /// activation buffer `inputs[g]`, through pinned memory and the copy stream, converted to
    /// the buffers' element type. Returns once the host slices have been copied into pinned
    /// memory. The copy waits for all work enqueued before this call; work enqueued later
    /// sees the batch after [`await_staged_inputs`](Self::await_staged_inputs) (the swav-nn
    /// `Backend` method of the same name).
    fn stage_inputs(
        &mut self,
        groups: &[&[f32]],
        inputs: &mut [CudaBuffer],
    ) -> Result<(), CudaError> {
        let mut uploader = match self.uploader.take() {
            Some(uploader) => uploader,
            None => BatchUploader::new(self)?,
        };
        let result = uploader.stage(self, groups, inputs);
        self.uploader = Some(uploader);
        result
    }

    /// Makes all work enqueued from now on wait until every batch staged so far has
    /// arrived, without blocking the host.
    fn await_staged_inputs(&mut self) -> Result<(), CudaError> {
        let _op = self.profile_op("await_staged_inputs", OpCategory::Data);
        match self.uploader.as_mut() {
            Some(uploader) => uploader.await_staged(&self.device.stream),
            None => Ok(()),
        }
    }
}
