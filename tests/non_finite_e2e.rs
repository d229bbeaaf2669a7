//! NaN and infinite values in a user's files never become silent NaN output: `swav assign`
//! (both modes) and `swav extract` refuse them with the file, the first bad row and the
//! number of bad rows, and write nothing.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ndarray::Array2;
use swav::swav_augment::dataset::export::{ExportFormat, export_image_folder};
use swav::swav_augment::dataset::{SyntheticConfig, SyntheticDataset, SyntheticSplit};

/// 40 embeddings in 4-D near two axes, and the two axes as prototypes.
fn clean_inputs() -> (Array2<f32>, Array2<f32>) {
    let z = Array2::from_shape_fn((40, 4), |(i, j)| {
        let axis = i % 2;
        if j == axis {
            1.0
        } else {
            0.01 * ((i + j) % 5) as f32
        }
    });
    let w = Array2::from_shape_fn((2, 4), |(i, j)| if i == j { 1.0 } else { 0.0 });
    (z, w)
}

fn assign_embeddings(z: &Path, w: &Path, out: &Path) -> Vec<String> {
    vec![
        "assign".into(),
        "--embeddings".into(),
        s(z).into(),
        "--prototypes".into(),
        s(w).into(),
        "--output".into(),
        s(out).into(),
    ]
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn refused(args: &[String]) -> String {
    swav_error(&strs(args))
}

#[test]
fn one_nan_embedding_is_refused_with_its_row_instead_of_poisoning_every_code() {
    let dir = tempfile::tempdir().unwrap();
    let (zp, wp, out) = (
        dir.path().join("z.npy"),
        dir.path().join("c.npy"),
        dir.path().join("codes.npy"),
    );
    let (mut z, w) = clean_inputs();
    ndarray_npy::write_npy(&wp, &w).unwrap();

    // The clean file assigns (the baseline the damaged ones are compared with).
    ndarray_npy::write_npy(&zp, &z).unwrap();
    swav_ok(&strs(&assign_embeddings(&zp, &wp, &out)));
    let codes: Array2<f32> = ndarray_npy::read_npy(&out).unwrap();
    assert!(codes.iter().all(|v| v.is_finite()));
    std::fs::remove_file(&out).unwrap();

    z[[7, 2]] = f32::NAN;
    ndarray_npy::write_npy(&zp, &z).unwrap();
    let e = refused(&assign_embeddings(&zp, &wp, &out));
    assert!(
        e.contains(s(&zp)) && e.contains("1 of the 40 rows") && e.contains("row 7"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    assert!(!out.exists(), "nothing is written");

    // Infinities count too, and every bad row is counted.
    z[[12, 0]] = f32::INFINITY;
    z[[30, 3]] = f32::NEG_INFINITY;
    ndarray_npy::write_npy(&zp, &z).unwrap();
    let e = refused(&assign_embeddings(&zp, &wp, &out));
    assert!(e.contains("3 of the 40 rows") && e.contains("row 7"), "{e}");

    // Hard assignment is refused the same way.
    let mut hard = assign_embeddings(&zp, &wp, &out);
    hard.push("--hard".into());
    let e = refused(&hard);
    assert!(e.contains(s(&zp)) && e.contains("row 7"), "{e}");
    assert!(!out.exists());
}

#[test]
fn non_finite_prototypes_are_refused_naming_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let (zp, wp, out) = (
        dir.path().join("z.npy"),
        dir.path().join("c.npy"),
        dir.path().join("codes.npy"),
    );
    let (z, mut w) = clean_inputs();
    w[[1, 0]] = f32::NAN;
    ndarray_npy::write_npy(&zp, &z).unwrap();
    ndarray_npy::write_npy(&wp, &w).unwrap();
    let e = refused(&assign_embeddings(&zp, &wp, &out));
    assert!(
        e.contains(s(&wp)) && e.contains("1 of the 2 rows") && e.contains("row 1"),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn bytes_that_decode_to_nan_in_an_f64_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (zp, wp, out) = (
        dir.path().join("z.npy"),
        dir.path().join("c.npy"),
        dir.path().join("codes.npy"),
    );
    let (z, w) = clean_inputs();
    ndarray_npy::write_npy(&zp, &z.mapv(f64::from)).unwrap();
    ndarray_npy::write_npy(&wp, &w).unwrap();
    // Damage the file the way a bad disk or a bad copy would: eight 0xFF bytes (a NaN)
    // over the first value of row 25.
    let mut bytes = std::fs::read(&zp).unwrap();
    let data_start = bytes.len() - 40 * 4 * 8;
    let at = data_start + 25 * 4 * 8;
    bytes[at..at + 8].fill(0xFF);
    std::fs::write(&zp, &bytes).unwrap();
    let e = refused(&assign_embeddings(&zp, &wp, &out));
    assert!(e.contains(s(&zp)) && e.contains("row 25"), "{e}");
    assert!(!out.exists());
}

/// A tiny trained model exported as plain official-layout weights (no checksum, so a
/// value can be damaged in place), and a folder of images.
fn exported_model_and_images(dir: &Path) -> (PathBuf, PathBuf) {
    let run = dir.join("run");
    swav_ok(&tiny_pretrain_args(s(&run), &["--epochs", "1"]));
    let official = dir.join("official.safetensors");
    swav_ok(&[
        "export",
        "--checkpoint",
        s(&run.join("checkpoint.safetensors")),
        "--output",
        s(&official),
        "--official-layout",
    ]);
    let images = dir.join("images");
    let config = SyntheticConfig {
        image_size: 16,
        num_classes: 3,
        images_per_class: 4,
        seed: 0,
        ..SyntheticConfig::default()
    };
    let data = SyntheticDataset::new(config, SyntheticSplit::Train).unwrap();
    export_image_folder(&data, &images, ExportFormat::Png).unwrap();
    (official, images)
}

/// Overwrites element `index` of tensor `name` in a safetensors file with NaN.
fn poison(path: &Path, name: &str, index: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let offset = {
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let view = file.tensor(name).unwrap();
        view.data().as_ptr() as usize - bytes.as_ptr() as usize
    };
    let at = offset + 4 * index;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn extract_and_assign_refuse_a_model_whose_outputs_are_not_finite() {
    let dir = tempfile::tempdir().unwrap();
    let (official, images) = exported_model_and_images(dir.path());
    let features = dir.path().join("features.npy");
    let clusters = dir.path().join("clusters.npy");
    let extract = |weights: &Path| {
        swav_error(&[
            "extract",
            "--weights",
            s(weights),
            "--data",
            s(&images),
            "--output",
            s(&features),
            "--image-size",
            "16",
        ])
    };
    let assign = |weights: &Path| {
        swav_error(&[
            "assign",
            "--weights",
            s(weights),
            "--data",
            s(&images),
            "--output",
            s(&clusters),
            "--image-size",
            "16",
        ])
    };

    // A NaN prototype: assign names the weights file and the prototype's row.
    let bad_prototype = dir.path().join("bad-prototype.safetensors");
    std::fs::copy(&official, &bad_prototype).unwrap();
    poison(&bad_prototype, "module.prototypes.weight", 3 * 16 + 5);
    let e = assign(&bad_prototype);
    assert!(
        e.contains(s(&bad_prototype))
            && e.contains("1 of the 10 prototypes")
            && e.contains("row 3"),
        "{e}"
    );
    assert!(!clusters.exists());

    // A NaN in the stem: every image's features, hence every embedding, is NaN.
    let bad_trunk = dir.path().join("bad-trunk.safetensors");
    std::fs::copy(&official, &bad_trunk).unwrap();
    poison(&bad_trunk, "module.conv1.weight", 0);
    let e = extract(&bad_trunk);
    assert!(
        e.contains(s(&bad_trunk)) && e.contains("12 of 12 images") && e.contains("row 0"),
        "{e}"
    );
    assert!(!features.exists(), "nothing is written");
    let e = assign(&bad_trunk);
    assert!(
        e.contains(s(&bad_trunk)) && e.contains("12 of 12 images") && e.contains("row 0"),
        "{e}"
    );
    assert!(!clusters.exists());
}
