//! Drawing one synthetic image: a random background (two-colour gradient, value-noise
//! texture, thin clutter lines), one antialiased shape of random colour, size, position and
//! rotation, and sensor noise. Every random draw happens in the same order whatever the
//! class and whatever the easier settings of [`SyntheticConfig`], so nothing but the
//! silhouette carries the label and an easier variant shows the same scene simplified.

use rand::{Rng, RngExt};

use crate::dataset::synthetic::SyntheticConfig;
use crate::dataset::synthetic::shapes::Shape;
use crate::rgb_image::RgbImage;
use crate::rng::uniform;

/// Side of the value-noise lattice.
const NOISE_GRID: usize = 5;
/// Sub-samples per axis for shape coverage (antialiasing).
const SUPERSAMPLE: usize = 2;

/// A uniform random colour, or its red level as a grey when `monochrome` (three draws
/// either way).
fn random_colour(rng: &mut impl Rng, monochrome: bool) -> [f32; 3] {
    let colour = [
        rng.random::<f32>() * 255.0,
        rng.random::<f32>() * 255.0,
        rng.random::<f32>() * 255.0,
    ];
    if monochrome { [colour[0]; 3] } else { colour }
}

fn distance2(a: [f32; 3], b: [f32; 3]) -> f32 {
    (0..3).map(|c| (a[c] - b[c]) * (a[c] - b[c])).sum()
}

/// Renders an image of `shape` as `config` describes (size and easier settings) with
/// randomness from `rng`.
pub fn render(shape: Shape, config: &SyntheticConfig, rng: &mut impl Rng) -> RgbImage {
    let size = config.image_size;
    let mono = config.monochrome;
    let plain = config.plain_background;
    let n = size as usize;
    let s = size as f32;
    let mut canvas = vec![[0.0f32; 3]; n * n];

    // Background: a linear gradient between two colours along a random direction.
    let c0 = random_colour(rng, mono);
    let c1 = random_colour(rng, mono);
    let c1 = if plain { c0 } else { c1 };
    let direction = uniform(rng, 0.0, std::f64::consts::TAU) as f32;
    let (dx, dy) = (direction.cos(), direction.sin());
    // Value-noise texture of random amplitude and frequency.
    let amplitude = uniform(rng, 0.0, 45.0) as f32;
    let amplitude = if plain { 0.0 } else { amplitude };
    let cells = uniform(rng, 1.0, (NOISE_GRID - 1) as f64) as f32;
    let lattice: Vec<f32> = (0..NOISE_GRID * NOISE_GRID)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    for y in 0..n {
        for x in 0..n {
            let (fx, fy) = ((x as f32 + 0.5) / s, (y as f32 + 0.5) / s);
            let t = (((fx - 0.5) * dx + (fy - 0.5) * dy) * std::f32::consts::SQRT_2 + 0.5)
                .clamp(0.0, 1.0);
            let (gx, gy) = (fx * cells, fy * cells);
            let (ix, iy) = (
                (gx as usize).min(NOISE_GRID - 2),
                (gy as usize).min(NOISE_GRID - 2),
            );
            let (tx, ty) = (gx - ix as f32, gy - iy as f32);
            let at = |i: usize, j: usize| lattice[j * NOISE_GRID + i];
            let top = at(ix, iy) * (1.0 - tx) + at(ix + 1, iy) * tx;
            let bottom = at(ix, iy + 1) * (1.0 - tx) + at(ix + 1, iy + 1) * tx;
            let noise = amplitude * (top * (1.0 - ty) + bottom * ty);
            canvas[y * n + x] = std::array::from_fn(|c| c0[c] * (1.0 - t) + c1[c] * t + noise);
        }
    }

    // Clutter: up to three thin line segments in random colours.
    let lines = rng.random_range(0..=3u32);
    let lines = if plain { 0 } else { lines };
    for _ in 0..lines {
        let colour = random_colour(rng, mono);
        let (x0, y0) = (rng.random::<f32>() * s, rng.random::<f32>() * s);
        let (x1, y1) = (rng.random::<f32>() * s, rng.random::<f32>() * s);
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()) as usize).max(1);
        for k in 0..=steps {
            let t = k as f32 / steps as f32;
            let (x, y) = ((x0 + (x1 - x0) * t) as usize, (y0 + (y1 - y0) * t) as usize);
            if x < n && y < n {
                canvas[y * n + x] = colour;
            }
        }
    }

    // The shape: a colour far from the background's, random scale, position and rotation.
    let background_mean: [f32; 3] = std::array::from_fn(|c| (c0[c] + c1[c]) / 2.0);
    let mut colour = random_colour(rng, mono);
    for _ in 0..7 {
        let candidate = random_colour(rng, mono);
        if distance2(candidate, background_mean) > distance2(colour, background_mean) {
            colour = candidate;
        }
    }
    let radius = uniform(rng, 0.22, 0.42) as f32 * s;
    let margin = radius * 0.8;
    let cx = uniform(rng, margin as f64, (s - margin) as f64) as f32;
    let cy = uniform(rng, margin as f64, (s - margin) as f64) as f32;
    let turn = uniform(rng, 0.0, std::f64::consts::TAU);
    let upright = config.max_rotation_degrees < 180;
    let angle = if upright {
        // The same draw mapped linearly onto ±max_rotation_degrees.
        ((turn / std::f64::consts::PI - 1.0) * f64::from(config.max_rotation_degrees).to_radians())
            as f32
    } else {
        turn as f32
    };
    let mirrored = rng.random::<bool>();
    let (cos, sin) = (angle.cos(), angle.sin());
    let reach = radius * 1.05;
    let y_range = ((cy - reach).max(0.0) as usize)..((cy + reach).ceil().min(s) as usize);
    let x_range = ((cx - reach).max(0.0) as usize)..((cx + reach).ceil().min(s) as usize);
    for y in y_range {
        for x in x_range.clone() {
            let mut inside = 0;
            for sy in 0..SUPERSAMPLE {
                for sx in 0..SUPERSAMPLE {
                    let px = x as f32 + (sx as f32 + 0.5) / SUPERSAMPLE as f32 - cx;
                    let py = y as f32 + (sy as f32 + 0.5) / SUPERSAMPLE as f32 - cy;
                    let u = (px * cos + py * sin) / radius;
                    let v = (py * cos - px * sin) / radius;
                    // Upright shapes point up (v grows upwards) and mirror left-right.
                    let (u, v) = match (upright, mirrored) {
                        (true, true) => (-u, -v),
                        (true, false) => (u, -v),
                        (false, true) => (u, -v),
                        (false, false) => (u, v),
                    };
                    inside += shape.contains(u, v) as usize;
                }
            }
            if inside > 0 {
                let cover = inside as f32 / (SUPERSAMPLE * SUPERSAMPLE) as f32;
                let px = &mut canvas[y * n + x];
                *px = std::array::from_fn(|c| px[c] * (1.0 - cover) + colour[c] * cover);
            }
        }
    }

    // Sensor noise (one draw per channel; grey images reuse the first), then quantise.
    let grain = uniform(rng, 0.0, 8.0) as f32;
    let grain = if plain { 0.0 } else { grain };
    let mut pixels = Vec::with_capacity(n * n * 3);
    for px in &canvas {
        let noise: [f32; 3] = std::array::from_fn(|_| rng.random::<f32>() * 2.0 - 1.0);
        for (c, &value) in px.iter().enumerate() {
            let noisy = value + grain * noise[if mono { 0 } else { c }];
            pixels.push(noisy.round().clamp(0.0, 255.0) as u8);
        }
    }
    RgbImage::from_exact(size, size, pixels)
}
