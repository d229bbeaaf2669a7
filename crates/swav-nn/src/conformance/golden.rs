//! PyTorch parity: the model against reference outputs made by
//! `scripts/goldens/model_goldens.py` (torch + torchvision) and committed in `goldens/`.
//!
//! Weights and inputs are not stored: both sides generate them from the same hash formula
//! ([`hashed_uniform`] keyed by each tensor's name). The weights reach the model through
//! [`import_safetensors`] in PyTorch layout, so the checks also cover the import path and the
//! OIHW → OHWI conversion. The references are PyTorch's float64 results; tolerances are
//! outputs within 1e-4 and gradients within 1e-3 of the largest magnitude of the tensor
//! compared, or 4× PyTorch float32's own error where that is larger (training-mode
//! ResNet-50 gradients on a batch of two are ill-conditioned; the file records that error
//! per tensor).

use alloc::string::String;
use alloc::vec::Vec;

use safetensors::{Dtype, SafeTensors};
use swav_core::SingleProcess;

use super::harness::{assert_close, download, ok, upload, upload_activation};
use crate::model::{Entry, Layout};
use crate::{
    Arch, Backend, CropGroup, ImportOptions, SwavConfig, SwavModel, TrunkConfig, hashed_uniform,
    import_safetensors, mix64, oihw_from_ohwi,
};

const RESNET18: &[u8] = include_bytes!("../../goldens/resnet18_64px.safetensors");
const RESNET50: &[u8] = include_bytes!("../../goldens/resnet50_64px.safetensors");
const SWAV: &[u8] = include_bytes!("../../goldens/swav_resnet18_small_stem.safetensors");

const COTANGENT_STREAM: u64 = 0xB0_0000;
const OUTPUT_TOL: f64 = 1e-4;
const GRADIENT_TOL: f64 = 1e-3;
/// How far beyond PyTorch float32's own error (against float64) a backend may be.
const NOISE_FACTOR: f64 = 4.0;
/// Below this magnitude a stored gradient is rounding noise around an exact zero.
const NUMERICAL_ZERO: f64 = 1e-5;

/// The low 24 bits of the 64-bit FNV-1a hash of `name`: the formula stream of a tensor.
fn stream_of(name: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &byte in name.as_bytes() {
        h ^= byte as u64;
        h = h.wrapping_mul(0x0100_0000_01B3);
    }
    h & 0xFF_FFFF
}

/// The generated value of state-dict tensor `name` with PyTorch shape `shape`.
fn formula(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let stream = stream_of(name);
    let u = (0..n as u64).map(|i| hashed_uniform(stream, i));
    if name.ends_with("running_mean") {
        u.map(|u| 0.1 * u).collect()
    } else if name.ends_with("running_var") {
        u.map(|u| 1.25 + 0.25 * u).collect()
    } else if name.ends_with("bias") {
        u.map(|u| 0.1 * u).collect()
    } else if shape.len() == 4 {
        let fan_out = (shape[0] * shape[2] * shape[3]) as f64;
        let s = (libm::sqrt(3.0) * libm::sqrt(2.0 / fan_out)) as f32;
        u.map(|u| u * s).collect()
    } else if shape.len() == 2 {
        let s = (1.0 / libm::sqrt(shape[1] as f64)) as f32;
        u.map(|u| u * s).collect()
    } else if name.ends_with("bn3.weight") {
        u.map(|u| 0.2 + 0.05 * u).collect()
    } else {
        u.map(|u| 1.0 + 0.25 * u).collect()
    }
}

/// The formula weights of every tensor of `model`, as a PyTorch-layout safetensors file.
fn formula_weights<B: Backend>(model: &SwavModel<B>) -> Vec<u8> {
    let mut tensors: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = Vec::new();
    for entry in model.entries() {
        let name = String::from(entry.name());
        let (shape, dtype, bytes) = match entry {
            Entry::Param(p) => {
                let v = formula(&name, &p.shape);
                (p.shape.clone(), Dtype::F32, le_bytes(&v))
            }
            Entry::Stat(s) => {
                let v = formula(&name, &[s.len]);
                (alloc::vec![s.len], Dtype::F32, le_bytes(&v))
            }
            Entry::Counter(_) => (Vec::new(), Dtype::I64, 0i64.to_le_bytes().to_vec()),
        };
        tensors.push((name, shape, dtype, bytes));
    }
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, s, d, b)| {
            let view = safetensors::tensor::TensorView::new(*d, s.clone(), b);
            (n.as_str(), view.expect("a consistent tensor"))
        })
        .collect();
    safetensors::serialize(views, None).expect("serialising formula weights")
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A parsed golden file.
struct Golden<'a> {
    bytes: &'a [u8],
    file: SafeTensors<'a>,
    name: &'static str,
}

