//! Seeded mutation fuzzing of every parser `swav` owns, on stable Rust: the checkpoint file,
//! the weights reader with its safetensors import, the `.npy` reader, the JPEG structure
//! check with the image decoder behind it, the TOML configuration file, the MNIST-format
//! IDX reader, and the WebDataset shard reader (tar members grouped into samples).
//!
//! The seeds are files the tool itself writes (a checkpoint and exports of a tiny run, its
//! `config.toml`, `.npy` matrices, JPEG images, an MNIST-format pair). Each target must turn every mutated input
//! into a value or a typed error, without panicking, hanging or allocating by a header
//! field's word (see `mutation`). `SWAV_FUZZ_INPUTS=N` runs longer campaigns;
//! `SWAV_FUZZ_CORPUS=DIR` also writes the seeds for `cargo fuzz` (docs/reliability.md).

mod mutation;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use mutation::{Budget, MeasuringAllocator, Outcome, fuzz};
use swav_augment::dataset::decode::decode_image;
use swav_augment::dataset::export::{ExportFormat, export_image_folder};
use swav_augment::dataset::idx::IdxDataset;
use swav_augment::dataset::jpeg_structure::jpeg_is_complete;
use swav_augment::dataset::{Dataset, SyntheticConfig, SyntheticDataset, SyntheticSplit};
use swav_augment::shards::{ShardWriter, count_samples, read_samples};
use swav_cli::checkpoint_file::CheckpointFile;
use swav_cli::config_file::overlay_file;
use swav_cli::model_loading::load_model;
use swav_cli::npy::parse_matrix;
use swav_cli::presets::Preset;
use swav_cli::train::weights_source::WeightsSource;

#[global_allocator]
static ALLOCATOR: MeasuringAllocator = MeasuringAllocator;

/// The valid files every campaign starts from.
struct Seeds {
    checkpoint: Vec<u8>,
    official_weights: Vec<u8>,
    trunk_weights: Vec<u8>,
    config: Vec<u8>,
    npy: Vec<Vec<u8>>,
    jpeg: Vec<Vec<u8>>,
    idx: Vec<Vec<u8>>,
    _dir: tempfile::TempDir,
}

/// A run small enough that its checkpoint (about 60 kB) mutates quickly.
const SMALL_RUN: &[&str] = &[
    "--synthetic-classes",
    "2",
    "--synthetic-images-per-class",
    "4",
    "--synthetic-image-size",
    "16",
    "--nmb-crops",
    "2",
    "--size-crops",
    "16",
    "--arch",
    "resnet18",
    "--base-width",
    "2",
    "--small-stem",
    "true",
    "--hidden-mlp",
    "8",
    "--feat-dim",
    "4",
    "--nmb-prototypes",
    "3",
    "--batch-size",
    "4",
    "--epochs",
    "1",
    "--workers",
    "1",
    "--eval-knn",
    "false",
];

