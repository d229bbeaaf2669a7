//! Exactness against Pillow/torchvision: every case of tests/goldens/manifest.json (made by
//! scripts/goldens/augment_goldens.py) recomputed here with the same fixed parameters.

mod common;

use common::{byte_diff, manifest, npy, texture};
use serde_json::Value;
use swav_augment::loader::DistributedSampler;
use swav_augment::loader::sampler::iterations;
use swav_augment::rgb_image::RgbImage;
use swav_augment::transform::blur::{BlurScratch, gaussian_blur};
use swav_augment::transform::color_jitter::{
    ColorJitterParams, JitterOp, adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation,
};
use swav_augment::transform::crop::{CropParams, CropScratch};
use swav_augment::transform::eval::{EvalConfig, EvalMode, EvalTransform};
use swav_augment::transform::grayscale::grayscale_in_place;
use swav_augment::transform::hsv::rgb_to_hsv;
use swav_augment::transform::normalize::{Normalization, NormalizeTable};
use swav_augment::transform::random_resized_crop::{CropBox, centre_crop_fallback};
use swav_augment::transform::resize::CropResizer;

fn uint(v: &Value, key: &str) -> u32 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}")) as u32
}

fn float(v: &Value) -> f32 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")) as f32
}

fn crop_box(v: &Value) -> CropBox {
    CropBox {
        top: uint(v, "top"),
        left: uint(v, "left"),
        height: uint(v, "height"),
        width: uint(v, "width"),
    }
}

#[test]
fn crop_and_bilinear_resize_match_pil_within_one_level() {
    let image = texture();
    let mut resizer = CropResizer::new();
    let mut out = Vec::new();
    for case in manifest()["resize"].as_array().expect("resize cases") {
        let size = uint(case, "size");
        resizer
            .crop_resize(&image, crop_box(case), size, size, &mut out)
            .expect("resize");
        let expected = npy(case["file"].as_str().expect("file"));
        let (max, count) = byte_diff(&out, expected.u8());
        assert!(
            max <= 1,
            "{case}: max difference {max} ({count} bytes differ)"
        );
    }
}

#[test]
fn colour_operations_match_torchvision_exactly() {
    for case in manifest()["colour"].as_array().expect("colour cases") {
        let mut pixels = texture().into_raw();
        let factor = &case["factor"];
        match case["op"].as_str().expect("op") {
            "brightness" => adjust_brightness(&mut pixels, float(factor)),
            "contrast" => adjust_contrast(&mut pixels, float(factor)),
            "saturation" => adjust_saturation(&mut pixels, float(factor)),
            "hue" => adjust_hue(&mut pixels, float(factor)),
            "grayscale" => grayscale_in_place(&mut pixels),
            other => panic!("unknown op {other}"),
        }
        let expected = npy(case["file"].as_str().expect("file"));
        let (max, count) = byte_diff(&pixels, expected.u8());
        assert_eq!((max, count), (0, 0), "{case}");
    }
}

#[test]
fn gaussian_blur_matches_pillow_exactly() {
    let m = manifest();
    let tiny = &m["tiny_crop"];
    let full = texture();
    for case in m["blur"].as_array().expect("blur cases") {
        let (mut pixels, width, height) = if case["source"] == "tiny" {
            let (left, top, w, h) = (
                uint(tiny, "left"),
                uint(tiny, "top"),
                uint(tiny, "width"),
                uint(tiny, "height"),
            );
            let full = &full;
            let px: Vec<u8> = (top..top + h)
                .flat_map(|y| {
                    (left..left + w).flat_map(move |x| full.pixel(x, y).unwrap_or([0; 3]))
                })
                .collect();
            (px, w as usize, h as usize)
        } else {
            (
                full.pixels().to_vec(),
                full.width() as usize,
                full.height() as usize,
            )
        };
        gaussian_blur(
            &mut pixels,
            width,
            height,
            float(&case["sigma"]),
            &mut BlurScratch::default(),
        );
        let expected = npy(case["file"].as_str().expect("file"));
        assert_eq!(byte_diff(&pixels, expected.u8()), (0, 0), "{case}");
    }
}