impl<'a> Golden<'a> {
    fn new(name: &'static str, bytes: &'a [u8]) -> Self {
        let file = SafeTensors::deserialize(bytes).expect("a valid golden file");
        Self { bytes, file, name }
    }

    fn f32s(&self, key: &str) -> Vec<f32> {
        let view = self
            .file
            .tensor(key)
            .unwrap_or_else(|_| panic!("{}: no tensor {key}", self.name));
        assert_eq!(view.dtype(), Dtype::F32, "{}: {key} dtype", self.name);
        view.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    fn indices(&self, key: &str) -> Vec<usize> {
        let view = self
            .file
            .tensor(key)
            .unwrap_or_else(|_| panic!("{}: no tensor {key}", self.name));
        view.data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as usize)
            .collect()
    }

    /// The tolerance for `key`: `tol`, or a multiple of PyTorch float32's own error on it
    /// when that is larger (an ill-conditioned tensor).
    fn tolerance(&self, key: &str, tol: f64) -> f64 {
        let noise = self.f32s(&alloc::format!("noise/{key}"))[0] as f64;
        tol.max(NOISE_FACTOR * noise)
    }

    /// Compares a whole tensor (PyTorch layout) within the tolerance of its largest
    /// magnitude.
    fn compare(&self, key: &str, got: &[f32], tol: f64) {
        let want: Vec<f64> = self.f32s(key).iter().map(|&v| v as f64).collect();
        let tol = self.tolerance(key, tol);
        assert_close(&alloc::format!("{}: {key}", self.name), got, &want, tol);
    }

    /// Compares a tensor (PyTorch layout) with its stored checksum: sum (relative to the L1
    /// norm), L1, L2 and max |x| (relative), and the sampled entries (relative to max |x|).
    fn compare_checksum(&self, group: &str, key: &str, got: &[f32], tol: f64) {
        let want = self.f32s(&alloc::format!("{group}/{key}"));
        let idx = self.indices(&alloc::format!("{group}_index/{key}"));
        let tol = self.tolerance(&alloc::format!("{group}/{key}"), tol);
        let (mut sum, mut l1, mut l2, mut max) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for &v in got {
            let v = v as f64;
            sum += v;
            l1 += v.abs();
            l2 += v * v;
            max = max.max(v.abs());
        }
        let l2 = libm::sqrt(l2);
        let what = alloc::format!("{}: {group} of {key}", self.name);
        let (w_sum, w_l1, w_l2, w_max) = (
            want[0] as f64,
            want[1] as f64,
            want[2] as f64,
            want[3] as f64,
        );
        if w_max < NUMERICAL_ZERO {
            // A gradient that is zero in exact arithmetic (a bias before batch norm): both
            // sides hold rounding noise only.
            assert!(
                max < NUMERICAL_ZERO,
                "{what}: max {max:e}, PyTorch's is {w_max:e}"
            );
            return;
        }
        let close = |a: f64, b: f64, scale: f64| (a - b).abs() <= tol * scale.max(1e-30);
        assert!(
            close(sum, w_sum, w_l1),
            "{what}: sum {sum:e} vs {w_sum:e} (L1 {w_l1:e})"
        );
        assert!(close(l1, w_l1, w_l1), "{what}: L1 {l1:e} vs {w_l1:e}");
        assert!(close(l2, w_l2, w_l2), "{what}: L2 {l2:e} vs {w_l2:e}");
        assert!(close(max, w_max, w_max), "{what}: max {max:e} vs {w_max:e}");
        for (k, &i) in idx.iter().enumerate() {
            let (a, b) = (got[i] as f64, want[4 + k] as f64);
            assert!(close(a, b, w_max), "{what}: entry {i}: {a:e} vs {b:e}");
        }
    }

    fn meta(&self, key: &str) -> String {
        let (_, meta) = SafeTensors::read_metadata(self.bytes).expect("metadata");
        meta.metadata()
            .as_ref()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_else(|| panic!("{}: no metadata {key}", self.name))
    }
}

/// NCHW images from formula stream `stream`, returned NHWC.
fn images(stream: u64, n: usize, size: usize) -> Vec<f32> {
    let nchw: Vec<f32> = (0..(n * 3 * size * size) as u64)
        .map(|i| hashed_uniform(stream, i))
        .collect();
    nhwc_from_nchw(&nchw, n, 3, size * size)
}

fn nhwc_from_nchw(x: &[f32], n: usize, c: usize, pixels: usize) -> Vec<f32> {
    let mut out = alloc::vec![0.0; x.len()];
    for i in 0..n {
        for ch in 0..c {
            for p in 0..pixels {
                out[(i * pixels + p) * c + ch] = x[(i * c + ch) * pixels + p];
            }
        }
    }
    out
}

