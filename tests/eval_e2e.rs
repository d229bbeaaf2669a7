//! `swav eval`, `extract` and `assign` end to end on a tiny trained model.

mod common;

use std::path::Path;

use common::*;
use swav::swav_augment::dataset::export::{ExportFormat, export_image_folder};
use swav::swav_augment::dataset::{SyntheticConfig, SyntheticDataset, SyntheticSplit};

fn trained(dir: &Path) -> std::path::PathBuf {
    let run = dir.join("run");
    swav_ok(&tiny_pretrain_args(s(&run), &["--epochs", "1"]));
    run.join("checkpoint.safetensors")
}

/// A labelled image folder with train/ and val/ splits of the synthetic shapes.
fn image_folder(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("images");
    for (split, per_class) in [(SyntheticSplit::Train, 6), (SyntheticSplit::Val, 3)] {
        let config = SyntheticConfig {
            image_size: 16,
            num_classes: 3,
            images_per_class: per_class,
            seed: 0,
            ..SyntheticConfig::default()
        };
        let data = SyntheticDataset::new(config, split).unwrap();
        let name = if split == SyntheticSplit::Train {
            "train"
        } else {
            "val"
        };
        export_image_folder(&data, &root.join(name), ExportFormat::Png).unwrap();
    }
    root
}

#[test]
fn knn_and_linear_probe_report_accuracies() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = trained(dir.path());
    let out = swav_ok(&["eval", "knn", "--weights", s(&ckpt), "--k", "1", "5"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("k = 1") && text.contains("k = 5") && text.contains("top-1"),
        "{text}"
    );
    let images = image_folder(dir.path());
    let out = swav_ok(&[
        "eval",
        "linear",
        "--weights",
        s(&ckpt),
        "--data",
        s(&images),
        "--epochs",
        "3",
        "--image-size",
        "16",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("best val top-1"), "{text}");
    let out = swav_ok(&[
        "eval",
        "linear",
        "--weights",
        s(&ckpt),
        "--data",
        s(&images),
        "--epochs",
        "1",
        "--image-size",
        "16",
        "--augment",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("best val top-1"));
}

#[test]
fn extract_and_assign_write_npy_files() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = trained(dir.path());
    let images = image_folder(dir.path()).join("train");
    let features = dir.path().join("features.npy");
    swav_ok(&[
        "extract",
        "--weights",
        s(&ckpt),
        "--data",
        s(&images),
        "--output",
        s(&features),
        "--image-size",
        "16",
    ]);
    let f: ndarray::Array2<f32> = ndarray_npy::read_npy(&features).unwrap();
    assert_eq!(f.dim(), (18, 8 * 8), "18 images × 512·(8/64) features");
    let labels: ndarray::Array1<i64> =
        ndarray_npy::read_npy(dir.path().join("features.labels.npy")).unwrap();
    assert_eq!(labels.len(), 18);

    let clusters = dir.path().join("clusters.npy");
    swav_ok(&[
        "assign",
        "--weights",
        s(&ckpt),
        "--data",
        s(&images),
        "--output",
        s(&clusters),
        "--hard",
        "--image-size",
        "16",
    ]);
    let c: ndarray::Array1<i64> = ndarray_npy::read_npy(&clusters).unwrap();
    assert_eq!(c.len(), 18);
    assert!(c.iter().all(|&k| (0..10).contains(&k)));
    let names = std::fs::read_to_string(dir.path().join("clusters.paths.txt")).unwrap();
    assert_eq!(names.lines().count(), 18);

    // Embeddings and prototypes given directly: a balanced split of 6 points on 2 clusters.
    let z = ndarray::array![
        [1.0f32, 0.0],
        [0.9, 0.1],
        [0.8, 0.2],
        [0.2, 0.8],
        [0.1, 0.9],
        [0.0, 1.0]
    ];
    let w = ndarray::array![[1.0f32, 0.0], [0.0, 1.0]];
    let (zp, wp, out) = (
        dir.path().join("z.npy"),
        dir.path().join("w.npy"),
        dir.path().join("codes.npy"),
    );
    ndarray_npy::write_npy(&zp, &z).unwrap();
    ndarray_npy::write_npy(&wp, &w).unwrap();
    swav_ok(&[
        "assign",
        "--embeddings",
        s(&zp),
        "--prototypes",
        s(&wp),
        "--output",
        s(&out),
    ]);
    let codes: ndarray::Array2<f32> = ndarray_npy::read_npy(&out).unwrap();
    assert_eq!(codes.dim(), (6, 2));
    assert!(codes[[0, 0]] > 0.9 && codes[[5, 1]] > 0.9);
    swav_ok(&[
        "assign",
        "--embeddings",
        s(&zp),
        "--prototypes",
        s(&wp),
        "--output",
        s(&out),
        "--hard",
    ]);
    let hard: ndarray::Array1<i64> = ndarray_npy::read_npy(&out).unwrap();
    assert_eq!(hard.to_vec(), vec![0, 0, 0, 1, 1, 1]);
}

#[test]
fn export_then_import_round_trips_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = trained(dir.path());
    let official = dir.path().join("official.safetensors");
    swav_ok(&[
        "export",
        "--checkpoint",
        s(&ckpt),
        "--output",
        s(&official),
        "--official-layout",
    ]);
    let exported = tensors(&official);
    assert!(exported.keys().all(|k| k.starts_with("module.")));
    assert!(
        exported.contains_key("module.prototypes.weight")
            && exported.contains_key("module.projection_head.0.weight")
    );

    let imported = dir.path().join("imported.safetensors");
    swav_ok(&[
        "import",
        "--weights",
        s(&official),
        "--output",
        s(&imported),
    ]);
    let again = dir.path().join("again.safetensors");
    swav_ok(&[
        "export",
        "--checkpoint",
        s(&imported),
        "--output",
        s(&again),
        "--official-layout",
    ]);
    assert_eq!(
        tensors(&again),
        exported,
        "export → import → export is the identity"
    );

    let trunk = dir.path().join("trunk.safetensors");
    swav_ok(&["export", "--checkpoint", s(&ckpt), "--output", s(&trunk)]);
    let t = tensors(&trunk);
    assert_eq!(t["conv1.weight"].0, vec![8, 3, 3, 3], "OIHW, small stem");
    // The trunk export alone evaluates too (head and prototypes come from nowhere).
    swav_ok(&["eval", "knn", "--weights", s(&trunk), "--k", "3"]);
}

