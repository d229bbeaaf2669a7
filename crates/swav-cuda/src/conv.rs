//! Convolutions of the ResNet trunk: cuDNN NHWC (`cudnn.rs`) in the backend's precision.
//!
//! Under mixed precision the activations are bf16 and the weight is read through its bf16
//! copy; cuDNN accumulates in f32 on tensor cores. The weight gradient comes out of cuDNN in
//! bf16 (its filter gradient has the data's element type, as under PyTorch's autocast) and
//! is added into the f32 gradient buffer. Operands in another element type than the
//! precision's are converted first; outputs in another type are converted after.
//!
//! With [`ConvPolicy::pad_stem`](crate::ConvPolicy::pad_stem), a bf16 convolution with fewer
//! than 8 input channels (ResNet's 3-channel stem) runs forward and backward-filter as an
//! 8-channel one: its input and weight are copied into zero-padded temporaries, and the
//! weight gradient's leading channels are added into the gradient. The padded channels add
//! zeros to every sum, so the results are those of the narrow convolution. Its input gradient
//! (never needed for a stem) is computed unpadded.

use std::sync::Arc;
use swav_nn::{BatchNormOps, BatchNormShape, ConvOps};

use cudarc::driver::CudaStream;

use crate::cudnn::{BackwardData, BackwardFilter, ConvEngine, ConvOperands, Forward};
use crate::kernels::len_arg;
use crate::memory::Workspace;
use crate::profile::OpCategory;
use crate::raw_view::RawView;
use crate::{Conv2dShape, CudaBackend, CudaBuffer, CudaError, DType};
use swav_nn::StatsOutput;

/// The input channels of a padded stem convolution: cuDNN's tensor-core kernels for NHWC
/// bf16 want the channel count a multiple of 8.
const PADDED_CHANNELS: usize = 8;

impl ConvOps for CudaBackend {
    /// `y = conv(x, weight)`. When `stats` is given it also receives the per-channel
    /// statistics of `y` as [`Self::batch_norm_stats`] computes them (a separate reduction
    /// kernel after the convolution; fusing it into cuDNN's epilogue is GPU tuning work).
    fn conv2d_forward(
        &mut self,
        x: &CudaBuffer,
        weight: &CudaBuffer,
        shape: &Conv2dShape,
        y: &mut CudaBuffer,
        stats: Option<StatsOutput<'_, CudaBuffer>>,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("conv2d_forward", OpCategory::Conv);
        assert!(y.len() >= shape.output_len(), "conv: output too short");
        if shape.batch == 0 {
            return Ok(());
        }
        let precision = self.activation_dtype();
        let x_op = self.operand(x, precision, shape.input_len())?;
        let w_op = self.weight(weight, precision, shape.weight_len())?;
        let (conv_shape, padded) = self.stem_padding(shape);
        let padded_x = padded
            .then(|| self.pad_channels(x_op.ptr, shape.input_len(), shape.in_channels))
            .transpose()?;
        let padded_w = padded
            .then(|| self.pad_channels(w_op.ptr, shape.weight_len(), shape.in_channels))
            .transpose()?;
        let x_ptr = padded_x.as_ref().map_or(x_op.ptr, CudaBuffer::ptr);
        let w_ptr = padded_w.as_ref().map_or(w_op.ptr, CudaBuffer::ptr);
        let out_len = shape.output_len();
        let converted = y.dtype() != precision;
        let temporary = if converted {
            Some(self.alloc_uninit(out_len, precision)?)
        } else {
            None
        };
        let y_dtype = y.dtype();
        let y_ptr = y.ptr_mut();
        let out_ptr = temporary.as_ref().map_or(y_ptr, CudaBuffer::ptr);
        self.run_conv(|engine, stream, workspace| {
            let operands = ConvOperands {
                input: x_ptr,
                other: w_ptr,
                output: out_ptr,
                beta: 0.0,
            };
            engine.convolve::<Forward>(stream, workspace, &conv_shape, precision, operands)
        })?;
        if converted {
            self.convert_raw(
                RawView::new(out_ptr, precision, 0),
                RawView::new(y_ptr, y_dtype, 0),
                out_len,
            )?;
        }
        if let Some(out) = stats {
            let bn_shape = BatchNormShape {
                rows: shape.output_pixels(),
                channels: shape.out_channels,
            };
            self.batch_norm_stats(y, &bn_shape, out.shift, out.stats)?;
        }
        Ok(())
    }

    /// The input gradient `dx = convᵀ(dy, weight)`, added to `dx` when `accumulate`.
    fn conv2d_backward_data(
        &mut self,
        dy: &CudaBuffer,
        weight: &CudaBuffer,
        shape: &Conv2dShape,
        dx: &mut CudaBuffer,
        accumulate: bool,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("conv2d_backward_data", OpCategory::Conv);
        assert!(
            dx.len() >= shape.input_len(),
            "conv: input gradient too short"
        );
        if shape.batch == 0 {
            return Ok(());
        }
        let precision = self.activation_dtype();
        let dy_op = self.operand(dy, precision, shape.output_len())?;
        let w_op = self.weight(weight, precision, shape.weight_len())?;
        let in_len = shape.input_len();
        let converted = dx.dtype() != precision;
        let temporary = if converted {
            Some(self.alloc_uninit(in_len, precision)?)
        } else {
            None
        };
        let dx_dtype = dx.dtype();
        let dx_ptr = dx.ptr_mut();
        let out_ptr = temporary.as_ref().map_or(dx_ptr, CudaBuffer::ptr);
        let beta = if accumulate && !converted { 1.0 } else { 0.0 };
        self.run_conv(|engine, stream, workspace| {
            let operands = ConvOperands {
                input: dy_op.ptr,
                other: w_op.ptr,
                output: out_ptr,
                beta,
            };
            engine.convolve::<BackwardData>(stream, workspace, shape, precision, operands)
        })?;
        if converted {
            if accumulate {
                self.axpy_raw(1.0, out_ptr, precision, dx_ptr, dx_dtype, in_len)?;
            } else {
                self.convert_raw(
                    RawView::new(out_ptr, precision, 0),
                    RawView::new(dx_ptr, dx_dtype, 0),
                    in_len,
                )?;
            }
        }
        Ok(())
    }

