//! swav-cpu (work in progress)

mod batch_norm;
mod conv;
mod gemm;
mod head_ops;
mod l2_norm;
mod linear;
mod partition;
mod pool;
mod scratch;

use core::convert::Infallible;

use swav_nn::{Backend, Conv2dShape, Pool2dShape, StatsOutput};

/// The CPU backend.
#[derive(Debug, Default)]
pub struct CpuBackend {
    /// Flipped weights for stride-1 input gradients.
    flipped: Vec<f32>,
    /// Partial weight gradients of the slots of a weight-gradient product.
    partials: Vec<f32>,
    /// Partial sums of reductions.
    sums: Vec<f64>,
}

impl CpuBackend {
    /// A backend with empty scratch buffers (they grow to the largest layer and are kept).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for CpuBackend {
    fn alloc_activation(&mut self, len: usize) -> Result<Vec<f32>, Infallible> {
        Ok(vec![0.0; len])
    }

    fn conv2d_forward(
        &mut self,
        x: &Vec<f32>,
        weight: &Vec<f32>,
        shape: &Conv2dShape,
        y: &mut Vec<f32>,
        stats: Option<StatsOutput<'_, Vec<f32>>>,
    ) -> Result<(), Infallible> {
        let (k, oc) = (shape.patch_len(), shape.out_channels);
        let b = gemm::view(weight, k, oc, 1, k);
        let stats = stats.map(|s| (&s.shift[..], &mut s.stats[..]));
        conv::conv_gemm(x, shape, &b, 0.0, y, stats, &mut self.sums);
        Ok(())
    }

    fn conv2d_backward_data(
        &mut self,
        dy: &Vec<f32>,
        weight: &Vec<f32>,
        shape: &Conv2dShape,
        dx: &mut Vec<f32>,
        accumulate: bool,
    ) -> Result<(), Infallible> {
        conv::conv_backward_data(
            dy,
            weight,
            shape,
            dx,
            accumulate,
            &mut self.flipped,
            &mut self.sums,
        );
        Ok(())
    }

    fn conv2d_backward_filter(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        shape: &Conv2dShape,
        dweight: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        conv::conv_backward_filter(dy, x, shape, dweight, &mut self.partials);
        Ok(())
    }

    fn batch_norm_stats(
        &mut self,
        x: &Vec<f32>,
        rows: usize,
        channels: usize,
        shift: &Vec<f32>,
        stats: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        batch_norm::stats(x, rows, channels, shift, stats, &mut self.sums);
        Ok(())
    }

    fn batch_norm_finalize(
        &mut self,
        stats: &Vec<f32>,
        channels: usize,
        eps: f32,
        momentum: f32,
        running_mean: &mut Vec<f32>,
        running_var: &mut Vec<f32>,
        saved: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        batch_norm::finalize(
            stats,
            channels,
            eps,
            momentum,
            running_mean,
            running_var,
            saved,
        );
        Ok(())
    }

    fn batch_norm_frozen(
        &mut self,
        running_mean: &Vec<f32>,
        running_var: &Vec<f32>,
        channels: usize,
        eps: f32,
        saved: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        batch_norm::frozen(running_mean, running_var, channels, eps, saved);
        Ok(())
    }

    fn batch_norm_apply(
        &mut self,
        x: &Vec<f32>,
        rows: usize,
        channels: usize,
        saved: &Vec<f32>,
        weight: &Vec<f32>,
        bias: &Vec<f32>,
        residual: Option<&Vec<f32>>,
        relu: bool,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        batch_norm::apply(
            x,
            rows,
            channels,
            saved,
            weight,
            bias,
            residual.map(|r| &r[..]),
            relu,
            y,
        );
        Ok(())
    }

    fn batch_norm_backward_reduce(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        relu_output: Option<&Vec<f32>>,
        rows: usize,
        channels: usize,
        saved: &Vec<f32>,
        sums: &mut Vec<f32>,
        dweight: &mut Vec<f32>,
        dbias: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        batch_norm::backward_reduce(
            dy,
            x,
            relu_output.map(|r| &r[..]),
            rows,
            channels,
            saved,
            sums,
            dweight,
            dbias,
            &mut self.sums,
        );
        Ok(())
    }

    fn batch_norm_backward_apply(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        relu_output: Option<&Vec<f32>>,
        rows: usize,
        channels: usize,
        saved: &Vec<f32>,
        weight: &Vec<f32>,
        sums: Option<&Vec<f32>>,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        batch_norm::backward_apply(
            dy,
            x,
            relu_output.map(|r| &r[..]),
            rows,
            channels,
            saved,
            weight,
            sums.map(|s| &s[..]),
            dx,
        );
        Ok(())
    }

    fn relu_backward(
        &mut self,
        dy: &mut Vec<f32>,
        relu_output: &Vec<f32>,
        len: usize,
    ) -> Result<(), Infallible> {
        batch_norm::relu_backward(&mut dy[..len], &relu_output[..len]);
        Ok(())
    }

    fn max_pool2d_forward(
        &mut self,
        x: &Vec<f32>,
        shape: &Pool2dShape,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        pool::max_forward(x, shape, y);
        Ok(())
    }

    fn max_pool2d_backward(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        shape: &Pool2dShape,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        pool::max_backward(dy, x, shape, dx);
        Ok(())
    }

    fn global_avg_pool_forward(
        &mut self,
        x: &Vec<f32>,
        batch: usize,
        pixels: usize,
        channels: usize,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        pool::avg_forward(x, batch, pixels, channels, y);
        Ok(())
    }

    fn global_avg_pool_backward(
        &mut self,
        dy: &Vec<f32>,
        batch: usize,
        pixels: usize,
        channels: usize,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        pool::avg_backward(dy, batch, pixels, channels, dx);
        Ok(())
    }

    fn linear_forward(
        &mut self,
        x: &Vec<f32>,
        weight: &Vec<f32>,
        bias: Option<&Vec<f32>>,
        rows: usize,
        in_features: usize,
        out_features: usize,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        linear::forward(
            x,
            weight,
            bias.map(|b| &b[..]),
            rows,
            in_features,
            out_features,
            y,
        );
        Ok(())
    }

    fn linear_backward_data(
        &mut self,
        dy: &Vec<f32>,
        weight: &Vec<f32>,
        rows: usize,
        in_features: usize,
        out_features: usize,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        linear::backward_data(dy, weight, rows, in_features, out_features, dx);
        Ok(())
    }

    fn linear_backward_weight(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        rows: usize,
        in_features: usize,
        out_features: usize,
        dweight: &mut Vec<f32>,
        dbias: Option<&mut Vec<f32>>,
    ) -> Result<(), Infallible> {
        linear::backward_weight(
            dy,
            x,
            rows,
            in_features,
            out_features,
            dweight,
            dbias.map(|b| &mut b[..]),
        );
        Ok(())
    }

    fn l2_normalize_rows_forward(
        &mut self,
        x: &Vec<f32>,
        rows: usize,
        cols: usize,
        eps: f32,
        z: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        l2_norm::forward(x, rows, cols, eps, z);
        Ok(())
    }

    fn l2_normalize_rows_backward(
        &mut self,
        dz: &Vec<f32>,
        x: &Vec<f32>,
        z: &Vec<f32>,
        rows: usize,
        cols: usize,
        eps: f32,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        l2_norm::backward(dz, x, z, rows, cols, eps, dx);
        Ok(())
    }
}