#[test]
fn pretraining_on_a_split_folder_trains_on_train_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = image_folder(dir.path());
    let run = dir.path().join("run");
    let text = stderr(&swav_ok(&tiny_pretrain_args(
        s(&run),
        &["--data", s(&data), "--epochs", "1", "--batch-size", "6"],
    )));
    let train = data.join("train");
    assert!(
        text.contains(&format!(
            "training set: 18 images, 3 classes (6 per class) from {}",
            train.display()
        )),
        "the 9 validation images stay out of training: {text}"
    );
}

#[test]
fn semisup_fine_tunes_on_a_share_of_the_labels_and_reports_top1_and_top5() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = trained(dir.path());
    let images = image_folder(dir.path());
    let base = [
        "eval",
        "semisup",
        "--weights",
        s(&ckpt),
        "--data",
        s(&images),
        "--image-size",
        "16",
        "--fine-tune-batch",
        "4",
    ];
    let mut args = base.to_vec();
    args.extend([
        "--labels-percent",
        "50",
        "--epochs",
        "3",
        "--decay-epochs",
        "1",
        "2",
    ]);
    let out = swav_ok(&args);
    let err = stderr(&out);
    assert!(
        err.contains("semi-supervised fine-tuning on 50% of the labels: 9 of 18 training images (3 classes), 3 epochs of 2 iterations"),
        "{err}"
    );
    assert_eq!(err.matches(": train loss ").count(), 3, "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("semi-supervised (50% of the labels, 9 images): best val top-1 "))
        .unwrap_or_else(|| panic!("{text}"));
    // Three classes: the true class is always among the top five.
    assert!(line.contains("top-5 100.00%"), "{line}");
    // The built-in images the checkpoint was trained on (4 classes of 8): 10 % is one each.
    let out = swav_ok(&[
        "eval",
        "semisup",
        "--weights",
        s(&ckpt),
        "--epochs",
        "1",
        "--fine-tune-batch",
        "4",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("semi-supervised (10% of the labels, 4 images): best val top-1"),
        "{}",
        stderr(&out)
    );
    for (flag, value) in [("--labels-percent", "0"), ("--labels-percent", "150")] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        let e = swav_error(&args);
        assert!(
            e.contains("labels_percent") || e.contains("--labels-percent"),
            "{e}"
        );
    }
}
