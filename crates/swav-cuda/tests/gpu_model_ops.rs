//! The model operations (the swav-nn `Backend` surface) against f64 host definitions, in both
//! precisions: f32 (TF32 off) at f32 tolerances, and bf16 mixed precision at bf16
//! tolerances (inputs of the definitions rounded to bf16 as the GPU stores them; one bf16
//! rounding of each output allowed).
//!
//! Skipped (with a message) where there is no GPU; `SWAV_REQUIRE_GPU=1` makes that a failure.

mod common;

use common::{
    Rng, assert_close, bf16_round, channel_sums, conv_backward, conv_forward, download, gpu,
    max_pool, shifted_channel_sums, upload, upload_activation,
};
use swav_core::HeadOps;
use swav_cuda::{
    Conv2dShape, CudaBackend, Pool2dShape, Precision, StatsOutput, batch_norm_saved_len,
    batch_norm_stats_len,
};

/// One configuration under test.
struct Case {
    backend: CudaBackend,
    bf16: bool,
    /// Tolerance relative to the largest reference value.
    tol: f64,
}

/// Activations as the GPU holds them.
fn act(bf16: bool, v: &[f32]) -> Vec<f32> {
    if bf16 { bf16_round(v) } else { v.to_vec() }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    if let Some(backend) = gpu(Precision::F32) {
        out.push(Case {
            backend,
            bf16: false,
            tol: 2e-5,
        });
    }
    if let Some(backend) = gpu(Precision::MixedBf16) {
        out.push(Case {
            backend,
            bf16: true,
            tol: 1.2e-2,
        });
    }
    out
}

#[test]
fn convolutions_match() {
    let shapes = [
        Conv2dShape {
            batch: 2,
            in_height: 9,
            in_width: 9,
            in_channels: 8,
            out_channels: 16,
            kernel: 3,
            stride: 1,
            padding: 1,
        },
        Conv2dShape {
            batch: 2,
            in_height: 10,
            in_width: 10,
            in_channels: 16,
            out_channels: 32,
            kernel: 1,
            stride: 2,
            padding: 0,
        },
        Conv2dShape {
            batch: 2,
            in_height: 15,
            in_width: 15,
            in_channels: 3,
            out_channels: 8,
            kernel: 7,
            stride: 2,
            padding: 3,
        },
        Conv2dShape {
            batch: 3,
            in_height: 7,
            in_width: 7,
            in_channels: 16,
            out_channels: 24,
            kernel: 3,
            stride: 2,
            padding: 1,
        },
    ];
    for mut case in cases() {
        let mut rng = Rng::new(11);
        for s in &shapes {
            let label = format!("bf16={} {s:?}", case.bf16);
            let x = act(case.bf16, &rng.vec(s.input_len(), 1.0, 0.0));
            let w = rng.vec(s.weight_len(), 0.3, 0.0);
            let dy = act(case.bf16, &rng.vec(s.output_len(), 1.0, 0.0));
            let w_used = act(case.bf16, &w);
            let b = &mut case.backend;
            let (gx, gw, gdy) = (
                upload_activation(b, &x),
                upload(b, &w),
                upload_activation(b, &dy),
            );

            let mut gy = b.alloc_activation(s.output_len()).unwrap();
            let mut stats = b.zeros(batch_norm_stats_len(s.out_channels)).unwrap();
            let shift = rng.vec(s.out_channels, 0.5, 0.0);
            let gshift = upload(b, &shift);
            let fused = StatsOutput {
                shift: &gshift,
                stats: &mut stats,
            };
            b.conv2d_forward(&gx, &gw, s, &mut gy, Some(fused)).unwrap();
            let want = conv_forward(&x, &w_used, s);
            let y = download(b, &gy, s.output_len());
            assert_close(&format!("{label} forward"), &y, &want, case.tol);
            let (sum, sq) = shifted_channel_sums(&y, s.output_pixels(), s.out_channels, &shift);
            let got_stats = download(b, &stats, batch_norm_stats_len(s.out_channels));
            let c = s.out_channels;
            assert_close(
                &format!("{label} fused stats Σ(y-k)"),
                &got_stats[..c],
                &sum,
                1e-5,
            );
            assert_close(
                &format!("{label} fused stats Σ(y-k)²"),
                &got_stats[c..2 * c],
                &sq,
                1e-5,
            );
            assert_eq!(got_stats[2 * c], s.output_pixels() as f32);

            let (want_dx, want_dw) = conv_backward(&x, &w_used, &dy, s);
            let base = rng.vec(s.input_len(), 1.0, 0.0);
            let mut gdx = upload_activation(b, &base);
            b.conv2d_backward_data(&gdy, &gw, s, &mut gdx, false)
                .unwrap();
            assert_close(
                &format!("{label} backward data"),
                &download(b, &gdx, s.input_len()),
                &want_dx,
                case.tol,
            );

            let mut gdx = upload_activation(b, &base);
            b.conv2d_backward_data(&gdy, &gw, s, &mut gdx, true)
                .unwrap();
            let base_used = act(case.bf16, &base);
            let want_acc: Vec<f64> = want_dx
                .iter()
                .zip(&base_used)
                .map(|(d, &b)| d + b as f64)
                .collect();
            assert_close(
                &format!("{label} backward data, accumulated"),
                &download(b, &gdx, s.input_len()),
                &want_acc,
                case.tol,
            );

            let start = rng.vec(s.weight_len(), 1.0, 0.0);
            let mut gdw = upload(b, &start);
            b.conv2d_backward_filter(&gdy, &gx, s, &mut gdw).unwrap();
            let want_dw: Vec<f64> = want_dw
                .iter()
                .zip(&start)
                .map(|(d, &w0)| d + w0 as f64)
                .collect();
            assert_close(
                &format!("{label} backward filter, accumulated"),
                &download(b, &gdw, s.weight_len()),
                &want_dw,
                case.tol,
            );
        }
        eprintln!("{}", case.backend.convolution_algorithms().join("\n"));
    }
}

