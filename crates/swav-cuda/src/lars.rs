//! The LARC + SGD step of every parameter of the model in two kernel launches.
//!
//! [`OptimizerOps::lars_step`](swav_nn::OptimizerOps::lars_step) is [`swav_core::Lars::step`] applied to a whole list of
//! tensors at once, with the same results: `lars_norms` computes every tensor's parameter
//! and gradient norms (chunked sums, added per tensor in chunk order) and applies
//! `Lars::scaling` on the device; `lars_update` then updates every chunk of every tensor
//! (momentum buffer, parameter, and the parameter's bf16 copy when it has one). Nothing is
//! read back to the host, whereas the per-tensor `Lars::step` waits for two norms per tensor.
//!
//! The tensor table (addresses, lengths, flags, the chunk map) is uploaded only when it
//! changes: on the first step (momentum buffers are created), on the second (they exist), and
//! when the set of tensors with a gradient changes (the prototypes unfreeze).

use cudarc::driver::{CudaSlice, DevicePtr};
use swav_core::{Lars, LarsParam, ParamKind};
use swav_nn::OptimizerOps;

use crate::kernels::KernelArg;
use crate::profile::OpCategory;
use crate::{CudaBackend, CudaBuffer, CudaError, DType};

/// Elements per chunk (one block of 256 threads each).
const CHUNK_LEN: u64 = 1 << 16;
/// Threads per block of the LARS kernels (`OPT_THREADS` in `lars.cu`).
const THREADS: u32 = 256;
/// Flag bits of the tensor table (see `lars.cu`).
const FLAG_BIAS_OR_NORM: u64 = 1;
const FLAG_FIRST_STEP: u64 = 2;

/// The device copy of the tensor table and the per-tensor scalings.
#[derive(Debug, Default)]
pub(crate) struct LarsTable {
    host: Vec<u64>,
    device: Option<CudaSlice<u64>>,
    scalings: Option<CudaSlice<f32>>,
}

impl OptimizerOps for CudaBackend {
    /// One LARC + SGD step of every tensor in `params` at learning rate `lr`, exactly as
    /// `lars.step(...)` on each tensor in turn (reduction order aside), in two launches.
    fn lars_step(
        &mut self,
        lars: &Lars<f32>,
        params: &mut [LarsParam<'_, CudaBuffer>],
        lr: f32,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("lars_step", OpCategory::Optimizer);
        let active: Vec<usize> = (0..params.len())
            .filter(|&i| params[i].grad.is_some())
            .collect();
        if active.is_empty() {
            return Ok(());
        }
        let tensors = active.len();
        // Sections: p, g, buf, copy, len, flags, chunk_begin (T + 1), chunk_tensor (chunks).
        let mut sections: [Vec<u64>; 6] = Default::default();
        let mut chunk_begin = Vec::with_capacity(tensors + 1);
        let mut chunk_tensor = Vec::new();
        for (t, &i) in active.iter().enumerate() {
            let param = &mut params[i];
            let grad = param.grad.expect("filtered above");
            for (buf, what) in [
                (&*param.param, "parameter"),
                (grad, "gradient"),
                (&*param.momentum, "momentum"),
            ] {
                assert_eq!(buf.dtype(), DType::F32, "lars_step: the {what} must be f32");
            }
            let len = param.param.len();
            assert!(
                grad.len() == len && param.momentum.len() == len,
                "lars_step: parameter, gradient and momentum lengths differ"
            );
            let (p, copy) = param.param.ptr_mut_with_copy();
            let mut flags = 0;
            if param.kind == ParamKind::BiasOrNorm {
                flags |= FLAG_BIAS_OR_NORM;
            }
            if !param.state.initialised {
                flags |= FLAG_FIRST_STEP;
            }
            for (section, value) in sections.iter_mut().zip([
                p,
                grad.ptr(),
                param.momentum.ptr_mut(),
                copy.unwrap_or(0),
                len as u64,
                flags,
            ]) {
                section.push(value);
            }
            chunk_begin.push(chunk_tensor.len() as u64);
            let chunks = (len as u64).div_ceil(CHUNK_LEN).max(1);
            chunk_tensor.extend(std::iter::repeat_n(t as u64, chunks as usize));
        }
        chunk_begin.push(chunk_tensor.len() as u64);
        let total_chunks = chunk_tensor.len();
        let table: Vec<u64> = sections
            .into_iter()
            .flatten()
            .chain(chunk_begin)
            .chain(chunk_tensor)
            .collect();

        let stream = self.device.stream.clone();
        let state = &mut self.lars;
        if state.host != table {
            let fits = state
                .device
                .as_ref()
                .is_some_and(|d| d.len() >= table.len());
            if !fits {
                state.device = Some(stream.alloc_zeros::<u64>(table.len())?);
            }
            let device = state.device.as_mut().expect("allocated above");
            stream.memcpy_htod(&table, &mut device.slice_mut(..table.len()))?;
            state.host = table;
        }
        if state
            .scalings
            .as_ref()
            .is_none_or(|s| s.len() < 2 * tensors)
        {
            state.scalings = Some(stream.alloc_zeros::<f32>(2 * tensors)?);
        }
        let table_ptr = state
            .device
            .as_ref()
            .expect("uploaded above")
            .device_ptr(&stream)
            .0;
        let scalings = state
            .scalings
            .as_ref()
            .expect("allocated above")
            .device_ptr(&stream)
            .0;
        let (partials, counter) = self.reduction.ensure(&stream, 2 * total_chunks, 1)?;

        let tensor_count = tensors as u32;
        let grid = (total_chunks as u32, 1, 1);
        let block = (THREADS, 1, 1);
        let norms_args: [&dyn KernelArg; 12] = [
            &table_ptr,
            &tensor_count,
            &CHUNK_LEN,
            &partials,
            &counter,
            &scalings,
            &lars.trust_coefficient,
            &lars.eps,
            &lars.weight_decay,
            &i32::from(lars.clip),
            &i32::from(lars.exclude_bias_and_norm),
            &lr,
        ];
        self.launch("lars_norms", grid, block, &norms_args)?;
        self.launch(
            "lars_update",
            grid,
            block,
            &[
                &table_ptr,
                &tensor_count,
                &CHUNK_LEN,
                &scalings,
                &lr,
                &lars.momentum,
            ],
        )?;
        for &i in &active {
            params[i].state.initialised = true;
        }
        Ok(())
    }
}
