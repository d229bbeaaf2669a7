//! Unreadable images through the binary: every command that reads a folder names the first
//! few bad files as it meets them, ends with a one-line count, and (extract, assign) writes
//! the source of every output row beside the output.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use swav::swav_augment::dataset::export::{ExportFormat, export_image_folder};
use swav::swav_augment::dataset::{SyntheticConfig, SyntheticDataset, SyntheticSplit};

/// Writes `classes × per_class` valid 16 px JPEGs in an ImageFolder layout under `root`.
fn valid_images(root: &Path, classes: usize, per_class: usize) {
    let config = SyntheticConfig {
        image_size: 16,
        num_classes: classes,
        images_per_class: per_class,
        seed: 3,
        ..SyntheticConfig::default()
    };
    let data = SyntheticDataset::new(config, SyntheticSplit::Train).unwrap();
    export_image_folder(&data, root, ExportFormat::Jpeg { quality: 90 }).unwrap();
}

/// Writes `count` bad files into `dir`, cycling through empty, truncated, non-image and
/// random-garbage files, all with image extensions; `jpeg` is a valid JPEG to truncate.
/// Returns their paths.
fn bad_files(dir: &Path, count: usize, jpeg: &Path) -> Vec<PathBuf> {
    let valid = std::fs::read(jpeg).unwrap();
    (0..count)
        .map(|i| {
            let (name, bytes) = match i % 4 {
                0 => (format!("bad{i}_empty.jpg"), Vec::new()),
                1 => (
                    format!("bad{i}_truncated.jpg"),
                    valid[..valid.len() * 6 / 10].to_vec(),
                ),
                2 => (format!("bad{i}_text.png"), b"notes, not an image".to_vec()),
                _ => (
                    format!("bad{i}_garbage.jpg"),
                    (0..600u32).map(|j| (j * 7919 % 251) as u8).collect(),
                ),
            };
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect()
}

fn trained(dir: &Path) -> PathBuf {
    let run = dir.join("model");
    swav_ok(&tiny_pretrain_args(s(&run), &["--epochs", "1"]));
    run.join("checkpoint.safetensors")
}

#[test]
fn pretrain_names_the_first_bad_files_counts_the_rest_and_logs_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("images");
    // 25 valid images and 7 bad ones: 32 files, 4 batches of 8, so every file is scheduled.
    valid_images(&data, 5, 5);
    let bad = bad_files(&data.join("00_disc"), 7, &data.join("00_disc/0000000.jpg"));
    let run = dir.path().join("run");
    let out = swav_ok(&tiny_pretrain_args(
        s(&run),
        &["--data", s(&data), "--epochs", "1"],
    ));
    let text = stderr(&out);
    let named: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("warning: skipping unreadable image: "))
        .collect();
    assert_eq!(
        named.len(),
        6,
        "5 named, then one that says the rest are counted:\n{text}"
    );
    assert_eq!(
        named
            .iter()
            .filter(|l| l.contains("further unreadable files are counted"))
            .count(),
        1,
        "{text}"
    );
    for line in &named {
        assert!(
            bad.iter().any(|p| line.contains(s(p))),
            "the warning names a bad file: {line}"
        );
    }
    let summary = text
        .lines()
        .find(|l| l.starts_with("training data: "))
        .unwrap_or_else(|| panic!("no summary line:\n{text}"));
    let first = bad.iter().map(|p| s(p)).min().unwrap();
    assert!(
        summary.starts_with(&format!(
            "training data: 7 files skipped; first: {first} is empty"
        )),
        "{summary}"
    );
    let records = metrics(&run);
    assert_eq!(records.last().unwrap()["skipped_files"], 7);

    // --strict-data stops at the first bad file it meets, with one line naming it.
    let strict = dir.path().join("strict");
    let e = swav_error(&tiny_pretrain_args(
        s(&strict),
        &["--data", s(&data), "--epochs", "1", "--strict-data"],
    ));
    assert!(bad.iter().any(|p| e.contains(s(p))), "{e}");
}

