//! Weights I/O: torchvision / SwAV key names and shapes, round trips, and the errors a
//! mismatched file gives.

use swav_core::SingleProcess;
use swav_cpu::CpuBackend;
use swav_nn::{
    Arch, BufferView, CropGroup, ExportOptions, ImportOptions, SwavConfig, SwavModel, TrunkConfig,
    WeightsError, export_safetensors, import_safetensors,
};

const KEYS: &str = include_str!("../../swav-nn/goldens/state_dict_keys.json");

fn config(arch: Arch, width: usize) -> SwavConfig {
    SwavConfig {
        trunk: TrunkConfig {
            arch,
            width,
            base_width: 64,
            small_stem: false,
        },
        hidden_dim: 2048,
        output_dim: 128,
        prototypes: 3000,
    }
}

/// `(key, shape)` of every parameter, then of every buffer, each in state-dict order.
fn model_keys(model: &SwavModel<CpuBackend>) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = model
        .params()
        .iter()
        .map(|p| (p.name.to_string(), p.shape.to_vec()))
        .collect();
    for buffer in model.buffers() {
        out.push(match buffer {
            BufferView::RunningStat { name, len, .. } => (name.to_string(), vec![len]),
            BufferView::BatchCount { name, .. } => (name.to_string(), vec![]),
        });
    }
    out
}

/// Whether a state-dict key is a buffer rather than a parameter.
fn is_buffer(key: &str) -> bool {
    key.ends_with("running_mean") || key.ends_with("running_var") || key.ends_with("tracked")
}

/// The reference listing reordered like [`model_keys`]: parameters, then buffers.
fn split(listing: Vec<(String, Vec<usize>)>) -> Vec<(String, Vec<usize>)> {
    let (buffers, mut params): (Vec<_>, Vec<_>) =
        listing.into_iter().partition(|(k, _)| is_buffer(k));
    params.extend(buffers);
    params
}

fn reference(arch: &str) -> Vec<(String, Vec<usize>)> {
    let json: serde_json::Value = serde_json::from_str(KEYS).expect("key listing");
    json[arch]
        .as_array()
        .expect("arch listed")
        .iter()
        .map(|e| {
            let name = e[0].as_str().expect("name").to_string();
            let shape = e[1]
                .as_array()
                .expect("shape")
                .iter()
                .map(|d| d.as_u64().expect("dim") as usize)
                .collect();
            (name, shape)
        })
        .collect()
}

#[test]
fn keys_and_shapes_are_torchvision_and_swav_in_state_dict_order() {
    let mut b = CpuBackend::new();
    for (arch, name) in [
        (Arch::ResNet18, "resnet18"),
        (Arch::ResNet34, "resnet34"),
        (Arch::ResNet50, "resnet50"),
    ] {
        let model = SwavModel::new(&mut b, config(arch, 1), 0).expect("model");
        let mut want = reference(name);
        want.retain(|(k, _)| !k.starts_with("fc."));
        want.extend(
            reference("swav_resnet50_head")
                .into_iter()
                .map(|(k, mut s)| {
                    // The head's input width follows the trunk (512 for the basic-block models).
                    if k == "projection_head.0.weight" {
                        s[1] = model.feature_dim();
                    }
                    (k, s)
                }),
        );
        assert_eq!(model_keys(&model), split(want), "{name}: state-dict keys");
    }
}

#[test]
fn width_multiplier_scales_every_stage() {
    let mut b = CpuBackend::new();
    let model = SwavModel::new(&mut b, config(Arch::ResNet50, 2), 0).expect("model");
    let keys = model_keys(&model);
    let shape = |k: &str| keys.iter().find(|(n, _)| n == k).expect(k).1.clone();
    assert_eq!(shape("conv1.weight"), vec![128, 3, 7, 7]);
    assert_eq!(shape("layer1.0.conv1.weight"), vec![128, 128, 1, 1]);
    assert_eq!(shape("layer4.2.conv3.weight"), vec![4096, 1024, 1, 1]);
    assert_eq!(shape("projection_head.0.weight"), vec![2048, 4096]);
    assert_eq!(model.feature_dim(), 4096);
    // The official SwAV README's "94M" for RN50-w2 (its table of larger architectures): 4×
    // the convolutions (2× the stem's, which reads 3 channels) and 2× the batch-norm
    // parameters of the 23.5M trunk.
    let trunk: usize = model
        .params()
        .iter()
        .filter(|p| !p.name.starts_with("projection_head") && !p.name.starts_with("prototypes"))
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    assert_eq!(trunk, 93_907_072);
}

