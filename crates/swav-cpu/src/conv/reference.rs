//! Convolutions read straight from their definition, for the kernels' tests.

use swav_nn::Conv2dShape;

/// A 2-image, 9 × 7 convolution of the given channels and geometry.
pub(crate) fn shape(
    ic: usize,
    oc: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Conv2dShape {
    Conv2dShape {
        batch: 2,
        in_height: 9,
        in_width: 7,
        in_channels: ic,
        out_channels: oc,
        kernel,
        stride,
        padding,
    }
}

/// `len` values of a fixed pattern in about [-1, 1) (`seed` picks one of a few).
pub(crate) fn pattern(len: usize, seed: usize) -> Vec<f32> {
    let (step, period) = [(7, 19), (5, 23)][seed % 2];
    (0..len)
        .map(|i| ((i * step % period) as f32 - (period / 2) as f32) / (period / 2) as f32)
        .collect()
}

/// Calls `f(p, tap, q)` for every output pixel `p`, kernel tap `tap = kh·k + kw` and the
/// input pixel `q` that tap reads (taps in the padding are skipped).
pub(crate) fn for_each_tap(s: &Conv2dShape, mut f: impl FnMut(usize, usize, usize)) {
    let (oh_n, ow_n) = (s.out_height(), s.out_width());
    for n in 0..s.batch {
        for oy in 0..oh_n {
            for ox in 0..ow_n {
                let p = (n * oh_n + oy) * ow_n + ox;
                for kh in 0..s.kernel {
                    for kw in 0..s.kernel {
                        let ih = (oy * s.stride + kh) as isize - s.padding as isize;
                        let iw = (ox * s.stride + kw) as isize - s.padding as isize;
                        if ih < 0 || iw < 0 {
                            continue;
                        }
                        let (ih, iw) = (ih as usize, iw as usize);
                        if ih < s.in_height && iw < s.in_width {
                            f(
                                p,
                                kh * s.kernel + kw,
                                (n * s.in_height + ih) * s.in_width + iw,
                            );
                        }
                    }
                }
            }
        }
    }
}

/// `y[p][oc] += Σ_{tap, ic} x[q][ic] · w[oc][tap][ic]` (OHWI weights), summed in `f64`.
pub(crate) fn forward(x: &[f32], w: &[f32], s: &Conv2dShape, y: &mut [f32]) {
    let (ic_n, oc_n, taps) = (s.in_channels, s.out_channels, s.kernel * s.kernel);
    let mut sum = vec![0.0f64; s.output_pixels() * oc_n];
    for_each_tap(s, |p, tap, q| {
        for oc in 0..oc_n {
            for ic in 0..ic_n {
                sum[p * oc_n + oc] +=
                    x[q * ic_n + ic] as f64 * w[(oc * taps + tap) * ic_n + ic] as f64;
            }
        }
    });
    y.iter_mut().zip(sum).for_each(|(y, v)| *y += v as f32);
}

/// `dW[oc][tap][ic] = Σ_p dy[p][oc] · x[q][ic]`, summed in `f64`.
pub(crate) fn weight_gradient(dy: &[f32], x: &[f32], s: &Conv2dShape) -> Vec<f32> {
    let (ic_n, oc_n, taps) = (s.in_channels, s.out_channels, s.kernel * s.kernel);
    let mut dw = vec![0.0f64; s.weight_len()];
    for_each_tap(s, |p, tap, q| {
        for oc in 0..oc_n {
            for ic in 0..ic_n {
                dw[(oc * taps + tap) * ic_n + ic] +=
                    dy[p * oc_n + oc] as f64 * x[q * ic_n + ic] as f64;
            }
        }
    });
    dw.into_iter().map(|v| v as f32).collect()
}

/// `dx[q][ic] = Σ_{p, tap} dy[p][oc] · w[oc][tap][ic]`, summed in `f64`.
pub(crate) fn input_gradient(dy: &[f32], w: &[f32], s: &Conv2dShape) -> Vec<f32> {
    let (ic_n, oc_n, taps) = (s.in_channels, s.out_channels, s.kernel * s.kernel);
    let mut dx = vec![0.0f64; s.input_len()];
    for_each_tap(s, |p, tap, q| {
        for oc in 0..oc_n {
            for ic in 0..ic_n {
                dx[q * ic_n + ic] +=
                    dy[p * oc_n + oc] as f64 * w[(oc * taps + tap) * ic_n + ic] as f64;
            }
        }
    });
    dx.into_iter().map(|v| v as f32).collect()
}