fn swav(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_swav"))
        .args(args)
        .output()
        .expect("swav runs");
    assert!(
        out.status.success(),
        "swav {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temporary path")
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let mut args = vec!["pretrain", "--output", path_str(&run)];
        args.extend_from_slice(SMALL_RUN);
        swav(&args);
        let checkpoint = run.join("checkpoint.safetensors");
        let official = dir.path().join("official.safetensors");
        let trunk = dir.path().join("trunk.safetensors");
        swav(&[
            "export",
            "--checkpoint",
            path_str(&checkpoint),
            "--output",
            path_str(&official),
            "--official-layout",
        ]);
        let export = ["export", "--checkpoint", path_str(&checkpoint), "--output"];
        swav(&[&export[..], &[path_str(&trunk)]].concat());

        let matrix = ndarray::Array2::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f32 - 4.5);
        let mut npy = Vec::new();
        for f64_matrix in [false, true] {
            let mut bytes = Vec::new();
            if f64_matrix {
                ndarray_npy::WriteNpyExt::write_npy(&matrix.mapv(f64::from), &mut bytes)
            } else {
                ndarray_npy::WriteNpyExt::write_npy(&matrix, &mut bytes)
            }
            .unwrap();
            npy.push(bytes);
        }

        let images = dir.path().join("images");
        let config = SyntheticConfig {
            image_size: 16,
            num_classes: 2,
            images_per_class: 2,
            seed: 0,
            ..SyntheticConfig::default()
        };
        let data = SyntheticDataset::new(config, SyntheticSplit::Train).unwrap();
        export_image_folder(&data, &images, ExportFormat::Jpeg { quality: 90 }).unwrap();
        let jpeg = files_under(&images)
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();

        let seeds = Seeds {
            checkpoint: std::fs::read(&checkpoint).unwrap(),
            official_weights: std::fs::read(&official).unwrap(),
            trunk_weights: std::fs::read(&trunk).unwrap(),
            config: std::fs::read(run.join("config.toml")).unwrap(),
            npy,
            jpeg,
            idx: idx_seeds(),
            _dir: dir,
        };
        if let Ok(corpus) = std::env::var("SWAV_FUZZ_CORPUS") {
            write_corpus(Path::new(&corpus), &seeds);
        }
        seeds
    })
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Writes the seeds as the starting corpus of each `cargo fuzz` target.
fn write_corpus(root: &Path, seeds: &Seeds) {
    let targets: [(&str, Vec<&Vec<u8>>); 7] = [
        ("checkpoint_file", vec![&seeds.checkpoint]),
        (
            "weights",
            vec![
                &seeds.checkpoint,
                &seeds.official_weights,
                &seeds.trunk_weights,
            ],
        ),
        ("npy", seeds.npy.iter().collect()),
        ("jpeg_structure", seeds.jpeg.iter().collect()),
        ("image", seeds.jpeg.iter().collect()),
        ("config_file", vec![&seeds.config]),
        ("idx", seeds.idx.iter().collect()),
    ];
    for (target, files) in targets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, bytes) in files.into_iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), bytes).unwrap();
        }
    }
}

/// A parser under test.
type Target = fn(&[u8]) -> Outcome;

fn outcome<T, E>(result: Result<T, E>) -> Outcome {
    match result {
        Ok(_) => Outcome::Accepted,
        Err(_) => Outcome::Refused,
    }
}

/// A file for targets that read from a path, one per process and target.
fn scratch_file(target: &str) -> PathBuf {
    std::env::temp_dir().join(format!("swav-fuzz-{}-{target}", std::process::id()))
}

/// Allocation bound for parsers that copy their input a few times at most.
fn a_few_copies(len: usize) -> usize {
    8 * len + (1 << 20)
}

fn checkpoint_file_target(data: &[u8]) -> Outcome {
    outcome(CheckpointFile::from_bytes(data))
}

fn weights_target(data: &[u8]) -> Outcome {
    let path = scratch_file("weights.safetensors");
    std::fs::write(&path, data).unwrap();
    outcome(
        WeightsSource::read(&path)
            .and_then(|weights| load_model(&mut swav_cpu::CpuBackend::new(), &weights)),
    )
}

fn npy_target(data: &[u8]) -> Outcome {
    outcome(parse_matrix(data))
}

fn jpeg_structure_target(data: &[u8]) -> Outcome {
    if jpeg_is_complete(data) {
        Outcome::Accepted
    } else {
        Outcome::Refused
    }
}

fn image_target(data: &[u8]) -> Outcome {
    outcome(decode_image(data, Path::new("fuzzed.jpg")))
}

fn config_file_target(data: &[u8]) -> Outcome {
    let path = scratch_file("config.toml");
    std::fs::write(&path, data).unwrap();
    outcome(overlay_file(&Preset::Demo.config(), &path).and_then(|c| c.validate().map(|()| c)))
}

/// An MNIST-format pair: four 3×2 images and their labels, as IDX files of unsigned bytes.
fn idx_pair() -> (Vec<u8>, Vec<u8>) {
    let idx = |dims: &[u32], data: &[u8]| {
        let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
        dims.iter().for_each(|d| bytes.extend(d.to_be_bytes()));
        bytes.extend(data);
        bytes
    };
    let pixels: Vec<u8> = (0..24).map(|p| p * 10).collect();
    (idx(&[4, 3, 2], &pixels), idx(&[4], &[0, 3, 9, 3]))
}

/// The IDX target's inputs: a selector byte (bit 0: the labels file is the fuzzed one, the
/// images file otherwise; bit 1: the fuzzed file is named `.gz`), then that file's bytes.
fn idx_seeds() -> Vec<Vec<u8>> {
    let (images, labels) = idx_pair();
    vec![
        [&[0u8][..], &images].concat(),
        [&[1u8][..], &labels].concat(),
    ]
}