#[test]
fn resnet50_parameter_counts_match_the_spec() {
    let mut b = CpuBackend::new();
    let model = SwavModel::new(&mut b, SwavConfig::resnet50(), 0).expect("model");
    let count = |prefix: &str| -> usize {
        model
            .params()
            .iter()
            .filter(|p| p.name.starts_with(prefix))
            .map(|p| p.shape.iter().product::<usize>())
            .sum()
    };
    let total = model.param_count();
    let head = count("projection_head");
    let prototypes = count("prototypes");
    assert_eq!(total - head - prototypes, 23_508_032);
    assert_eq!(count("projection_head.0"), 4_196_352);
    assert_eq!(count("projection_head.1"), 4_096);
    assert_eq!(count("projection_head.3"), 262_272);
    assert_eq!(prototypes, 384_000);
}

/// A small model after one training step (running statistics and counters non-trivial).
fn trained_small(seed: u64) -> (CpuBackend, SwavModel<CpuBackend>) {
    let mut b = CpuBackend::new();
    let mut model = SwavModel::new(&mut b, swav_nn::conformance::small_config(), seed).unwrap();
    let images: Vec<f32> = (0..2 * 16 * 16 * 3)
        .map(|i| (i % 17) as f32 / 8.0 - 1.0)
        .collect();
    let groups = [CropGroup {
        images: &images,
        crops: 1,
        height: 16,
        width: 16,
    }];
    model
        .forward_train(&mut b, &groups, 2, &SingleProcess)
        .unwrap();
    (b, model)
}

fn snapshot(model: &SwavModel<CpuBackend>) -> Vec<(String, Vec<f32>)> {
    let mut out: Vec<(String, Vec<f32>)> = model
        .params()
        .iter()
        .map(|p| (p.name.to_string(), p.value.clone()))
        .collect();
    for buffer in model.buffers() {
        match buffer {
            BufferView::RunningStat { name, value, .. } => {
                out.push((name.to_string(), value.clone()))
            }
            BufferView::BatchCount { name, value } => {
                out.push((name.to_string(), vec![value as f32]))
            }
        }
    }
    out
}

#[test]
fn export_then_import_restores_every_tensor() {
    let (mut b, source) = trained_small(1);
    let bytes = export_safetensors(&source, &mut b, &ExportOptions::default()).unwrap();
    let mut target = SwavModel::new(&mut b, swav_nn::conformance::small_config(), 2).unwrap();
    assert_ne!(snapshot(&source), snapshot(&target));
    let report = import_safetensors(&mut target, &mut b, &bytes, &ImportOptions::strict()).unwrap();
    assert_eq!(report.loaded, snapshot(&source).len());
    assert_eq!(snapshot(&source), snapshot(&target));
}

#[test]
fn module_prefix_round_trips_and_is_required_to_be_stripped() {
    let (mut b, source) = trained_small(1);
    let options = ExportOptions {
        prefix: Some("module.".into()),
        trunk_only: false,
    };
    let bytes = export_safetensors(&source, &mut b, &options).unwrap();
    let mut target = SwavModel::new(&mut b, swav_nn::conformance::small_config(), 2).unwrap();
    match import_safetensors(&mut target, &mut b, &bytes, &ImportOptions::strict()) {
        Err(WeightsError::MissingKeys(keys)) => assert!(keys.contains(&"conv1.weight".into())),
        other => panic!("expected missing keys, got {other:?}"),
    }
    import_safetensors(
        &mut target,
        &mut b,
        &bytes,
        &ImportOptions::swav_checkpoint(),
    )
    .unwrap();
    assert_eq!(snapshot(&source), snapshot(&target));
}

#[test]
fn trunk_only_export_loads_into_a_model_with_a_fresh_head() {
    let (mut b, source) = trained_small(1);
    let options = ExportOptions {
        prefix: None,
        trunk_only: true,
    };
    let bytes = export_safetensors(&source, &mut b, &options).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(
        file.names()
            .iter()
            .all(|k| !k.starts_with("projection_head"))
    );
    assert!(file.names().iter().all(|k| !k.starts_with("prototypes")));
    let mut target = SwavModel::new(&mut b, swav_nn::conformance::small_config(), 2).unwrap();
    match import_safetensors(&mut target, &mut b, &bytes, &ImportOptions::strict()) {
        Err(WeightsError::MissingKeys(keys)) => {
            assert!(
                keys.iter()
                    .all(|k| k.starts_with("projection_head") || k.starts_with("prototypes"))
            );
            assert!(keys.contains(&"prototypes.weight".into()));
        }
        other => panic!("expected missing head keys, got {other:?}"),
    }
    let report = import_safetensors(
        &mut target,
        &mut b,
        &bytes,
        &ImportOptions::torchvision_trunk(),
    )
    .unwrap();
    assert!(report.missing.contains(&"prototypes.weight".into()));
    let conv1 = |m: &SwavModel<CpuBackend>| m.params()[0].value.clone();
    assert_eq!(conv1(&source), conv1(&target));
}

