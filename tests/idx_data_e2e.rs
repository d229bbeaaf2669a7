//! MNIST-format IDX folders through the binary: training on class-balanced subsets, k-NN of
//! train against t10k (in the run and in `swav eval knn`), the subset flags' errors, and a
//! short run on the installed Fashion-MNIST.
//!
//! The Fashion-MNIST test is skipped with a message when /usr/share/datasets/fashion-mnist
//! (Debian's `dataset-fashion-mnist`) is missing; `SWAV_REQUIRE_FASHION_MNIST=1` (set by
//! CI) turns the skip into a failure.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use swav::swav_augment::dataset::export::{ExportFormat, export_image_folder};
use swav::swav_augment::dataset::{Dataset, SyntheticConfig, SyntheticDataset, SyntheticSplit};

/// Where Debian's `dataset-fashion-mnist` installs the four gzipped IDX files.
const FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// The bytes of an IDX file of unsigned bytes with dimensions `dims`.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

/// An MNIST-format folder (plain files) of the built-in grey shapes at 16 px, ten classes:
/// `train` holds 6 images per class and `t10k` 3, in class-interleaved order as MNIST's.
fn shapes_idx_folder(dir: &Path) -> PathBuf {
    let root = dir.join("shapes-idx");
    std::fs::create_dir_all(&root).expect("mkdir");
    for (split, prefix, per_class) in [
        (SyntheticSplit::Train, "train", 6),
        (SyntheticSplit::Val, "t10k", 3),
    ] {
        let config = SyntheticConfig {
            image_size: 16,
            num_classes: 10,
            images_per_class: per_class,
            monochrome: true,
            ..SyntheticConfig::default()
        };
        let data = SyntheticDataset::new(config, split).expect("synthetic");
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        for i in 0..data.len() {
            let image = data.load(i).expect("render");
            pixels.extend(image.pixels().iter().step_by(3));
            labels.push(data.label(i).expect("labelled") as u8);
        }
        let count = data.len() as u32;
        std::fs::write(
            root.join(format!("{prefix}-images-idx3-ubyte")),
            idx_bytes(&[count, 16, 16], &pixels),
        )
        .expect("write images");
        std::fs::write(
            root.join(format!("{prefix}-labels-idx1-ubyte")),
            idx_bytes(&[count], &labels),
        )
        .expect("write labels");
    }
    root
}

/// The tiny run on `data` with k-NN at the end, plus `extra`.
fn idx_run<'a>(output: &'a str, data: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = tiny_pretrain_args(output, &["--data", data, "--eval-knn", "true"]);
    args.extend_from_slice(extra);
    args
}

/// knn.json's class count and its models' names.
fn knn_report(run: &Path) -> (u64, Vec<String>) {
    let text = std::fs::read_to_string(run.join("knn.json")).expect("knn.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let models = json["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            assert!(r["top1"][0]["top1"].as_f64().is_some(), "{text}");
            r["model"].as_str().expect("model").to_string()
        })
        .collect();
    (json["classes"].as_u64().expect("classes"), models)
}

