//! [`ActivationOps`]: activation buffers and the input batches staged into them.

use swav_core::HeadOps;

/// Activation buffers and input staging.
pub trait ActivationOps: HeadOps<f32> {
    /// Allocates an activation buffer of `len` elements, zero-initialised.
    fn alloc_activation(&mut self, len: usize) -> Result<Self::Buf, Self::Error>;

    /// Starts moving one input batch to the device: `groups[g]` (host values, NHWC) into
    /// the activation buffer `inputs[g]`. The host slices may be reused as soon as this
    /// returns. The default uploads synchronously
    /// ([`BufferOps::upload`](swav_core::BufferOps::upload)).
    ///
    /// A backend may instead return while the copy is still in flight, so that it overlaps
    /// work already enqueued. The copy then waits for all work enqueued before this call
    /// (which may still read `inputs`), and work enqueued later sees the new values only
    /// after [`ActivationOps::await_staged_inputs`]. A training loop therefore keeps two
    /// sets of input buffers: it awaits batch `i`, stages batch `i + 1` into the other set,
    /// then runs step `i`, whose first synchronising read comes after the copy has started.
    fn stage_inputs(
        &mut self,
        groups: &[&[f32]],
        inputs: &mut [Self::Buf],
    ) -> Result<(), Self::Error> {
        assert_eq!(groups.len(), inputs.len(), "one input buffer per group");
        for (group, input) in groups.iter().zip(inputs.iter_mut()) {
            self.upload(group, input, 0)?;
        }
        Ok(())
    }

    /// Makes all work enqueued from now on wait until every batch staged so far by
    /// [`ActivationOps::stage_inputs`] has arrived. The default has nothing to wait for.
    fn await_staged_inputs(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