    /// The weight gradient, accumulated: `dweight += Σ dyᵀ · patches(x)` (f32 `dweight`).
    fn conv2d_backward_filter(
        &mut self,
        dy: &CudaBuffer,
        x: &CudaBuffer,
        shape: &Conv2dShape,
        dweight: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let _op = self.profile_op("conv2d_backward_filter", OpCategory::Conv);
        assert!(
            dweight.dtype() == DType::F32 && dweight.len() >= shape.weight_len(),
            "conv: the weight gradient must be f32 of the weight's length"
        );
        if shape.batch == 0 {
            return Ok(());
        }
        let precision = self.activation_dtype();
        let dy_op = self.operand(dy, precision, shape.output_len())?;
        let x_op = self.operand(x, precision, shape.input_len())?;
        let (conv_shape, padded) = self.stem_padding(shape);
        let padded_x = padded
            .then(|| self.pad_channels(x_op.ptr, shape.input_len(), shape.in_channels))
            .transpose()?;
        let x_ptr = padded_x.as_ref().map_or(x_op.ptr, CudaBuffer::ptr);
        let w_len = shape.weight_len();
        let dw_ptr = dweight.ptr_mut();
        // cuDNN's filter gradient has the data's type: bf16 goes through a temporary.
        let temporary = if precision == DType::F32 {
            None
        } else {
            Some(self.alloc_uninit(conv_shape.weight_len(), precision)?)
        };
        let (out_ptr, beta) = match &temporary {
            Some(t) => (t.ptr(), 0.0),
            None => (dw_ptr, 1.0),
        };
        self.run_conv(|engine, stream, workspace| {
            let operands = ConvOperands {
                input: x_ptr,
                other: dy_op.ptr,
                output: out_ptr,
                beta,
            };
            engine.convolve::<BackwardFilter>(stream, workspace, &conv_shape, precision, operands)
        })?;
        if padded {
            let rows = w_len / shape.in_channels;
            self.launch_1d(
                "add_columns_bf16_f32",
                w_len,
                &[
                    &out_ptr,
                    &len_arg(PADDED_CHANNELS),
                    &dw_ptr,
                    &len_arg(shape.in_channels),
                    &len_arg(rows),
                ],
            )?;
        } else if temporary.is_some() {
            self.axpy_raw(1.0, out_ptr, precision, dw_ptr, DType::F32, w_len)?;
        }
        Ok(())
    }
}

impl CudaBackend {
    /// The shape a convolution runs with, and whether that is `shape` padded to
    /// [`PADDED_CHANNELS`] input channels (see the module documentation).
    fn stem_padding(&self, shape: &Conv2dShape) -> (Conv2dShape, bool) {
        let padded = self.config.convolution.pad_stem
            && self.activation_dtype() == DType::Bf16
            && (1..PADDED_CHANNELS).contains(&shape.in_channels);
        if padded {
            (
                Conv2dShape {
                    in_channels: PADDED_CHANNELS,
                    ..*shape
                },
                true,
            )
        } else {
            (*shape, false)
        }
    }

    /// The `len` bf16 values at `src`, rows of `channels`, widened with zero channels to
    /// [`PADDED_CHANNELS`] in a new temporary.
    fn pad_channels(&self, src: u64, len: usize, channels: usize) -> Result<CudaBuffer, CudaError> {
        let rows = len / channels;
        let mut padded = self.alloc_uninit(rows * PADDED_CHANNELS, DType::Bf16)?;
        let dst = padded.ptr_mut();
        self.launch_1d(
            "pad_columns_bf16_bf16",
            rows * PADDED_CHANNELS,
            &[
                &src,
                &len_arg(channels),
                &dst,
                &len_arg(PADDED_CHANNELS),
                &len_arg(rows),
            ],
        )?;
        Ok(padded)
    }

    /// Runs `call` with the cuDNN engine (created on first use), the compute stream and the
    /// shared convolution workspace.
    fn run_conv(
        &mut self,
        call: impl FnOnce(&mut ConvEngine, &Arc<CudaStream>, &mut Workspace) -> Result<(), CudaError>,
    ) -> Result<(), CudaError> {
        self.conv_engine()?;
        let engine = self.conv.as_mut().expect("created above");
        call(engine, &self.device.stream, &mut self.conv_workspace)
    }

    /// `y[..n] += alpha · x[..n]` between raw addresses of the given element types.
    pub(crate) fn axpy_raw(
        &self,
        alpha: f32,
        x: u64,
        x_dtype: DType,
        y: u64,
        y_dtype: DType,
        n: usize,
    ) -> Result<(), CudaError> {
        let name = format!("axpy_{}_{}", x_dtype.suffix(), y_dtype.suffix());
        self.launch_1d(
            &name,
            n,
            &[&alpha, &x, &len_arg(0), &y, &len_arg(0), &len_arg(n)],
        )
    }
}