#[test]
fn an_idx_folder_trains_on_a_balanced_subset_and_evaluates_train_against_t10k() {
    let dir = tempfile::tempdir().unwrap();
    let data = shapes_idx_folder(dir.path());
    let run = dir.path().join("run");
    let out = swav_ok(&idx_run(
        s(&run),
        s(&data),
        &[
            "--images-per-class",
            "4",
            "--eval-images-per-class",
            "2",
            "--epochs",
            "1",
        ],
    ));
    let err = stderr(&out);
    assert!(
        err.contains("training set: 40 images, 10 classes (4 per class) from"),
        "{err}"
    );
    assert!(
        err.contains("k-NN sets: 40 images, 10 classes (4 per class) against 20 images, 10 classes (2 per class)"),
        "{err}"
    );
    let (classes, models) = knn_report(&run);
    assert_eq!(classes, 10);
    assert_eq!(models, ["trained", "random init"]);
    let config = std::fs::read_to_string(run.join("config.toml")).expect("config.toml");
    assert!(config.contains("data_images_per_class = 4"), "{config}");
    assert!(config.contains("eval_images_per_class = 2"), "{config}");
    // 40 images at batch 8: 5 iterations (0 to 4, each logged) in the one epoch.
    let iterations: Vec<u64> = metrics(&run)
        .iter()
        .filter_map(|m| m["iteration"].as_u64())
        .collect();
    assert_eq!(iterations, [0, 1, 2, 3, 4]);

    // `swav eval knn` reads the whole train and t10k splits of the folder.
    let weights = run.join("checkpoint.safetensors");
    let out = swav_ok(&[
        "eval",
        "knn",
        "--weights",
        s(&weights),
        "--data",
        s(&data),
        "--k",
        "5",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("k-NN (60 train, 30 val images, 10 classes"),
        "{text}"
    );
    // ... or, as the run's probe did, their first images of each class.
    let out = swav_ok(&[
        "eval",
        "knn",
        "--weights",
        s(&weights),
        "--data",
        s(&data),
        "--images-per-class",
        "4",
        "--eval-images-per-class",
        "2",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("k-NN (40 train, 20 val images, 10 classes"),
        "{text}"
    );
    let line = swav_error(&[
        "eval",
        "knn",
        "--weights",
        s(&weights),
        "--eval-images-per-class",
        "2",
    ]);
    assert!(line.contains("apply to --data folders"), "{line}");
}

#[test]
fn a_broken_idx_file_stops_the_run_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = shapes_idx_folder(dir.path());
    let labels = data.join("t10k-labels-idx1-ubyte");
    let bytes = std::fs::read(&labels).expect("read");
    std::fs::write(&labels, &bytes[..bytes.len() - 1]).expect("truncate");
    let run = dir.path().join("run");
    let line = swav_error(&idx_run(s(&run), s(&data), &["--epochs", "1"]));
    assert!(line.contains(s(&labels)), "{line}");
    assert!(line.contains("is truncated"), "{line}");

    std::fs::write(&labels, idx_bytes(&[3], &[0, 1, 2])).expect("write");
    let line = swav_error(&idx_run(s(&run), s(&data), &["--epochs", "1"]));
    assert!(
        line.contains("holds 3 labels but") && line.contains("holds 30 images"),
        "{line}"
    );
}

#[test]
fn an_image_folder_with_splits_trains_on_the_first_images_of_each_class_of_train() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    for (split, name, per_class) in [
        (SyntheticSplit::Train, "train", 6),
        (SyntheticSplit::Val, "val", 3),
    ] {
        let config = SyntheticConfig {
            image_size: 16,
            num_classes: 3,
            images_per_class: per_class,
            ..SyntheticConfig::default()
        };
        let data = SyntheticDataset::new(config, split).expect("synthetic");
        export_image_folder(&data, &root.join(name), ExportFormat::Png).expect("export");
    }
    let run = dir.path().join("run");
    let out = swav_ok(&idx_run(
        s(&run),
        s(&root),
        &[
            "--images-per-class",
            "4",
            "--eval-images-per-class",
            "1",
            "--batch-size",
            "4",
            "--epochs",
            "1",
        ],
    ));
    let err = stderr(&out);
    // Three classes, the class folders of train/ (the root's own are train and val).
    assert!(
        err.contains("training set: 12 images, 3 classes (4 per class) from"),
        "{err}"
    );
    assert!(
        err.contains("k-NN sets: 12 images, 3 classes (4 per class) against 3 images, 3 classes (1 per class)"),
        "{err}"
    );
    assert_eq!(knn_report(&run).0, 3);
}

#[test]
fn the_subset_flags_need_a_labelled_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let line = swav_error(&tiny_pretrain_args(s(&run), &["--images-per-class", "3"]));
    assert!(
        line.contains("`data_images_per_class` applies to --data folders"),
        "{line}"
    );
    let flat = dir.path().join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    let texture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/swav-augment/tests/goldens/texture.png");
    std::fs::copy(texture, flat.join("a.png")).unwrap();
    let line = swav_error(&tiny_pretrain_args(
        s(&run),
        &["--data", s(&flat), "--images-per-class", "3"],
    ));
    assert!(
        line.contains("--images-per-class needs labelled images")
            && line.contains("is a flat folder"),
        "{line}"
    );
}

#[test]
fn fashion_mnist_trains_briefly_and_reports_knn() {
    if !Path::new(FASHION_MNIST).is_dir() {
        assert!(
            std::env::var("SWAV_REQUIRE_FASHION_MNIST").as_deref() != Ok("1"),
            "SWAV_REQUIRE_FASHION_MNIST=1 but {FASHION_MNIST} is missing (apt install dataset-fashion-mnist)"
        );
        eprintln!("skipped: {FASHION_MNIST} is missing (apt install dataset-fashion-mnist)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = swav_ok(&idx_run(
        s(&run),
        FASHION_MNIST,
        &[
            "--images-per-class",
            "10",
            "--eval-images-per-class",
            "10",
            "--epochs",
            "1",
        ],
    ));
    let err = stderr(&out);
    assert!(
        err.contains("training set: 100 images, 10 classes (10 per class)"),
        "{err}"
    );
    assert!(
        err.contains("k-NN top-1 on the validation split (10 classes)"),
        "{err}"
    );
    let (classes, models) = knn_report(&run);
    assert_eq!((classes, models.len()), (10, 2));
    // The semi-supervised protocol on 10 % of the 200 images' labels: two per class.
    let out = swav_ok(&[
        "eval",
        "semisup",
        "--weights",
        s(&run.join("checkpoint.safetensors")),
        "--data",
        FASHION_MNIST,
        "--images-per-class",
        "20",
        "--eval-images-per-class",
        "10",
        "--epochs",
        "2",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("semi-supervised (10% of the labels, 20 images): best val top-1"),
        "{text}"
    );
}