#[test]
fn batch_norm_pipeline_matches() {
    let (rows, channels) = (2 * 7 * 7, 24);
    let (eps, momentum) = (1e-5f32, 0.1f32);
    for mut case in cases() {
        let mut rng = Rng::new(12);
        let x = act(case.bf16, &rng.vec(rows * channels, 2.0, 0.7));
        let residual = act(case.bf16, &rng.vec(rows * channels, 1.0, 0.0));
        let dy = act(case.bf16, &rng.vec(rows * channels, 1.0, 0.0));
        let weight = rng.vec(channels, 0.5, 1.0);
        let bias = rng.vec(channels, 0.5, 0.0);
        let rm0 = rng.vec(channels, 0.1, 0.0);
        let rv0 = rng.vec(channels, 0.1, 1.0);
        let b = &mut case.backend;
        let (gx, gres, gdy) = (
            upload_activation(b, &x),
            upload_activation(b, &residual),
            upload_activation(b, &dy),
        );
        let (gweight, gbias) = (upload(b, &weight), upload(b, &bias));
        let (mut grm, mut grv) = (upload(b, &rm0), upload(b, &rv0));
        let mut stats = b.zeros(batch_norm_stats_len(channels)).unwrap();
        let mut saved = b.zeros(batch_norm_saved_len(channels)).unwrap();
        b.batch_norm_stats(&gx, rows, channels, &grm, &mut stats)
            .unwrap();
        b.batch_norm_finalize(
            &stats, channels, eps, momentum, &mut grm, &mut grv, &mut saved,
        )
        .unwrap();

        // Definitions in f64.
        let n = rows as f64;
        let (sum, sq) = channel_sums(&x, rows, channels);
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let var: Vec<f64> = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| (q / n - m * m).max(0.0))
            .collect();
        let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps as f64).sqrt()).collect();
        let want_rm: Vec<f64> = rm0
            .iter()
            .zip(&mean)
            .map(|(&r, m)| 0.9 * r as f64 + 0.1 * m)
            .collect();
        let want_rv: Vec<f64> = rv0
            .iter()
            .zip(&var)
            .map(|(&r, v)| 0.9 * r as f64 + 0.1 * v * n / (n - 1.0))
            .collect();
        let label = format!("bf16={}", case.bf16);
        assert_close(
            &format!("{label} running mean"),
            &download(b, &grm, channels),
            &want_rm,
            1e-5,
        );
        assert_close(
            &format!("{label} running var"),
            &download(b, &grv, channels),
            &want_rv,
            1e-5,
        );

        let mut y = b.alloc_activation(rows * channels).unwrap();
        b.batch_norm_apply(
            &gx,
            rows,
            channels,
            &saved,
            &gweight,
            &gbias,
            Some(&gres),
            true,
            &mut y,
        )
        .unwrap();
        let xhat = |i: usize| (x[i] as f64 - mean[i % channels]) * invstd[i % channels];
        let want_y: Vec<f64> = (0..rows * channels)
            .map(|i| {
                let c = i % channels;
                (xhat(i) * weight[c] as f64 + bias[c] as f64 + residual[i] as f64).max(0.0)
            })
            .collect();
        let got_y = download(b, &y, rows * channels);
        assert_close(
            &format!("{label} apply + residual + relu"),
            &got_y,
            &want_y,
            case.tol,
        );

        let mut sums = b.zeros(batch_norm_stats_len(channels)).unwrap();
        let dw0 = rng.vec(channels, 1.0, 0.0);
        let db0 = rng.vec(channels, 1.0, 0.0);
        let (mut gdw, mut gdb) = (upload(b, &dw0), upload(b, &db0));
        b.batch_norm_backward_reduce(
            &gdy,
            &gx,
            Some(&y),
            rows,
            channels,
            &saved,
            &mut sums,
            &mut gdw,
            &mut gdb,
        )
        .unwrap();
        let g = |i: usize| if got_y[i] <= 0.0 { 0.0 } else { dy[i] as f64 };
        let mut sg = vec![0.0; channels];
        let mut sgx = vec![0.0; channels];
        for i in 0..rows * channels {
            sg[i % channels] += g(i);
            sgx[i % channels] += g(i) * xhat(i);
        }
        let got_sums = download(b, &sums, batch_norm_stats_len(channels));
        assert_close(&format!("{label} Σg"), &got_sums[..channels], &sg, 1e-4);
        assert_close(
            &format!("{label} Σg·x̂"),
            &got_sums[channels..2 * channels],
            &sgx,
            1e-4,
        );
        let want_db: Vec<f64> = db0.iter().zip(&sg).map(|(&a, s)| a as f64 + s).collect();
        let want_dw: Vec<f64> = dw0.iter().zip(&sgx).map(|(&a, s)| a as f64 + s).collect();
        assert_close(
            &format!("{label} dbias"),
            &download(b, &gdb, channels),
            &want_db,
            1e-4,
        );
        assert_close(
            &format!("{label} dweight"),
            &download(b, &gdw, channels),
            &want_dw,
            1e-4,
        );

        let mut dx = b.alloc_activation(rows * channels).unwrap();
        b.batch_norm_backward_apply(
            &gdy,
            &gx,
            Some(&y),
            rows,
            channels,
            &saved,
            &gweight,
            Some(&sums),
            &mut dx,
        )
        .unwrap();
        let want_dx: Vec<f64> = (0..rows * channels)
            .map(|i| {
                let c = i % channels;
                weight[c] as f64 * invstd[c] * (g(i) - sg[c] / n - xhat(i) * sgx[c] / n)
            })
            .collect();
        assert_close(
            &format!("{label} backward apply"),
            &download(b, &dx, rows * channels),
            &want_dx,
            case.tol.max(1e-4),
        );

        // Frozen statistics (evaluation mode), no mask.
        b.batch_norm_frozen(&grm, &grv, channels, eps, &mut saved)
            .unwrap();
        b.batch_norm_backward_apply(
            &gdy, &gx, None, rows, channels, &saved, &gweight, None, &mut dx,
        )
        .unwrap();
        let rv = download(b, &grv, channels);
        let want_frozen: Vec<f64> = (0..rows * channels)
            .map(|i| {
                let c = i % channels;
                weight[c] as f64 / (rv[c] as f64 + eps as f64).sqrt() * dy[i] as f64
            })
            .collect();
        assert_close(
            &format!("{label} frozen backward"),
            &download(b, &dx, rows * channels),
            &want_frozen,
            case.tol,
        );

        // relu_backward
        let mut gd = upload_activation(b, &dy);
        b.relu_backward(&mut gd, &y, rows * channels).unwrap();
        let want: Vec<f64> = (0..rows * channels).map(g).collect();
        assert_close(
            &format!("{label} relu backward"),
            &download(b, &gd, rows * channels),
            &want,
            0.0,
        );
    }
}