#[test]
fn extract_and_assign_trace_every_row_to_its_file_and_report_the_skipped_ones() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = trained(dir.path());
    // A flat folder of 13 files of which 8 are bad, and the same 5 valid files alone.
    let labelled = dir.path().join("labelled");
    valid_images(&labelled, 5, 1);
    let (flat, clean) = (dir.path().join("flat"), dir.path().join("clean"));
    std::fs::create_dir_all(&flat).unwrap();
    std::fs::create_dir_all(&clean).unwrap();
    let mut valid = Vec::new();
    for class in std::fs::read_dir(&labelled).unwrap() {
        let class = class.unwrap().path();
        let path = std::fs::read_dir(&class)
            .unwrap()
            .next()
            .expect("one image per class")
            .unwrap()
            .path();
        let name = format!("{}.jpg", class.file_name().unwrap().to_str().unwrap());
        std::fs::copy(&path, flat.join(&name)).unwrap();
        std::fs::copy(&path, clean.join(&name)).unwrap();
        valid.push(flat.join(&name));
    }
    valid.sort();
    bad_files(&flat, 8, &valid[0]);

    let run_extract = |data: &Path, output: &Path| {
        swav_ok(&[
            "extract",
            "--weights",
            s(&checkpoint),
            "--data",
            s(data),
            "--output",
            s(output),
            "--image-size",
            "16",
        ])
    };
    let features = dir.path().join("features.npy");
    let text = stderr(&run_extract(&flat, &features));
    assert!(
        text.contains("5 of 13 images") && text.contains("features.paths.txt"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("extract: 8 files skipped; first: ")),
        "{text}"
    );
    let rows: ndarray::Array2<f32> = ndarray_npy::read_npy(&features).unwrap();
    assert_eq!(rows.nrows(), 5);
    let paths = std::fs::read_to_string(dir.path().join("features.paths.txt")).unwrap();
    let listed: Vec<&str> = paths.lines().collect();
    assert_eq!(listed, valid.iter().map(|p| s(p)).collect::<Vec<_>>());
    assert!(
        !dir.path().join("features.labels.npy").exists(),
        "a flat folder has no labels"
    );
    // Row i is the features of file i: the same as from the folder of valid files alone.
    let alone = dir.path().join("alone.npy");
    run_extract(&clean, &alone);
    let expected: ndarray::Array2<f32> = ndarray_npy::read_npy(&alone).unwrap();
    assert_eq!(rows, expected);

    // An ImageFolder layout gets labels.
    let with_labels = dir.path().join("with_labels.npy");
    run_extract(&labelled, &with_labels);
    let labels: ndarray::Array1<i64> =
        ndarray_npy::read_npy(dir.path().join("with_labels.labels.npy")).unwrap();
    assert_eq!(labels.to_vec(), vec![0, 1, 2, 3, 4]);

    let clusters = dir.path().join("clusters.npy");
    let out = swav_ok(&[
        "assign",
        "--weights",
        s(&checkpoint),
        "--data",
        s(&flat),
        "--output",
        s(&clusters),
        "--hard",
        "--image-size",
        "16",
    ]);
    let text = stderr(&out);
    assert!(
        text.contains("assigned 5 of 13 images")
            && text
                .lines()
                .any(|l| l.starts_with("assign: 8 files skipped; first: ")),
        "{text}"
    );
    let assigned: ndarray::Array1<i64> = ndarray_npy::read_npy(&clusters).unwrap();
    assert_eq!(assigned.len(), 5);
    let paths = std::fs::read_to_string(dir.path().join("clusters.paths.txt")).unwrap();
    assert_eq!(paths.lines().collect::<Vec<_>>(), listed);

    // Nothing readable at all: one error line with the count and the first file.
    let hopeless = dir.path().join("hopeless");
    std::fs::create_dir_all(&hopeless).unwrap();
    bad_files(&hopeless, 3, &valid[0]);
    let e = swav_error(&[
        "extract",
        "--weights",
        s(&checkpoint),
        "--data",
        s(&hopeless),
        "--output",
        s(&dir.path().join("none.npy")),
    ]);
    assert!(
        e.contains("none of the 3 images could be read") && e.contains("bad0_empty.jpg"),
        "{e}"
    );
}

#[test]
fn eval_reports_skipped_files_per_split() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = trained(dir.path());
    let data = dir.path().join("data");
    valid_images(&data.join("train"), 2, 4);
    valid_images(&data.join("val"), 2, 2);
    let template = data.join("val/00_disc/0000000.jpg");
    bad_files(&data.join("val/01_square"), 2, &template);
    let out = swav_ok(&[
        "eval",
        "knn",
        "--weights",
        s(&checkpoint),
        "--data",
        s(&data),
        "--k",
        "3",
        "--image-size",
        "16",
    ]);
    let text = stderr(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("val split: 2 files skipped; first: ")),
        "{text}"
    );
    assert!(!text.contains("train split:"), "{text}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 val images"));
}