fn nchw_from_nhwc(x: &[f32], n: usize, c: usize, pixels: usize) -> Vec<f32> {
    let mut out = alloc::vec![0.0; x.len()];
    for i in 0..n {
        for ch in 0..c {
            for p in 0..pixels {
                out[(i * c + ch) * pixels + p] = x[(i * pixels + p) * c + ch];
            }
        }
    }
    out
}

/// Builds `config`, loads the formula weights through the safetensors import.
fn model_with_formula_weights<B: Backend>(b: &mut B, config: SwavConfig) -> SwavModel<B> {
    let mut model = match SwavModel::new(b, config, 0) {
        Ok(m) => m,
        Err(e) => panic!("building the model: {e:?}"),
    };
    let bytes = formula_weights(&model);
    if let Err(e) = import_safetensors(&mut model, b, &bytes, &ImportOptions::strict()) {
        panic!("importing the formula weights: {e:?}");
    }
    model
}

/// Every parameter gradient and running statistic against the golden checksums (only the
/// trunk's when `trunk_only`).
fn compare_tensors<B: Backend>(
    b: &mut B,
    golden: &Golden<'_>,
    model: &SwavModel<B>,
    trunk_only: bool,
) {
    let skip = |name: &str| {
        trunk_only && (name.starts_with("projection_head") || name.starts_with("prototypes"))
    };
    for p in model.params() {
        if skip(p.name) {
            continue;
        }
        let mut g = download(b, p.grad, p.shape.iter().product());
        if p.layout == Layout::Ohwi {
            g = oihw_from_ohwi(&g, p.shape[0], p.shape[1], p.shape[2]);
        }
        golden.compare_checksum("grad", p.name, &g, GRADIENT_TOL);
    }
    for buffer in model.buffers() {
        if let crate::BufferView::RunningStat { name, len, value } = buffer {
            if skip(name) {
                continue;
            }
            let v = download(b, value, len);
            golden.compare_checksum("running", name, &v, OUTPUT_TOL);
        }
    }
}

fn trunk_golden<B: Backend>(b: &mut B, golden: &Golden<'_>, arch: Arch) {
    let size: usize = golden.meta("size").parse().expect("size");
    let batch: usize = golden.meta("batch").parse().expect("batch");
    let config = SwavConfig {
        trunk: TrunkConfig::new(arch),
        hidden_dim: 0,
        output_dim: 1,
        prototypes: 0,
    };
    let mut model = model_with_formula_weights(b, config);
    let f = model.feature_dim();
    let stream: u64 = golden.meta("input_stream").parse().expect("input_stream");
    let x = upload_activation(b, &images(stream, batch, size));

    // Evaluation mode first (the training pass updates the running statistics).
    let mut features = ok(b.zeros(batch * f));
    ok(model.forward_eval_features(b, &x, batch, size, size, &mut features));
    golden.compare(
        "pooled_eval",
        &download(b, &features, batch * f),
        OUTPUT_TOL,
    );

    model.set_input_gradients(true);
    let group = [CropGroup {
        images: &x,
        crops: 1,
        height: size,
        width: size,
    }];
    ok(model.zero_grad(b));
    ok(model.forward_train_features(b, &group, batch, &SingleProcess));
    let pooled = download(b, model.features().expect("features"), batch * f);
    golden.compare("pooled_train", &pooled, OUTPUT_TOL);
    let cot: Vec<f32> = (0..(batch * f) as u64)
        .map(|i| hashed_uniform(COTANGENT_STREAM, i))
        .collect();
    let cot = upload(b, &cot);
    ok(model.backward_features(b, &cot, &SingleProcess));
    let pixels = size * size;
    let dx = download(
        b,
        model.input_gradient(0).expect("input gradient"),
        batch * 3 * pixels,
    );
    golden.compare(
        "input_grad",
        &nchw_from_nhwc(&dx, batch, 3, pixels),
        GRADIENT_TOL,
    );
    compare_tensors(b, golden, &model, true);
}

/// torchvision `resnet18` on a 64 px batch of 2, evaluation and training mode: pooled
/// features, input gradient, every weight gradient, the updated running statistics.
pub fn check_golden_resnet18<B: Backend>(b: &mut B) {
    trunk_golden(b, &Golden::new("resnet18", RESNET18), Arch::ResNet18);
}

/// torchvision `resnet50` on a 64 px batch of 2, evaluation and training mode (as
/// [`check_golden_resnet18`]).
pub fn check_golden_resnet50<B: Backend>(b: &mut B) {
    trunk_golden(b, &Golden::new("resnet50", RESNET50), Arch::ResNet50);
}