#[test]
fn pooling_matches() {
    let s = Pool2dShape {
        batch: 2,
        in_height: 9,
        in_width: 9,
        channels: 8,
        kernel: 3,
        stride: 2,
        padding: 1,
    };
    for mut case in cases() {
        let mut rng = Rng::new(13);
        // Coarse values make ties common, which exercises the first-maximum rule.
        let x: Vec<f32> = rng
            .vec(s.input_len(), 4.0, 0.0)
            .iter()
            .map(|v| v.round())
            .collect();
        let dy = act(case.bf16, &rng.vec(s.output_len(), 1.0, 0.0));
        let b = &mut case.backend;
        let (gx, gdy) = (upload_activation(b, &x), upload_activation(b, &dy));
        let mut gy = b.alloc_activation(s.output_len()).unwrap();
        b.max_pool2d_forward(&gx, &s, &mut gy).unwrap();
        let (want_y, arg) = max_pool(&x, &s);
        assert_close(
            "max pool forward",
            &download(b, &gy, s.output_len()),
            &want_y,
            0.0,
        );
        let mut gdx = upload_activation(b, &vec![7.0; s.input_len()]);
        b.max_pool2d_backward(&gdy, &gx, &s, &mut gdx).unwrap();
        let mut want_dx = vec![0.0f64; s.input_len()];
        for (o, &i) in arg.iter().enumerate() {
            want_dx[i] += dy[o] as f64;
        }
        assert_close(
            "max pool backward",
            &download(b, &gdx, s.input_len()),
            &want_dx,
            case.tol,
        );

        let (batch, pixels, channels) = (3, 13, 40);
        let x = act(case.bf16, &rng.vec(batch * pixels * channels, 1.0, 0.2));
        let gx = upload_activation(b, &x);
        let mut gy = b.alloc_activation(batch * channels).unwrap();
        b.global_avg_pool_forward(&gx, batch, pixels, channels, &mut gy)
            .unwrap();
        let want: Vec<f64> = (0..batch * channels)
            .map(|i| {
                let (n, c) = (i / channels, i % channels);
                (0..pixels)
                    .map(|p| x[(n * pixels + p) * channels + c] as f64)
                    .sum::<f64>()
                    / pixels as f64
            })
            .collect();
        assert_close(
            "average pool forward",
            &download(b, &gy, batch * channels),
            &want,
            case.tol,
        );
        let dy = act(case.bf16, &rng.vec(batch * channels, 1.0, 0.0));
        let gdy = upload_activation(b, &dy);
        let mut gdx = b.alloc_activation(batch * pixels * channels).unwrap();
        b.global_avg_pool_backward(&gdy, batch, pixels, channels, &mut gdx)
            .unwrap();
        let want: Vec<f64> = (0..batch * pixels * channels)
            .map(|i| dy[(i / (pixels * channels)) * channels + i % channels] as f64 / pixels as f64)
            .collect();
        assert_close(
            "average pool backward",
            &download(b, &gdx, batch * pixels * channels),
            &want,
            case.tol,
        );
    }
}