fn idx_target(data: &[u8]) -> Outcome {
    let Some((&selector, bytes)) = data.split_first() else {
        return Outcome::Refused;
    };
    let (images, labels) = idx_pair();
    let suffix = if selector & 2 != 0 { ".gz" } else { "" };
    let (images_path, labels_path) = if selector & 1 == 0 {
        (
            scratch_file(&format!("images{suffix}")),
            scratch_file("labels"),
        )
    } else {
        (
            scratch_file("images"),
            scratch_file(&format!("labels{suffix}")),
        )
    };
    let (images, labels) = if selector & 1 == 0 {
        (bytes, &labels[..])
    } else {
        (&images[..], bytes)
    };
    std::fs::write(&images_path, images).unwrap();
    std::fs::write(&labels_path, labels).unwrap();
    let dataset = IdxDataset::from_files(&images_path, &labels_path, 10);
    outcome(dataset.and_then(|d| (0..d.len()).try_for_each(|i| d.load(i).map(drop))))
}

/// A shard of three samples as `swav shard` writes them: two JPEGs with their classes and
/// a caption-only sample.
fn shard_seed() -> Vec<u8> {
    let prefix = scratch_file("shard-seed");
    let mut writer = ShardWriter::new(&prefix, 10).unwrap();
    let jpeg = &seeds().jpeg;
    writer
        .add("000000", &[("jpg", &jpeg[0]), ("cls", b"1")])
        .unwrap();
    writer
        .add("000001", &[("jpg", &jpeg[1]), ("cls", b"0")])
        .unwrap();
    writer.add("000002", &[("txt", b"a caption")]).unwrap();
    let shard = writer.finish().unwrap().remove(0);
    let bytes = std::fs::read(&shard).unwrap();
    let _ = std::fs::remove_file(shard);
    bytes
}

fn shard_target(data: &[u8]) -> Outcome {
    let path = scratch_file("shard.tar");
    std::fs::write(&path, data).unwrap();
    let counted = count_samples(&path);
    let read = read_samples(&path, |sample| {
        let _ = (sample.image(), sample.label(), sample.extensions());
        std::ops::ControlFlow::Continue(())
    });
    outcome(counted.and(read))
}

#[test]
fn the_shard_reader_survives_mutated_tar_files() {
    let budget = Budget {
        inputs: Budget::inputs(3000, 300),
        per_input: Duration::from_secs(5),
        // The streaming reader's 1 MiB read buffer, then copies of the members.
        allocation_limit: |len| 8 * len + (2 << 20),
    };
    let tally = fuzz("shard", 8, &[shard_seed()], budget, shard_target);
    let _ = std::fs::remove_file(scratch_file("shard.tar"));
    assert!(tally.accepted >= 1, "the seed itself is read");
}

#[test]
fn the_checkpoint_file_reader_survives_mutated_checkpoints() {
    let budget = Budget {
        inputs: Budget::inputs(3000, 300),
        per_input: Duration::from_secs(5),
        allocation_limit: a_few_copies,
    };
    let seeds = [seeds().checkpoint.clone()];
    let tally = fuzz("checkpoint_file", 1, &seeds, budget, checkpoint_file_target);
    assert!(tally.accepted >= 1, "the seed itself is accepted");
}

#[test]
fn the_weights_reader_and_import_survive_mutated_weight_files() {
    let s = seeds();
    let budget = Budget {
        inputs: Budget::inputs(1500, 150),
        per_input: Duration::from_secs(10),
        // The model these weights describe is built too: a few times the file, as the
        // model's buffers hold the file's values.
        allocation_limit: a_few_copies,
    };
    let seeds = [
        s.checkpoint.clone(),
        s.official_weights.clone(),
        s.trunk_weights.clone(),
    ];
    let tally = fuzz("weights", 2, &seeds, budget, weights_target);
    let _ = std::fs::remove_file(scratch_file("weights.safetensors"));
    assert!(tally.accepted >= 3, "the seeds themselves load");
}

#[test]
fn the_npy_reader_survives_mutated_matrices() {
    let budget = Budget {
        inputs: Budget::inputs(20000, 2000),
        per_input: Duration::from_secs(5),
        allocation_limit: a_few_copies,
    };
    let tally = fuzz("npy", 3, &seeds().npy, budget, npy_target);
    assert!(tally.accepted >= 2, "the seeds themselves parse");
}