/// The SwAV network (ResNet-18, small-image stem, head 512 → 64 → 16, 20 prototypes) on two
/// resolution groups (2 crops at 32 px, 2 at 16 px, batch 2), against the official
/// multi-crop forward in PyTorch: in evaluation mode the features, embeddings and scores; in
/// training mode those, the input gradients of both groups, every weight gradient and the
/// updated running statistics.
pub fn check_golden_swav<B: Backend>(b: &mut B) {
    let golden = Golden::new("swav", SWAV);
    let batch: usize = golden.meta("batch").parse().expect("batch");
    let config = SwavConfig {
        trunk: TrunkConfig {
            arch: Arch::ResNet18,
            width: 1,
            base_width: 64,
            small_stem: true,
        },
        hidden_dim: golden.meta("hidden").parse().expect("hidden"),
        output_dim: golden.meta("output_dim").parse().expect("output_dim"),
        prototypes: golden.meta("prototypes").parse().expect("prototypes"),
    };
    let groups: [(usize, usize); 2] = [(2, 32), (2, 16)];
    assert_eq!(
        golden.meta("groups"),
        "[[2, 32], [2, 16]]",
        "swav golden: groups"
    );
    let mut model = model_with_formula_weights(b, config);
    let (k, d) = (config.prototypes, config.output_dim);
    ok(swav_core::normalize_prototypes(
        b,
        model.prototypes_mut().expect("prototypes"),
        k,
        d,
    ));
    model.set_input_gradients(true);
    let stream: u64 = golden.meta("input_stream").parse().expect("input_stream");
    let inputs: Vec<B::Buf> = groups
        .iter()
        .enumerate()
        .map(|(g, &(crops, size))| {
            upload_activation(b, &images(stream + g as u64, crops * batch, size))
        })
        .collect();
    let crop_groups: Vec<CropGroup<'_, B::Buf>> = groups
        .iter()
        .zip(&inputs)
        .map(|(&(crops, size), images)| CropGroup {
            images,
            crops,
            height: size,
            width: size,
        })
        .collect();
    // Evaluation mode first (the training pass updates the running statistics): the trunk
    // per group, the head on all rows.
    let rows: usize = groups.iter().map(|g| g.0 * batch).sum();
    let f = model.feature_dim();
    let mut all = ok(b.zeros(rows * f));
    let mut row = 0;
    for (&(crops, size), images) in groups.iter().zip(&inputs) {
        let n = crops * batch;
        let mut features = ok(b.zeros(n * f));
        ok(model.forward_eval_features(b, images, n, size, size, &mut features));
        ok(b.copy(&features, 0, &mut all, row * f, n * f));
        row += n;
    }
    golden.compare("features_eval", &download(b, &all, rows * f), OUTPUT_TOL);
    let (mut z, mut scores) = (ok(b.zeros(rows * d)), ok(b.zeros(rows * k)));
    ok(model.forward_eval_head(b, &all, rows, &mut z, Some(&mut scores)));
    golden.compare("embeddings_eval", &download(b, &z, rows * d), OUTPUT_TOL);
    golden.compare("scores_eval", &download(b, &scores, rows * k), OUTPUT_TOL);

    ok(model.zero_grad(b));
    ok(model.forward_train(b, &crop_groups, batch, &SingleProcess));
    assert_eq!(model.rows(), rows, "swav golden: rows");
    let features = download(b, model.features().expect("features"), rows * f);
    golden.compare("features", &features, OUTPUT_TOL);
    let z = download(b, model.embeddings().expect("embeddings"), rows * d);
    golden.compare("embeddings", &z, OUTPUT_TOL);
    let scores = download(b, model.scores().expect("scores"), rows * k);
    golden.compare("scores", &scores, OUTPUT_TOL);

    let cot: Vec<f32> = (0..(rows * k) as u64)
        .map(|i| hashed_uniform(COTANGENT_STREAM + 1, i))
        .collect();
    let cot = upload(b, &cot);
    ok(model.backward(b, &cot, &SingleProcess));
    for (g, &(crops, size)) in groups.iter().enumerate() {
        let (n, pixels) = (crops * batch, size * size);
        let dx = download(
            b,
            model.input_gradient(g).expect("input gradient"),
            n * 3 * pixels,
        );
        golden.compare(
            &alloc::format!("input_grad/{g}"),
            &nchw_from_nhwc(&dx, n, 3, pixels),
            GRADIENT_TOL,
        );
    }
    compare_tensors(b, &golden, &model, false);
    // The sample indices are derived like the script's (a guard against format drift).
    let idx = golden.indices("grad_index/conv1.weight");
    let n = 64 * 3 * 3 * 3;
    let want: Vec<usize> = (0..8)
        .map(|k| (mix64(stream_of("conv1.weight") * 16 + k) % n as u64) as usize)
        .collect();
    assert_eq!(idx, want, "swav golden: sample indices");
}
