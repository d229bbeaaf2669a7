//! Whole-model checks: the multi-crop forward and backward of a small ResNet through the
//! head, the L2 normalisation and the prototype scores, by finite differences.

use alloc::vec::Vec;

use swav_core::SingleProcess;

use super::harness::{Loss, abs_dot, check_derivative, data, dot, download, ok, upload_activation};
use crate::{Arch, Backend, CropGroup, SwavConfig, SwavModel, TrunkConfig};

/// The relative tolerance of the whole-model derivatives: f32 forward passes through ReLU
/// kinks and small-batch batch norm; the largest entries agree within about 3 %, while a
/// wiring mistake (a dropped group, a wrong mask) is off by tens of percent.
const TOL: f64 = 8e-2;

/// The finite-difference step, relative to a tensor's root-mean-square value.
const STEP: f32 = 1e-2;

/// The small network of the whole-model checks: ResNet-18 with the small-image stem, a
/// 32-wide head to 16 dimensions and 10 prototypes.
pub fn small_config() -> SwavConfig {
    SwavConfig {
        trunk: TrunkConfig {
            arch: Arch::ResNet18,
            width: 1,
            base_width: 64,
            small_stem: true,
        },
        hidden_dim: 32,
        output_dim: 16,
        prototypes: 10,
    }
}

/// The multi-crop input of the checks: batch 2, two 16 px crops and two 12 px crops.
struct Input<Buf> {
    batch: usize,
    /// `(crops, side, host images)` per group.
    groups: Vec<(usize, usize, Vec<f32>)>,
    device: Vec<Buf>,
}

fn make_input<B: Backend>(b: &mut B) -> Input<B::Buf> {
    let batch = 2;
    let groups: Vec<(usize, usize, Vec<f32>)> = [(2usize, 16usize), (2, 12)]
        .iter()
        .enumerate()
        .map(|(i, &(crops, side))| {
            (
                crops,
                side,
                data(1300 + i as u64, crops * batch * side * side * 3, 1.0, 0.0),
            )
        })
        .collect();
    let device = groups.iter().map(|g| upload_activation(b, &g.2)).collect();
    Input {
        batch,
        groups,
        device,
    }
}

fn crop_groups<'a, Buf>(input: &'a Input<Buf>) -> Vec<CropGroup<'a, Buf>> {
    input
        .groups
        .iter()
        .zip(&input.device)
        .map(|(g, images)| CropGroup {
            images,
            crops: g.0,
            height: g.1,
            width: g.1,
        })
        .collect()
}

/// All parameter values (host copies, `state_dict` order).
fn read_params<B: Backend>(b: &mut B, model: &SwavModel<B>) -> Vec<Vec<f32>> {
    model
        .params()
        .iter()
        .map(|p| download(b, p.value, p.shape.iter().product()))
        .collect()
}

/// `⟨scores, r⟩` of a training forward (the running statistics it updates do not affect a
/// training forward).
fn loss<B: Backend>(b: &mut B, model: &mut SwavModel<B>, input: &Input<B::Buf>, r: &[f32]) -> Loss {
    ok(model.forward_train(b, &crop_groups(input), input.batch, &SingleProcess));
    let scores = download(b, model.scores().expect("prototypes"), r.len());
    Loss {
        value: dot(&scores, r),
        magnitude: abs_dot(&scores, r),
    }
}

/// A whole small ResNet by finite differences: the gradient of `⟨scores, r⟩` (multi-crop
/// forward with two resolution groups, head, L2 normalisation, prototypes) with respect to
/// the largest-gradient entry of every parameter tensor and of each group's images.
pub fn check_model_gradients<B: Backend>(b: &mut B) {
    check_gradients_of(b, small_config(), |_| true);
}

/// The single-linear projection head (`hidden_dim = 0`, keys `projection_head.weight/bias`)
/// by finite differences, with the last trunk block and the input images: the small
/// network of [`check_model_gradients`] without the hidden layer.
pub fn check_linear_head_gradients<B: Backend>(b: &mut B) {
    let config = SwavConfig {
        hidden_dim: 0,
        ..small_config()
    };
    check_gradients_of(b, config, |name| {
        !name.starts_with("layer") && !name.starts_with("conv1") && !name.starts_with("bn1")
            || name.starts_with("layer4.1")
    });
}

/// The finite-difference checks of `config`, on the parameters `checked` selects.
fn check_gradients_of<B: Backend>(b: &mut B, config: SwavConfig, checked: impl Fn(&str) -> bool) {
    let mut model = match SwavModel::new(b, config, 7) {
        Ok(m) => m,
        Err(e) => panic!("building the model: {e:?}"),
    };
    model.set_input_gradients(true);
    let input = make_input(b);
    // Prototypes are unit rows in training.
    let (k, d) = (model.config().prototypes, model.config().output_dim);
    let prototypes = model.prototypes_mut().expect("prototypes");
    ok(swav_core::normalize_prototypes(b, prototypes, k, d));
    let base = read_params(b, &model);

    // Analytic gradients.
    ok(model.zero_grad(b));
    ok(model.forward_train(b, &crop_groups(&input), input.batch, &SingleProcess));
    let rows = model.rows();
    let r = data(1400, rows * k, 1.0, 0.0);
    let rd = upload_activation(b, &r);
    ok(model.backward(b, &rd, &SingleProcess));
    let grads: Vec<Vec<f32>> = model
        .params()
        .iter()
        .map(|p| download(b, p.grad, p.shape.iter().product()))
        .collect();
    let names: Vec<alloc::string::String> = model.params().iter().map(|p| p.name.into()).collect();
    let input_grads: Vec<Vec<f32>> = (0..input.groups.len())
        .map(|g| {
            let len = input.groups[g].2.len();
            download(b, model.input_gradient(g).expect("input gradients on"), len)
        })
        .collect();

    // The largest gradient entry of every tensor, stepped by 1% of the tensor's magnitude.
    // Through a deep ReLU network in f32, random directions and small entries drown in the
    // roughness the kinks add; the largest entry keeps the derivative well above it, and a
    // wiring mistake (a missing group, a wrong mask or statistic) still shows at once.
    for (i, name) in names.iter().enumerate() {
        if !checked(name) {
            continue;
        }
        let rms = (dot(&base[i], &base[i]) / base[i].len() as f64)
            .sqrt()
            .max(0.1) as f32;
        let j = argmax_abs(&grads[i]);
        let what = alloc::format!("model d/d{name}[{j}]");
        check_derivative(&what, grads[i][j] as f64, 0.0, STEP * rms, TOL, |t| {
            let p = model.params_mut().swap_remove(i);
            ok(b.upload(&[base[i][j] + t], p.value, j));
            let l = loss(b, &mut model, &input, &r);
            let p = model.params_mut().swap_remove(i);
            ok(b.upload(&[base[i][j]], p.value, j));
            l
        });
    }
    // The most sensitive pixel of each group's images.
    for (gi, grad) in input_grads.iter().enumerate() {
        let j = argmax_abs(grad);
        let what = alloc::format!("model d/d(images of group {gi})[{j}]");
        check_derivative(&what, grad[j] as f64, 0.0, STEP, TOL, |t| {
            let mut x = input.groups[gi].2.clone();
            x[j] += t;
            let mut perturbed = make_input(b);
            perturbed.device[gi] = upload_activation(b, &x);
            loss(b, &mut model, &perturbed, &r)
        });
    }
}

/// The index of the largest magnitude.
fn argmax_abs(v: &[f32]) -> usize {
    (0..v.len())
        .max_by(|&i, &j| v[i].abs().total_cmp(&v[j].abs()))
        .unwrap_or(0)
}