#[test]
fn linear_layers_match() {
    let (rows, fin, fout) = (48, 72, 40);
    for mut case in cases() {
        let mut rng = Rng::new(14);
        let x = act(case.bf16, &rng.vec(rows * fin, 1.0, 0.0));
        let w = rng.vec(fout * fin, 0.2, 0.0);
        let bias = rng.vec(fout, 1.0, 0.0);
        let dy = act(case.bf16, &rng.vec(rows * fout, 1.0, 0.0));
        let w_used = act(case.bf16, &w);
        let b = &mut case.backend;
        let (gx, gw, gb, gdy) = (
            upload_activation(b, &x),
            upload(b, &w),
            upload(b, &bias),
            upload_activation(b, &dy),
        );
        let label = format!("bf16={}", case.bf16);
        for with_bias in [false, true] {
            let mut gy = b.alloc_activation(rows * fout).unwrap();
            b.linear_forward(&gx, &gw, with_bias.then_some(&gb), rows, fin, fout, &mut gy)
                .unwrap();
            let want: Vec<f64> = (0..rows * fout)
                .map(|i| {
                    let (r, o) = (i / fout, i % fout);
                    let dot: f64 = (0..fin)
                        .map(|k| x[r * fin + k] as f64 * w_used[o * fin + k] as f64)
                        .sum();
                    dot + if with_bias { bias[o] as f64 } else { 0.0 }
                })
                .collect();
            assert_close(
                &format!("{label} forward, bias={with_bias}"),
                &download(b, &gy, rows * fout),
                &want,
                case.tol,
            );
            // An f32 output buffer from an activation input (the head writes f32 features).
            let mut gy32 = b.zeros(rows * fout).unwrap();
            b.linear_forward(
                &gx,
                &gw,
                with_bias.then_some(&gb),
                rows,
                fin,
                fout,
                &mut gy32,
            )
            .unwrap();
            assert_close(
                &format!("{label} forward into f32, bias={with_bias}"),
                &download(b, &gy32, rows * fout),
                &want,
                case.tol,
            );
        }
        let mut gdx = b.alloc_activation(rows * fin).unwrap();
        b.linear_backward_data(&gdy, &gw, rows, fin, fout, &mut gdx)
            .unwrap();
        let want: Vec<f64> = (0..rows * fin)
            .map(|i| {
                let (r, k) = (i / fin, i % fin);
                (0..fout)
                    .map(|o| dy[r * fout + o] as f64 * w_used[o * fin + k] as f64)
                    .sum()
            })
            .collect();
        assert_close(
            &format!("{label} backward data"),
            &download(b, &gdx, rows * fin),
            &want,
            case.tol,
        );

        let (dw0, db0) = (rng.vec(fout * fin, 1.0, 0.0), rng.vec(fout, 1.0, 0.0));
        let (mut gdw, mut gdb) = (upload(b, &dw0), upload(b, &db0));
        b.linear_backward_weight(&gdy, &gx, rows, fin, fout, &mut gdw, Some(&mut gdb))
            .unwrap();
        let want_dw: Vec<f64> = (0..fout * fin)
            .map(|i| {
                let (o, k) = (i / fin, i % fin);
                dw0[i] as f64
                    + (0..rows)
                        .map(|r| dy[r * fout + o] as f64 * x[r * fin + k] as f64)
                        .sum::<f64>()
            })
            .collect();
        let want_db: Vec<f64> = (0..fout)
            .map(|o| db0[o] as f64 + (0..rows).map(|r| dy[r * fout + o] as f64).sum::<f64>())
            .collect();
        // The weight gradient accumulates in f32 from bf16 operands: f32 tolerances apply.
        assert_close(
            &format!("{label} backward weight"),
            &download(b, &gdw, fout * fin),
            &want_dw,
            1e-5,
        );
        assert_close(
            &format!("{label} backward bias"),
            &download(b, &gdb, fout),
            &want_db,
            1e-5,
        );
    }
}

