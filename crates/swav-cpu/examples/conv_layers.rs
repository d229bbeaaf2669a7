//! Per-layer convolution rates on the CPU backend: forward, input gradient and weight
//! gradient of every distinct convolution shape of a trunk, with the number of layers of
//! that shape and their share of a training step.
//!
//! ```text
//! cargo run --release -p swav-cpu --example conv_layers -- [SIDE] [BATCH] [WIDTH]
//! ```
//!
//! Without `WIDTH`: ResNet-50 (defaults 224 px, batch 8). With it: ResNet-18 with the
//! small-image stem at that base width (the demo's trunk is `32 128 16`). Each figure is the
//! best of five calls (a shared machine only ever slows a call down).

use std::collections::BTreeMap;
use std::time::Instant;

use swav_cpu::CpuBackend;
use swav_nn::prelude::*;
use swav_nn::{Conv2dShape, StatsOutput, hashed_uniform};

/// A convolution's (input side, input channels, output channels, kernel, stride).
type ShapeKey = (usize, usize, usize, usize, usize);

/// Convolution shapes with the number of layers of each.
type Shapes = BTreeMap<ShapeKey, (Conv2dShape, usize)>;

/// Adds one layer of shape `s` to `shapes`.
fn add(shapes: &mut Shapes, s: Conv2dShape) {
    let key = (
        s.in_height,
        s.in_channels,
        s.out_channels,
        s.kernel,
        s.stride,
    );
    shapes.entry(key).or_insert((s, 0)).1 += 1;
}

/// A convolution of `batch` square `side × side` inputs.
fn square(
    batch: usize,
    side: usize,
    (in_channels, out_channels): (usize, usize),
    (kernel, stride, padding): (usize, usize, usize),
) -> Conv2dShape {
    Conv2dShape {
        batch,
        in_height: side,
        in_width: side,
        in_channels,
        out_channels,
        kernel,
        stride,
        padding,
    }
}

/// Every convolution of a ResNet-18 trunk with the small-image stem (3 × 3 stride 1, no
/// pooling) at base width `width` on `batch × side × side` images.
fn resnet18_small_shapes(side: usize, batch: usize, width: usize) -> Shapes {
    let mut shapes = Shapes::new();
    let conv = |h, cin, cout, kernel, stride, padding| {
        square(batch, h, (cin, cout), (kernel, stride, padding))
    };
    add(&mut shapes, conv(side, 3, width, 3, 1, 1));
    let (mut h, mut cin) = (side, width);
    for stage in 0..4 {
        let planes = width << stage;
        for i in 0..2 {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let h_out = (h - 1) / stride + 1;
            add(&mut shapes, conv(h, cin, planes, 3, stride, 1));
            add(&mut shapes, conv(h_out, planes, planes, 3, 1, 1));
            if stride != 1 {
                add(&mut shapes, conv(h, cin, planes, 1, stride, 0));
            }
            cin = planes;
            h = h_out;
        }
    }
    shapes
}

/// Every convolution of a ResNet-50 trunk on `batch × side × side` images, by shape, with
/// the number of layers of that shape.
fn resnet50_shapes(side: usize, batch: usize) -> Shapes {
    let mut shapes = Shapes::new();
    let mut add = |s: Conv2dShape| add(&mut shapes, s);
    let conv = |h, cin, cout, kernel, stride, padding| {
        square(batch, h, (cin, cout), (kernel, stride, padding))
    };
    let stem = conv(side, 3, 64, 7, 2, 3);
    add(stem);
    let mut h = (stem.out_height() - 1) / 2 + 1;
    let mut cin = 64;
    for (stage, blocks) in [3, 4, 6, 3].into_iter().enumerate() {
        let planes = 64 << stage;
        for i in 0..blocks {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let h_out = (h - 1) / stride + 1;
            add(conv(h, cin, planes, 1, 1, 0));
            add(conv(h, planes, planes, 3, stride, 1));
            add(conv(h_out, planes, 4 * planes, 1, 1, 0));
            if i == 0 {
                add(conv(h, cin, 4 * planes, 1, stride, 0));
            }
            cin = 4 * planes;
            h = h_out;
        }
    }
    shapes
}

fn best_of_five(mut f: impl FnMut()) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let side = args.next().map_or(224, |a| a.expect("side in pixels"));
    let batch = args.next().map_or(8, |a| a.expect("batch"));
    let shapes = match args.next() {
        Some(width) => resnet18_small_shapes(side, batch, width.expect("base width")),
        None => resnet50_shapes(side, batch),
    };
    let mut b = CpuBackend::new();
    let mut totals = [0.0f64; 3];
    println!(
        "{:>28} {:>3} {:>19} {:>19} {:>19}",
        "input, in→out, kernel/stride", "n", "forward", "input gradient", "weight gradient"
    );
    for (s, count) in shapes.values() {
        let x: Vec<f32> = (0..s.input_len() as u64)
            .map(|i| hashed_uniform(1, i))
            .collect();
        let w: Vec<f32> = (0..s.weight_len() as u64)
            .map(|i| hashed_uniform(2, i))
            .collect();
        let shift = vec![0.0f32; s.out_channels];
        let mut y = b.alloc_activation(s.output_len()).expect("alloc");
        let mut stats = b.zeros(2 * s.out_channels + 1).expect("alloc");
        let mut dx = b.alloc_activation(s.input_len()).expect("alloc");
        let mut dw = b.zeros(s.weight_len()).expect("alloc");
        let forward = best_of_five(|| {
            let target = StatsOutput {
                shift: &shift,
                stats: &mut stats,
            };
            b.conv2d_forward(&x, &w, s, &mut y, Some(target))
                .expect("forward");
        });
        let dy = y.clone();
        let data = best_of_five(|| {
            b.conv2d_backward_data(&dy, &w, s, &mut dx, false)
                .expect("input gradient")
        });
        let filter = best_of_five(|| {
            b.conv2d_backward_filter(&dy, &x, s, &mut dw)
                .expect("weight gradient")
        });
        let flops = 2.0 * s.macs() as f64;
        let n = *count as f64;
        let cell = |t: f64| format!("{:5.0} GF/s {:5.1} ms", flops / t / 1e9, t * n * 1e3);
        println!(
            "{:>28} {count:>3} {} {} {}",
            format!(
                "{}² {}→{} {}/{}",
                s.in_height, s.in_channels, s.out_channels, s.kernel, s.stride
            ),
            cell(forward),
            cell(data),
            cell(filter)
        );
        totals[0] += forward * n;
        totals[1] += data * n;
        totals[2] += filter * n;
    }
    println!(
        "total: forward {:.0} ms, input gradient {:.0} ms, weight gradient {:.0} ms",
        totals[0] * 1e3,
        totals[1] * 1e3,
        totals[2] * 1e3
    );
}