#[test]
fn the_jpeg_structure_check_survives_mutated_jpegs() {
    let budget = Budget {
        inputs: Budget::inputs(20000, 2000),
        per_input: Duration::from_secs(5),
        allocation_limit: |_| 0,
    };
    let tally = fuzz(
        "jpeg_structure",
        4,
        &seeds().jpeg,
        budget,
        jpeg_structure_target,
    );
    assert!(tally.accepted >= 4, "the seeds themselves are complete");
}

#[test]
fn the_image_decoder_survives_mutated_jpegs() {
    let budget = Budget {
        inputs: Budget::inputs(3000, 300),
        per_input: Duration::from_secs(10),
        // The decoders bound their own allocations (the `image` crate's default limits).
        allocation_limit: |_| 512 << 20,
    };
    let tally = fuzz("image", 5, &seeds().jpeg, budget, image_target);
    assert!(tally.accepted >= 4, "the seeds themselves decode");
}

#[test]
fn the_config_file_reader_survives_mutated_configurations() {
    let budget = Budget {
        inputs: Budget::inputs(3000, 300),
        per_input: Duration::from_secs(5),
        allocation_limit: a_few_copies,
    };
    let seeds = [seeds().config.clone()];
    let tally = fuzz("config_file", 6, &seeds, budget, config_file_target);
    let _ = std::fs::remove_file(scratch_file("config.toml"));
    assert!(tally.accepted >= 1, "the seed itself is accepted");
}

#[test]
fn the_idx_reader_survives_mutated_mnist_files() {
    let budget = Budget {
        inputs: Budget::inputs(3000, 300),
        per_input: Duration::from_secs(5),
        // A gzipped file may expand up to deflate's largest ratio (about 1032:1).
        allocation_limit: |len| 1032 * len + (1 << 20),
    };
    let tally = fuzz("idx", 7, &seeds().idx, budget, idx_target);
    for name in ["images", "images.gz", "labels", "labels.gz"] {
        let _ = std::fs::remove_file(scratch_file(name));
    }
    assert!(tally.accepted >= 2, "the seeds themselves are read");
}

/// Every input a campaign failed on and that is kept as a file
/// (tests/regressions/<target>/), replayed under the same rules.
#[test]
fn every_saved_failure_stays_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let targets: [(&str, Target); 2] = [("npy", npy_target), ("image", image_target)];
    for (name, target) in targets {
        let inputs: Vec<Vec<u8>> = files_under(&root.join(name))
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        let budget = Budget {
            inputs: 0,
            per_input: Duration::from_secs(10),
            allocation_limit: a_few_copies,
        };
        let tally = fuzz(&format!("{name}-regressions"), 0, &inputs, budget, target);
        assert_eq!(tally.refused, inputs.len(), "{name}");
    }
}

/// The official-layout seed with tensor `name` replaced by an empty one of `shape`.
fn with_empty_tensor(name: &str, shape: Vec<usize>) -> Vec<u8> {
    let seed = &seeds().official_weights;
    let file = safetensors::SafeTensors::deserialize(seed).unwrap();
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .map(|(key, view)| {
            if key == name {
                let empty = safetensors::tensor::TensorView::new(view.dtype(), shape.clone(), &[]);
                (key, empty.unwrap())
            } else {
                (key, view)
            }
        })
        .collect();
    safetensors::serialize(tensors, None).unwrap()
}

/// Found by reasoning about the weights reader while writing its fuzz target: a plain
/// weights file sized the model from header shapes of tensors holding no data, so a 60 kB
/// file asked for 13 GB and 90 s (hidden width 10^8) or aborted the process (4·10^9
/// prototypes). The sizes are now checked against tensors that hold data first.
#[test]
fn a_weights_header_cannot_size_the_model_without_data() {
    let inputs = vec![
        with_empty_tensor("module.projection_head.0.weight", vec![100_000_000, 0]),
        with_empty_tensor("module.projection_head.3.weight", vec![4_000_000_000, 0]),
        with_empty_tensor("module.prototypes.weight", vec![4_000_000_000, 0]),
        with_empty_tensor("module.conv1.weight", vec![1 << 40, 3, 0, 0]),
        with_empty_tensor("module.layer4.0.conv2.weight", vec![0, 16, 3, 3]),
    ];
    let budget = Budget {
        inputs: 0,
        per_input: Duration::from_secs(10),
        allocation_limit: a_few_copies,
    };
    let tally = fuzz("weights-regressions", 0, &inputs, budget, weights_target);
    let _ = std::fs::remove_file(scratch_file("weights.safetensors"));
    assert_eq!(tally.refused, inputs.len());
}