/// Builds a safetensors file from `(key, shape, f32 data)`.
fn file_with(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, d)| d.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<_> = tensors
        .iter()
        .zip(&bytes)
        .map(|((k, s, _), b)| {
            let dtype = if k.ends_with("num_batches_tracked") {
                safetensors::Dtype::I64
            } else {
                safetensors::Dtype::F32
            };
            let view = safetensors::tensor::TensorView::new(dtype, s.clone(), b).unwrap();
            (k.clone(), view)
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// The exported tensors of `model` as `(key, shape, data)`, counters as 8 bytes of f32 pairs.
fn tensors_of(
    b: &mut CpuBackend,
    model: &SwavModel<CpuBackend>,
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = export_safetensors(model, b, &ExportOptions::default()).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(k, v)| {
            let data = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (k, v.shape().to_vec(), data)
        })
        .collect()
}

#[test]
fn mismatched_files_are_clear_errors_and_leave_the_model_unchanged() {
    let (mut b, source) = trained_small(1);
    let good = tensors_of(&mut b, &source);
    let mut target = SwavModel::new(&mut b, swav_nn::conformance::small_config(), 2).unwrap();
    let before = snapshot(&target);

    // An extra key: unexpected unless ignored.
    let mut extra = good.clone();
    extra.push(("fc.weight".into(), vec![2, 2], vec![0.0; 4]));
    let bytes = file_with(&extra);
    match import_safetensors(&mut target, &mut b, &bytes, &ImportOptions::strict()) {
        Err(WeightsError::UnexpectedKeys(keys)) => {
            assert_eq!(keys, vec!["fc.weight".to_string()])
        }
        other => panic!("expected an unexpected key, got {other:?}"),
    }
    assert_eq!(snapshot(&target), before);
    let options = ImportOptions {
        ignore: vec!["fc.*".into()],
        ..ImportOptions::strict()
    };
    let report = import_safetensors(&mut target, &mut b, &bytes, &options).unwrap();
    assert_eq!(report.ignored, vec!["fc.weight".to_string()]);

    // A wrong shape names the key and both shapes.
    let mut target = SwavModel::new(&mut b, swav_nn::conformance::small_config(), 2).unwrap();
    let mut wrong = good.clone();
    let i = wrong
        .iter()
        .position(|(k, _, _)| k == "layer1.0.conv1.weight")
        .unwrap();
    wrong[i].1 = vec![64, 64, 9];
    let err = import_safetensors(
        &mut target,
        &mut b,
        &file_with(&wrong),
        &ImportOptions::strict(),
    )
    .unwrap_err();
    match &err {
        WeightsError::ShapeMismatch {
            key,
            expected,
            found,
        } => {
            assert_eq!(key, "layer1.0.conv1.weight");
            assert_eq!(expected, &vec![64, 64, 3, 3]);
            assert_eq!(found, &vec![64, 64, 9]);
        }
        other => panic!("expected a shape mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("layer1.0.conv1.weight"));
    assert_eq!(snapshot(&target), before);

    // Not a safetensors file at all.
    assert!(matches!(
        import_safetensors(&mut target, &mut b, b"not a file", &ImportOptions::strict()),
        Err(WeightsError::Format(_))
    ));
}

#[test]
fn files_round_trip_through_the_file_helpers() {
    let (mut b, source) = trained_small(3);
    let dir = std::env::temp_dir().join(format!("swav-nn-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    swav_nn::save_safetensors_file(&source, &mut b, &path, &ExportOptions::default()).unwrap();
    let mut target = SwavModel::new(&mut b, swav_nn::conformance::small_config(), 4).unwrap();
    swav_nn::load_safetensors_file(&mut target, &mut b, &path, &ImportOptions::strict()).unwrap();
    assert_eq!(snapshot(&source), snapshot(&target));
    let missing = dir.join("absent.safetensors");
    let err =
        swav_nn::load_safetensors_file(&mut target, &mut b, &missing, &ImportOptions::strict())
            .unwrap_err();
    assert!(err.to_string().contains("absent.safetensors"));
    std::fs::remove_dir_all(&dir).unwrap();
}
