//! Max pooling (with the first-maximum tie rule) and global average pooling on NHWC tensors.

use core::convert::Infallible;
use rayon::prelude::*;

use swav_nn::{GlobalPoolShape, Pool2dShape, PoolOps};

use crate::CpuBackend;
use crate::profile::OpScope;

impl PoolOps for CpuBackend {
    fn max_pool2d_forward(
        &mut self,
        x: &Vec<f32>,
        shape: &Pool2dShape,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "max_pool_forward", 0.0);
        max_forward(x, shape, y);
        Ok(())
    }

    fn max_pool2d_backward(
        &mut self,
        dy: &Vec<f32>,
        x: &Vec<f32>,
        shape: &Pool2dShape,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "max_pool_backward", 0.0);
        max_backward(dy, x, shape, dx);
        Ok(())
    }

    fn global_avg_pool_forward(
        &mut self,
        x: &Vec<f32>,
        shape: &GlobalPoolShape,
        y: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "avg_pool_forward", 0.0);
        avg_forward(x, shape, y);
        Ok(())
    }

    fn global_avg_pool_backward(
        &mut self,
        dy: &Vec<f32>,
        shape: &GlobalPoolShape,
        dx: &mut Vec<f32>,
    ) -> Result<(), Infallible> {
        let _op = OpScope::new(&mut self.profile, "avg_pool_backward", 0.0);
        avg_backward(dy, shape, dx);
        Ok(())
    }
}

/// The valid window of output position `o` along one axis: input indices `lo..hi`.
fn window(o: usize, s: &Pool2dShape, extent: usize) -> (usize, usize) {
    let start = (o * s.stride) as isize - s.padding as isize;
    let lo = start.max(0) as usize;
    let hi = ((start + s.kernel as isize).max(0) as usize).min(extent);
    (lo, hi)
}

/// Whether `v` replaces the running maximum `best`: strictly larger, or NaN.
#[inline(always)]
fn wins(v: f32, best: f32) -> bool {
    v > best || v.is_nan()
}

/// `y = maxpool(x)`, parallel over output rows.
fn max_forward(x: &[f32], s: &Pool2dShape, y: &mut [f32]) {
    let (oh_n, ow_n, c) = (s.out_height(), s.out_width(), s.channels);
    let image = s.in_height * s.in_width * c;
    y[..s.output_len()]
        .par_chunks_mut(ow_n * c)
        .enumerate()
        .for_each(|(row, out)| {
            let (n, oh) = (row / oh_n, row % oh_n);
            let (h0, h1) = window(oh, s, s.in_height);
            let x = &x[n * image..(n + 1) * image];
            for (ow, o) in out.chunks_exact_mut(c).enumerate() {
                let (w0, w1) = window(ow, s, s.in_width);
                o.fill(f32::NEG_INFINITY);
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        let px = &x[(ih * s.in_width + iw) * c..][..c];
                        o.iter_mut().zip(px).for_each(|(o, &v)| {
                            if wins(v, *o) {
                                *o = v;
                            }
                        });
                    }
                }
            }
        });
}

/// `dx` = each `dy` routed to its window's first maximum; parallel over images.
fn max_backward(dy: &[f32], x: &[f32], s: &Pool2dShape, dx: &mut [f32]) {
    let (oh_n, ow_n, c) = (s.out_height(), s.out_width(), s.channels);
    let image = s.in_height * s.in_width * c;
    dx[..s.input_len()]
        .par_chunks_mut(image)
        .enumerate()
        .for_each(|(n, dxn)| {
            dxn.fill(0.0);
            let x = &x[n * image..(n + 1) * image];
            let mut best = vec![0.0f32; c];
            let mut arg = vec![0usize; c];
            for oh in 0..oh_n {
                let (h0, h1) = window(oh, s, s.in_height);
                for ow in 0..ow_n {
                    let (w0, w1) = window(ow, s, s.in_width);
                    best.fill(f32::NEG_INFINITY);
                    arg.fill(usize::MAX);
                    for ih in h0..h1 {
                        for iw in w0..w1 {
                            let base = (ih * s.in_width + iw) * c;
                            for ch in 0..c {
                                let v = x[base + ch];
                                if wins(v, best[ch]) || arg[ch] == usize::MAX {
                                    best[ch] = v;
                                    arg[ch] = base + ch;
                                }
                            }
                        }
                    }
                    let g = &dy[((n * oh_n + oh) * ow_n + ow) * c..][..c];
                    for ch in 0..c {
                        dxn[arg[ch]] += g[ch];
                    }
                }
            }
        });
}

/// `y[n, c] = Σ_p x[n, p, c] / pixels`.
fn avg_forward(x: &[f32], shape: &GlobalPoolShape, y: &mut [f32]) {
    let (batch, pixels, channels) = (shape.batch, shape.pixels, shape.channels);
    y[..batch * channels]
        .par_chunks_mut(channels)
        .enumerate()
        .for_each(|(n, out)| {
            out.fill(0.0);
            for px in x[n * pixels * channels..(n + 1) * pixels * channels].chunks_exact(channels) {
                out.iter_mut().zip(px).for_each(|(o, &v)| *o += v);
            }
            let div = pixels as f32;
            out.iter_mut().for_each(|o| *o /= div);
        });
}

/// `dx[n, p, c] = dy[n, c] / pixels`.
fn avg_backward(dy: &[f32], shape: &GlobalPoolShape, dx: &mut [f32]) {
    let (batch, pixels, channels) = (shape.batch, shape.pixels, shape.channels);
    dx[..batch * pixels * channels]
        .par_chunks_mut(pixels * channels)
        .enumerate()
        .for_each(|(n, dxn)| {
            let g = &dy[n * channels..(n + 1) * channels];
            let div = pixels as f32;
            for px in dxn.chunks_exact_mut(channels) {
                px.iter_mut().zip(g).for_each(|(d, &g)| *d = g / div);
            }
        });
}