fn jitter_params(v: &Value) -> Option<ColorJitterParams> {
    if v.is_null() {
        return None;
    }
    let op = |name: &str| match name {
        "brightness" => JitterOp::Brightness,
        "contrast" => JitterOp::Contrast,
        "saturation" => JitterOp::Saturation,
        _ => JitterOp::Hue,
    };
    let order: Vec<JitterOp> = v["order"]
        .as_array()
        .expect("order")
        .iter()
        .map(|o| op(o.as_str().expect("op name")))
        .collect();
    Some(ColorJitterParams {
        order: order.try_into().expect("four ops"),
        brightness: Some(float(&v["brightness"])),
        contrast: Some(float(&v["contrast"])),
        saturation: Some(float(&v["saturation"])),
        hue: Some(float(&v["hue"])),
    })
}

/// Largest difference in units of one intensity level of the normalised output.
fn max_level_difference(got: &[f32], expected: &[f32], std: &[f32; 3]) -> f32 {
    assert_eq!(got.len(), expected.len());
    got.iter()
        .zip(expected)
        .enumerate()
        .map(|(i, (g, e))| (g - e).abs() * std[i % 3] * 255.0)
        .fold(0.0, f32::max)
}

/// Each pipeline case checked three ways: the resize alone within one level of PIL's; every
/// later step (jitter in its order, greyscale, blur, flip, ToTensor, Normalize) bit-exact
/// when started from PIL's resized crop; and the whole pipeline from the source image, where
/// a one-level resize difference may be amplified by contrast/saturation factors above 1.
#[test]
fn whole_crop_pipeline_matches_torchvision() {
    let image = texture();
    let table = NormalizeTable::new(&Normalization::SWAV);
    let mut scratch = CropScratch::new();
    for case in manifest()["pipeline"].as_array().expect("pipeline cases") {
        let params = CropParams {
            crop: crop_box(case),
            size: uint(case, "size"),
            flip: case["flip"].as_bool().expect("flip"),
            jitter: jitter_params(&case["jitter"]),
            grayscale: case["grayscale"].as_bool().expect("grayscale"),
            blur_sigma: case["blur_sigma"].as_f64().map(|s| s as f32),
            rotation_degrees: None,
        };
        let size = params.size as usize;
        let expected = npy(case["file"].as_str().expect("file"));
        assert_eq!(expected.shape, vec![size, size, 3]);
        let expected = expected.f32();

        let pil_resized = npy(case["resized_file"].as_str().expect("resized_file"));
        let mut resized = Vec::new();
        CropResizer::new()
            .crop_resize(&image, params.crop, params.size, params.size, &mut resized)
            .expect("resize");
        assert!(
            byte_diff(&resized, pil_resized.u8()).0 <= 1,
            "{case}: resize"
        );

        let mut from_pil = pil_resized.u8().to_vec();
        params.apply_after_resize(&mut from_pil, &mut BlurScratch::default());
        let mut out = vec![0.0; size * size * 3];
        table.write(&from_pil, size, [0, 0, size, size], params.flip, &mut out);
        assert_eq!(out, expected, "{case}: steps after the resize");

        params
            .render_normalized(&image, &table, &mut scratch, &mut out)
            .expect("render");
        let levels = max_level_difference(&out, &expected, &Normalization::SWAV.std);
        let within_one = out
            .iter()
            .zip(&expected)
            .enumerate()
            .filter(|(i, (g, e))| (*g - *e).abs() * Normalization::SWAV.std[i % 3] * 255.0 <= 1.001)
            .count();
        assert!(levels <= 4.001, "{case}: off by {levels} levels");
        assert!(
            within_one * 100 >= out.len() * 97,
            "{case}: {within_one} of {} within one level",
            out.len()
        );
        // The byte rendering agrees with the normalised one.
        let rgb = params.render_rgb(&image, &mut scratch).expect("render rgb");
        let renormalised: Vec<f32> = rgb
            .pixels()
            .iter()
            .enumerate()
            .map(|(i, &v)| table.value(i % 3, v))
            .collect();
        assert_eq!(renormalised, out);
    }
}

#[test]
fn eval_transform_matches_torchvision_within_one_level() {
    let image = texture();
    let mut scratch = CropScratch::new();
    for case in manifest()["eval"].as_array().expect("eval cases") {
        let mode = match case["mode"].as_str().expect("mode") {
            "resize" => EvalMode::Resize,
            _ => EvalMode::ResizeCenterCrop,
        };
        let config = EvalConfig {
            size: uint(case, "size"),
            mode,
            normalization: Normalization::SWAV,
        };
        let transform = EvalTransform::new(config).expect("valid");
        let mut out = vec![0.0; transform.output_len()];
        transform
            .render(&image, &mut scratch, &mut out)
            .expect("render");
        let expected = npy(case["file"].as_str().expect("file"));
        let levels = max_level_difference(&out, &expected.f32(), &Normalization::SWAV.std);
        assert!(levels <= 1.001, "{case}: off by {levels} levels");
    }
}

