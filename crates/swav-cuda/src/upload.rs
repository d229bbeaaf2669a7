//! [`BatchUploader`]: batches go to the GPU while the previous step computes.
//!
//! Two slots, each a pinned (page-locked) host buffer and a device staging buffer holding one
//! batch (every resolution group of the multi-crop batch, back to back, as f32 NHWC). The
//! loader fills a slot's host buffer, [`StagedBatch::submit`] starts its copy on a dedicated
//! copy stream, and [`BatchUploader::receive`] makes the compute stream wait for that copy
//! and converts the staged batch into the step's activation buffers (bf16 under mixed
//! precision). Events order everything without blocking the host: the copy into a slot
//! waits until the compute stream has consumed the slot's previous batch, and the host only
//! waits before overwriting a pinned buffer whose copy is still running.
//!
//! The training loop: `upload(batch 0)`; then each step `receive` (into the step's inputs),
//! `upload(next batch)` (its copy overlaps this step's kernels), and compute.

use std::collections::VecDeque;
use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaEvent, CudaSlice, CudaStream, DevicePtr, PinnedHostSlice};

use crate::{CudaBackend, CudaBuffer, CudaError, DType};

/// Batches in flight at once: one being computed on, one being copied.
const SLOTS: usize = 2;

#[derive(Debug)]
struct Slot {
    host: PinnedHostSlice<f32>,
    device: CudaSlice<f32>,
    /// Recorded on the copy stream when the host-to-device copy is done.
    copied: CudaEvent,
    /// Recorded on the compute stream when the staged batch has been converted.
    consumed: CudaEvent,
}

/// Double-buffered, stream-overlapped upload of multi-crop batches.
#[derive(Debug)]
pub struct BatchUploader {
    compute: Arc<CudaStream>,
    copy: Arc<CudaStream>,
    slots: Vec<Slot>,
    group_lens: Vec<usize>,
    next: usize,
    submitted: VecDeque<usize>,
}

/// A slot whose host buffer the loader fills; [`submit`](Self::submit) starts its copy.
#[derive(Debug)]
pub struct StagedBatch<'a> {
    uploader: &'a mut BatchUploader,
    slot: usize,
}

impl BatchUploader {
    /// Pinned and device buffers for batches made of groups of `group_lens` f32 values each
    /// (e.g. `[2·bs·224·224·3, 6·bs·96·96·3]`), on `backend`'s GPU.
    pub fn new(backend: &CudaBackend, group_lens: &[usize]) -> Result<Self, CudaError> {
        let ctx = backend.context();
        let compute = backend.stream().clone();
        let copy = ctx.new_stream()?;
        let total: usize = group_lens.iter().sum();
        let mut slots = Vec::with_capacity(SLOTS);
        for _ in 0..SLOTS {
            let flags = Some(CUevent_flags::CU_EVENT_DISABLE_TIMING);
            slots.push(Slot {
                // SAFETY: the loader writes every value before the slot is submitted.
                host: unsafe { ctx.alloc_pinned_with_flags::<f32>(total.max(1), 0) }?,
                // SAFETY: written by the copy before the conversion reads it.
                device: unsafe { compute.alloc::<f32>(total.max(1)) }?,
                copied: ctx.new_event(flags)?,
                consumed: ctx.new_event(flags)?,
            });
        }
        // The staging buffers were allocated in compute-stream order; the copy stream may
        // only touch them once that allocation has happened.
        compute.synchronize()?;
        Ok(Self {
            compute,
            copy,
            slots,
            group_lens: group_lens.to_vec(),
            next: 0,
            submitted: VecDeque::new(),
        })
    }

    /// The f32 values per group of one batch.
    pub fn group_lens(&self) -> &[usize] {
        &self.group_lens
    }

    /// The next free slot, for the loader to fill. Waits (on the host) only if that slot's
    /// previous copy is still running. Fails if two batches are submitted and unreceived.
    pub fn stage(&mut self) -> Result<StagedBatch<'_>, CudaError> {
        assert!(
            self.submitted.len() < SLOTS,
            "BatchUploader: {SLOTS} batches are already in flight; receive one first"
        );
        let slot = self.next;
        self.slots[slot].copied.synchronize()?;
        Ok(StagedBatch {
            uploader: self,
            slot,
        })
    }

    /// Stages `groups` (one slice per group, of the lengths given at creation) and submits
    /// them: a host copy into pinned memory, then an asynchronous device copy.
    pub fn upload(&mut self, groups: &[&[f32]]) -> Result<(), CudaError> {
        let mut staged = self.stage()?;
        for (dst, src) in staged.groups_mut()?.into_iter().zip(groups) {
            dst.copy_from_slice(src);
        }
        staged.submit()
    }

    /// Makes the compute stream wait for the oldest submitted batch and converts its groups
    /// into `inputs` (one buffer per group, any element type; the activation type is the
    /// natural one). Returns immediately; the conversion runs in stream order.
    pub fn receive(
        &mut self,
        backend: &mut CudaBackend,
        inputs: &mut [&mut CudaBuffer],
    ) -> Result<(), CudaError> {
        assert_eq!(
            inputs.len(),
            self.group_lens.len(),
            "one input buffer per group"
        );
        let slot = self
            .submitted
            .pop_front()
            .expect("BatchUploader::receive without a submitted batch");
        let slot = &self.slots[slot];
        self.compute.wait(&slot.copied)?;
        let staged = slot.device.device_ptr(&self.compute).0;
        let mut offset = 0;
        for (input, &len) in inputs.iter_mut().zip(&self.group_lens) {
            assert!(input.len() >= len, "input buffer shorter than its group");
            let (dtype, ptr) = (input.dtype(), input.ptr_mut());
            backend.convert_raw(staged, DType::F32, offset, ptr, dtype, 0, len)?;
            offset += len;
        }
        slot.consumed.record(&self.compute)?;
        Ok(())
    }
}

impl StagedBatch<'_> {
    /// The slot's pinned host memory, one mutable slice per group.
    pub fn groups_mut(&mut self) -> Result<Vec<&mut [f32]>, CudaError> {
        let lens = self.uploader.group_lens.clone();
        let mut rest = self.uploader.slots[self.slot].host.as_mut_slice()?;
        let mut groups = Vec::with_capacity(lens.len());
        for len in lens {
            let (group, tail) = rest.split_at_mut(len);
            groups.push(group);
            rest = tail;
        }
        Ok(groups)
    }

    /// Starts the copy of this slot to the device on the copy stream.
    pub fn submit(self) -> Result<(), CudaError> {
        let uploader = self.uploader;
        let slot = &mut uploader.slots[self.slot];
        // The staging buffer may still be read by the conversion of its previous batch.
        uploader.copy.wait(&slot.consumed)?;
        uploader.copy.memcpy_htod(&slot.host, &mut slot.device)?;
        slot.copied.record(&uploader.copy)?;
        uploader.submitted.push_back(self.slot);
        uploader.next = (self.slot + 1) % SLOTS;
        Ok(())
    }
}

impl Drop for BatchUploader {
    fn drop(&mut self) {
        // The staging buffers are freed in compute-stream order; the copy stream must be
        // done with them first. A failure here has nowhere to go but the context's error
        // state, which `CudaBackend::synchronize` reports.
        let result = self.copy.synchronize();
        self.copy.context().record_err(result);
    }
}
