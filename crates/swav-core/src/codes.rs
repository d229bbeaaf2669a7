//! The code-assignment step of a SwAV iteration: Sinkhorn codes of the assignment crops,
//! with the queue's scores prepended when it is in use (the first half of the official
//! training loop's per-crop body).

use alloc::vec::Vec;

use crate::{
    Collective, FeatureQueue, HeadOps, Real, SinkhornConfig, SinkhornError, SinkhornPath,
    SinkhornWorkspace, sinkhorn,
};

/// The batch layout the assignment step works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignmentLayout<'a> {
    /// Images per crop on this rank (`bs`).
    pub batch: usize,
    /// Number of prototypes (`K`).
    pub prototypes: usize,
    /// Embedding dimension (`D`).
    pub dim: usize,
    /// The crops whose codes are computed (SwAV: `[0, 1]`).
    pub crops_for_assign: &'a [usize],
}

/// What one iteration hands the assignment step: the batch layout and the model outputs.
#[derive(Debug)]
pub struct AssignmentInputs<'a, B> {
    /// The batch layout.
    pub layout: &'a AssignmentLayout<'a>,
    /// The scores, crop-major `V·bs × K`.
    pub scores: &'a B,
    /// The embeddings, `V·bs × D`.
    pub embeddings: &'a B,
    /// The (just normalised) `K × D` prototype matrix.
    pub prototypes: &'a B,
}

/// Device buffers for [`assign_codes`], sized for one layout (and queue length).
#[derive(Debug)]
pub struct AssignmentWorkspace<B> {
    batch_scores: B,
    batch_codes: B,
    batch_sinkhorn: SinkhornWorkspace<B>,
    queued: Option<QueuedBuffers<B>>,
}

#[derive(Debug)]
struct QueuedBuffers<B> {
    rows: usize,
    scores: B,
    codes: B,
    sinkhorn: SinkhornWorkspace<B>,
}

impl<B> AssignmentWorkspace<B> {
    /// Allocates buffers for `layout`, and for a queue of `queue_rows` rows per rank (0: none).
    pub fn new<T: Real, O: HeadOps<T, Buf = B>>(
        ops: &mut O,
        layout: &AssignmentLayout<'_>,
        queue_rows: usize,
    ) -> Result<Self, O::Error> {
        let (bs, k) = (layout.batch, layout.prototypes);
        let queued = if queue_rows > 0 {
            let rows = queue_rows + bs;
            Some(QueuedBuffers {
                rows,
                scores: ops.zeros(rows * k)?,
                codes: ops.zeros(rows * k)?,
                sinkhorn: SinkhornWorkspace::new(ops, rows, k)?,
            })
        } else {
            None
        };
        Ok(Self {
            batch_scores: ops.zeros(bs * k)?,
            batch_codes: ops.zeros(bs * k)?,
            batch_sinkhorn: SinkhornWorkspace::new(ops, bs, k)?,
            queued,
        })
    }
}

/// Computes the codes of every assignment crop of `inputs` into `codes[i]`
/// (`batch × prototypes`), with the official queue semantics, and updates the queue.
/// Returns the Sinkhorn path taken for each crop.
///
/// Scores that are NaN or infinite stop it with [`SinkhornError::NonFinite`] (see
/// [`sinkhorn`] for what the check costs). Its `row` counts the rows of the matrix Sinkhorn
/// ran on: the crop's `batch` rows of `inputs.scores`, preceded by the queue's rows when the
/// queue is in use for that crop; its `column` is the prototype.
pub fn assign_codes<T, O, C>(
    ops: &mut O,
    comm: &C,
    inputs: AssignmentInputs<'_, O::Buf>,
    mut queue: Option<&mut FeatureQueue<O::Buf>>,
    config: &SinkhornConfig<T>,
    workspace: &mut AssignmentWorkspace<O::Buf>,
    codes: &mut [O::Buf],
) -> Result<Vec<SinkhornPath>, SinkhornError<O::Error, C::Error>>
where
    T: Real,
    O: HeadOps<T>,
    C: Collective<O::Buf>,
{
    let dev = SinkhornError::Device;
    let AssignmentInputs {
        layout,
        scores,
        embeddings,
        prototypes,
    } = inputs;
    let (bs, k, d) = (layout.batch, layout.prototypes, layout.dim);
    assert_eq!(
        codes.len(),
        layout.crops_for_assign.len(),
        "one code buffer per assignment crop"
    );
    let ws = workspace;
    let mut paths = Vec::with_capacity(codes.len());
    for (i, &a) in layout.crops_for_assign.iter().enumerate() {
        let use_queue = match queue.as_deref_mut() {
            Some(q) => q.should_use(ops, i).map_err(dev)?,
            None => false,
        };
        if use_queue {
            let q = queue.as_deref().expect("queue present when in use");
            let buffers = ws
                .queued
                .as_mut()
                .expect("assignment workspace was sized without a queue");
            assert_eq!(buffers.rows, q.rows() + bs, "queue length changed");
            ops.matmul_nt(
                q.embeddings(i),
                prototypes,
                q.rows(),
                k,
                d,
                &mut buffers.scores,
            )
            .map_err(dev)?;
            ops.copy(
                scores,
                a * bs * k,
                &mut buffers.scores,
                q.rows() * k,
                bs * k,
            )
            .map_err(dev)?;
        } else {
            ops.copy(scores, a * bs * k, &mut ws.batch_scores, 0, bs * k)
                .map_err(dev)?;
        }
        if let Some(q) = queue.as_deref_mut() {
            q.push(ops, i, embeddings, a * bs).map_err(dev)?;
        }
        let path = if use_queue {
            let buffers = ws.queued.as_mut().expect("checked above");
            let path = sinkhorn(
                ops,
                comm,
                &buffers.scores,
                config,
                &mut buffers.sinkhorn,
                &mut buffers.codes,
            )?;
            ops.copy(
                &buffers.codes,
                (buffers.rows - bs) * k,
                &mut codes[i],
                0,
                bs * k,
            )
            .map_err(dev)?;
            path
        } else {
            let path = sinkhorn(
                ops,
                comm,
                &ws.batch_scores,
                config,
                &mut ws.batch_sinkhorn,
                &mut ws.batch_codes,
            )?;
            ops.copy(&ws.batch_codes, 0, &mut codes[i], 0, bs * k)
                .map_err(dev)?;
            path
        };
        paths.push(path);
    }
    Ok(paths)
}