#[test]
fn l2_normalization_matches() {
    let (rows, cols, eps) = (37, 128, 1e-12f32);
    for mut case in cases() {
        let mut rng = Rng::new(15);
        let mut x = act(case.bf16, &rng.vec(rows * cols, 1.0, 0.0));
        x[..cols].iter_mut().for_each(|v| *v = 0.0); // a zero row takes the eps branch
        let dz = act(case.bf16, &rng.vec(rows * cols, 1.0, 0.0));
        let b = &mut case.backend;
        let (gx, gdz) = (upload_activation(b, &x), upload_activation(b, &dz));
        let mut gz = b.zeros(rows * cols).unwrap();
        b.l2_normalize_rows_forward(&gx, rows, cols, eps, &mut gz)
            .unwrap();
        let norms: Vec<f64> = x
            .chunks(cols)
            .map(|r| r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt())
            .collect();
        let want_z: Vec<f64> = (0..rows * cols)
            .map(|i| x[i] as f64 / norms[i / cols].max(eps as f64))
            .collect();
        let z = download(b, &gz, rows * cols);
        assert_close("l2 forward (f32 output)", &z, &want_z, 1e-5);
        let mut gdx = b.alloc_activation(rows * cols).unwrap();
        b.l2_normalize_rows_backward(&gdz, &gx, &gz, rows, cols, eps, &mut gdx)
            .unwrap();
        let want_dx: Vec<f64> = (0..rows * cols)
            .map(|i| {
                let r = i / cols;
                if norms[r] > eps as f64 {
                    let dot: f64 = (0..cols)
                        .map(|c| z[r * cols + c] as f64 * dz[r * cols + c] as f64)
                        .sum();
                    (dz[i] as f64 - z[i] as f64 * dot) / norms[r]
                } else {
                    dz[i] as f64 / eps as f64
                }
            })
            .collect();
        // Rows away from the clamped one (whose gradient is 1e12-scaled) set the scale.
        let (got, want) = (download(b, &gdx, rows * cols), want_dx);
        assert_close(
            "l2 backward, clamped row",
            &got[..cols],
            &want[..cols],
            case.tol,
        );
        assert_close(
            "l2 backward",
            &got[cols..],
            &want[cols..],
            case.tol.max(1e-5),
        );
    }
}

#[test]
fn inputs_of_other_element_types_are_converted() {
    // An f32 activation into a bf16 backend's convolution, and a bf16 output from it.
    let Some(mut b) = gpu(Precision::MixedBf16) else {
        return;
    };
    let s = Conv2dShape {
        batch: 1,
        in_height: 6,
        in_width: 6,
        in_channels: 8,
        out_channels: 8,
        kernel: 3,
        stride: 1,
        padding: 1,
    };
    let mut rng = Rng::new(16);
    let x = rng.vec(s.input_len(), 1.0, 0.0);
    let w = rng.vec(s.weight_len(), 0.3, 0.0);
    let (gx, gw) = (upload(&mut b, &x), upload(&mut b, &w));
    let mut y32 = b.zeros(s.output_len()).unwrap();
    b.conv2d_forward(&gx, &gw, &s, &mut y32, None).unwrap();
    let want = conv_forward(&bf16_round(&x), &bf16_round(&w), &s);
    assert_close(
        "f32 in, f32 out under bf16",
        &download(&mut b, &y32, s.output_len()),
        &want,
        1.2e-2,
    );
}