/// The per-block checksum of the golden script over a 4096 x 4096 image of every colour
/// (pixel p = (r << 16) | (g << 8) | b), with `op` applied to each row of 4096 pixels.
fn block_checksums(op: impl Fn(&mut [u8]), rows_per_block: usize) -> Vec<u64> {
    let mut sums = vec![0u64; 4096 / rows_per_block];
    let mut row = vec![0u8; 4096 * 3];
    for y in 0..4096usize {
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let p = (y * 4096 + x) as u32;
            px.copy_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, p as u8]);
        }
        op(&mut row);
        let offset = (y % rows_per_block) * row.len();
        let block = &mut sums[y / rows_per_block];
        for (k, &v) in row.iter().enumerate() {
            *block = block.wrapping_add(v as u64 * (offset + k + 1) as u64);
        }
    }
    sums
}

#[test]
fn every_rgb_colour_converts_like_pillow() {
    let m = manifest();
    let checks = &m["colour_checksums"];
    let rows = checks["rows_per_block"].as_u64().expect("rows_per_block") as usize;
    let compare = |key: &str, got: Vec<u64>| {
        let want: Vec<u64> = checks[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}"))
            .iter()
            .map(|v| v.as_u64().expect("u64"))
            .collect();
        let bad: Vec<usize> = (0..want.len()).filter(|&i| want[i] != got[i]).collect();
        assert!(
            bad.is_empty(),
            "{key}: {} of {} row blocks differ, first {:?}",
            bad.len(),
            want.len(),
            bad.first()
        );
    };
    compare("luma", block_checksums(grayscale_in_place, rows));
    let to_hsv = |row: &mut [u8]| {
        for px in row.chunks_exact_mut(3) {
            px.copy_from_slice(&rgb_to_hsv(px[0], px[1], px[2]));
        }
    };
    compare("hsv", block_checksums(to_hsv, rows));
    let mut compared = 2;
    for key in checks.as_object().expect("object").keys() {
        if let Some(factor) = key.strip_prefix("hue ") {
            let factor: f32 = factor.parse().expect("factor");
            compare(key, block_checksums(|row| adjust_hue(row, factor), rows));
            compared += 1;
        } else if let Some(factor) = key.strip_prefix("saturation ") {
            let factor: f32 = factor.parse().expect("factor");
            compare(
                key,
                block_checksums(|row| adjust_saturation(row, factor), rows),
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 8, "every checksum of the manifest was compared");
}

#[test]
fn random_resized_crop_fallback_matches_torchvision() {
    for case in manifest()["fallback_boxes"]
        .as_array()
        .expect("fallback cases")
    {
        let b = centre_crop_fallback(
            uint(case, "width"),
            uint(case, "height"),
            [3.0 / 4.0, 4.0 / 3.0],
        );
        let expected = CropBox {
            top: uint(case, "top"),
            left: uint(case, "left"),
            height: uint(case, "crop_height"),
            width: uint(case, "crop_width"),
        };
        assert_eq!(b, expected, "{case}");
    }
}

#[test]
fn sharding_padding_and_iterations_match_pytorch() {
    for case in manifest()["sampler"].as_array().expect("sampler cases") {
        let (len, world, batch) = (
            uint(case, "len") as usize,
            uint(case, "world_size") as usize,
            uint(case, "batch_size") as usize,
        );
        for (rank, shard) in case["shards"]
            .as_array()
            .expect("shards")
            .iter()
            .enumerate()
        {
            let sampler = DistributedSampler::new(len, rank, world, false, 0).expect("valid");
            match shard {
                Value::Array(expected) => {
                    let expected: Vec<usize> = expected
                        .iter()
                        .map(|v| v.as_u64().expect("index") as usize)
                        .collect();
                    assert_eq!(sampler.indices(0), expected, "{case}");
                }
                other => assert_eq!(
                    sampler.num_samples() as u64,
                    other.as_u64().expect("length"),
                    "{case}"
                ),
            }
            let shuffled = DistributedSampler::new(len, rank, world, true, 0).expect("valid");
            let expected_iters = case["iters_per_epoch"].as_u64().expect("iters") as usize;
            assert_eq!(
                iterations(shuffled.num_samples(), batch, true),
                expected_iters,
                "{case}"
            );
        }
    }
}

#[test]
fn texture_fixture_is_rgb() {
    let image: RgbImage = texture();
    assert_eq!((image.width(), image.height()), (64, 48));
}
