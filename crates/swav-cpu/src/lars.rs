//! The LARC + SGD step of every parameter in two parallel passes over all tensors at once.
//!
//! [`OptimizerOps::lars_step`] applied per tensor ([`swav_core::Lars::step_all`]) makes three
//! parallel passes per tensor (the parameter's norm, the gradient's norm, the update), each
//! with its own rayon dispatch and a vector of partial sums: about 190 dispatches a step for
//! ResNet-18's 62 tensors, most of them over a few hundred values. Here one pass computes
//! both norms of every chunk of every tensor, and one pass updates every chunk.
//!
//! The results are those of the per-tensor step to the last bit: each tensor is cut into
//! the same chunks as [`HeadOps::sum_squares`](swav_core::HeadOps::sum_squares) cuts it, the
//! chunks' `f64` sums are added in chunk order, the scaling is [`Lars::scaling`], and every
//! element is updated by the same [`SgdStep::update`]. So thread counts and the choice of
//! path never change a run.

use rayon::prelude::*;
use swav_core::{Lars, LarsParam, SgdStep};
use swav_nn::OptimizerOps;

use crate::CpuBackend;
use crate::head_ops::{CHUNK, chunk_sum_squares};
use crate::profile::OpScope;

/// One chunk's update: its parameter values, gradient, momentum and the tensor's step.
type ChunkUpdate<'a> = (&'a mut [f32], &'a [f32], &'a mut [f32], SgdStep<f32>);

impl OptimizerOps for CpuBackend {
    fn lars_step(
        &mut self,
        lars: &Lars<f32>,
        params: &mut [LarsParam<'_, Vec<f32>>],
        lr: f32,
    ) -> Result<(), Self::Error> {
        let _op = OpScope::new(&mut self.profile, "lars_step", 0.0);
        let norms = norms(params);
        let mut work: Vec<ChunkUpdate<'_>> = Vec::new();
        for (tensor, &(param_norm, grad_norm)) in params.iter_mut().zip(&norms) {
            let Some(grad) = tensor.grad else {
                continue;
            };
            let step = SgdStep {
                scaling: lars.scaling(param_norm, grad_norm, tensor.kind, lr),
                lr,
                momentum: lars.momentum,
                first: !tensor.state.initialised,
            };
            tensor.state.initialised = true;
            let chunks = tensor
                .param
                .chunks_mut(CHUNK)
                .zip(grad.chunks(CHUNK))
                .zip(tensor.momentum.chunks_mut(CHUNK));
            work.extend(chunks.map(|((p, g), b)| (p, g, b, step)));
        }
        work.into_par_iter().for_each(|(p, g, b, step)| {
            for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                step.update(p, g, b);
            }
        });
        Ok(())
    }
}

/// `(‖p‖, ‖g‖)` of every tensor with a gradient (`(0, 0)` for the others), from one
/// parallel pass over all their chunks.
fn norms(params: &[LarsParam<'_, Vec<f32>>]) -> Vec<(f32, f32)> {
    let chunks: Vec<(usize, &[f32], &[f32])> = params
        .iter()
        .enumerate()
        .filter_map(|(t, x)| x.grad.map(|g| (t, x.param.as_slice(), g.as_slice())))
        .flat_map(|(t, p, g)| {
            p.chunks(CHUNK)
                .zip(g.chunks(CHUNK))
                .map(move |(p, g)| (t, p, g))
        })
        .collect();
    let sums: Vec<(f64, f64)> = chunks
        .par_iter()
        .map(|&(_, p, g)| (chunk_sum_squares(p), chunk_sum_squares(g)))
        .collect();
    let mut parts: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); params.len()];
    for (&(t, _, _), &(p, g)) in chunks.iter().zip(&sums) {
        parts[t].0.push(p);
        parts[t].1.push(g);
    }
    parts
        .iter()
        .map(|(p, g)| {
            let norm = |parts: &[f64]| (parts.iter().sum::<f64>() as f32).sqrt();
            (norm(p), norm(g))
        })
        .collect()
}
