//! Datasets: folder layouts, ordering, labels, input formats, errors, synthetic export.

mod common;

use std::path::{Path, PathBuf};

use common::{TempDir, byte_diff, goldens, manifest, npy};
use swav_augment::DatasetError;
use swav_augment::dataset::decode::load_image_file;
use swav_augment::dataset::export::{ExportFormat, export_image_folder};
use swav_augment::dataset::{
    Dataset, FlatFolder, ImageFolder, SyntheticConfig, SyntheticDataset, SyntheticSplit,
};

fn copy_texture(to: &Path) {
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    std::fs::copy(goldens().join("texture.png"), to).expect("copy");
}

fn relative(root: &Path, path: Option<&Path>) -> String {
    path.expect("in range")
        .strip_prefix(root)
        .expect("under root")
        .display()
        .to_string()
}

#[test]
fn image_folder_follows_torchvision_classes_order_and_extensions() {
    let dir = TempDir::new("imagefolder");
    let root = dir.path();
    for file in [
        "dog/z.png",
        "dog/sub/x.PNG",
        "dog/a.Jpg.png",
        "dog/sub2/b.png",
        "cat/B.png",
        "cat/a.png",
        "cat/deeper/nested/c.png",
    ] {
        copy_texture(&root.join(file));
    }
    std::fs::write(root.join("cat/notes.txt"), "not an image").expect("write");
    std::fs::create_dir_all(root.join("empty_class")).expect("mkdir");
    copy_texture(&root.join("stray.png")); // files in the root are not samples

    let data = ImageFolder::open(root).expect("open");
    assert_eq!(data.class_names(), ["cat", "dog", "empty_class"]);
    assert_eq!(data.num_classes(), 3);
    let order: Vec<String> = (0..data.len())
        .map(|i| relative(root, data.path(i)))
        .collect();
    // Sorted by (folder, file name): "dog" < "dog/sub" < "dog/sub2"; "B" < "a" (code points).
    assert_eq!(
        order,
        [
            "cat/B.png",
            "cat/a.png",
            "cat/deeper/nested/c.png",
            "dog/a.Jpg.png",
            "dog/z.png",
            "dog/sub/x.PNG",
            "dog/sub2/b.png",
        ]
    );
    let labels: Vec<Option<usize>> = (0..data.len()).map(|i| data.label(i)).collect();
    assert_eq!(
        labels,
        [
            Some(0),
            Some(0),
            Some(0),
            Some(1),
            Some(1),
            Some(1),
            Some(1)
        ]
    );
    assert_eq!(data.label(7), None);
    let image = data.load(4).expect("decode");
    assert_eq!((image.width(), image.height()), (64, 48));
    assert!(matches!(
        data.load(99),
        Err(DatasetError::IndexOutOfRange { index: 99, len: 7 })
    ));
}

#[test]
fn flat_folder_is_recursive_and_unlabelled() {
    let dir = TempDir::new("flat");
    for file in ["b.png", "a/c.webp.png", "a/b/d.PNG"] {
        copy_texture(&dir.path().join(file));
    }
    std::fs::write(dir.path().join("readme.md"), "x").expect("write");
    let data = FlatFolder::open(dir.path()).expect("open");
    let order: Vec<String> = (0..data.len())
        .map(|i| relative(dir.path(), data.path(i)))
        .collect();
    assert_eq!(order, ["b.png", "a/c.webp.png", "a/b/d.PNG"]);
    assert_eq!(data.label(0), None);
    assert_eq!(data.num_classes(), 0);
    assert!(data.class_names().is_empty());
    assert!(data.sample_name(2).ends_with("d.PNG"));
}

#[test]
fn missing_empty_and_non_folder_roots_are_clear_errors() {
    let dir = TempDir::new("errors");
    let missing = dir.path().join("nope");
    let err = ImageFolder::open(&missing).expect_err("missing");
    assert!(matches!(&err, DatasetError::MissingFolder { path } if *path == missing));
    assert!(err.to_string().contains("does not exist"));
    assert!(matches!(
        FlatFolder::open(&missing),
        Err(DatasetError::MissingFolder { .. })
    ));

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("class_without_images")).expect("mkdir");
    std::fs::write(empty.join("class_without_images/a.txt"), "x").expect("write");
    for err in [
        ImageFolder::open(&empty).expect_err("empty"),
        FlatFolder::open(&empty).expect_err("empty"),
    ] {
        assert!(
            matches!(&err, DatasetError::NoImages { path, .. } if *path == empty),
            "{err}"
        );
        assert!(err.to_string().contains("holds no image files"));
    }

    let file = dir.path().join("file.png");
    copy_texture(&file);
    assert!(
        matches!(ImageFolder::open(&file), Err(DatasetError::NotAFolder { path }) if path == file)
    );
}

#[test]
fn every_input_format_decodes_to_rgb8_like_pil() {
    for case in manifest()["formats"].as_array().expect("formats") {
        let file = case["file"].as_str().expect("file");
        let image =
            load_image_file(&goldens().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        if let Some(exact) = case["exact"].as_str() {
            let expected = npy(exact);
            assert_eq!(
                expected.shape,
                [image.height() as usize, image.width() as usize, 3],
                "{file}"
            );
            assert_eq!(byte_diff(image.pixels(), expected.u8()), (0, 0), "{file}");
        } else {
            // CMYK JPEG (decoders differ) and 16-bit PNG (scaled, where PIL truncates): close.
            let expected = npy(case["approx"].as_str().expect("approx"));
            assert_eq!(image.pixels().len(), expected.u8().len(), "{file}");
            let mean = image
                .pixels()
                .iter()
                .zip(expected.u8())
                .map(|(&a, &b)| a.abs_diff(b) as f64)
                .sum::<f64>()
                / image.pixels().len() as f64;
            assert!(mean < 6.0, "{file}: mean difference {mean}");
        }
    }
}

fn synthetic(split: SyntheticSplit, per_class: usize) -> SyntheticDataset {
    let config = SyntheticConfig {
        image_size: 24,
        num_classes: 4,
        images_per_class: per_class,
        seed: 3,
        ..SyntheticConfig::default()
    };
    SyntheticDataset::new(config, split).expect("valid")
}

/// The synthetic index encoded in an exported file name (`<index>.<ext>`).
fn exported_index(path: &Path) -> usize {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("numeric name")
}

#[test]
fn synthetic_export_round_trips_through_image_folder() {
    let dir = TempDir::new("export");
    let (train, val) =
        SyntheticDataset::train_val(*synthetic(SyntheticSplit::Train, 5).config(), 2)
            .expect("valid");
    assert_eq!(
        export_image_folder(&train, &dir.path().join("train"), ExportFormat::Png).expect("export"),
        20
    );
    assert_eq!(
        export_image_folder(&val, &dir.path().join("val"), ExportFormat::Png).expect("export"),
        8
    );

    let folder = ImageFolder::open(dir.path().join("train")).expect("open");
    assert_eq!(folder.len(), 20);
    assert_eq!(folder.class_names(), train.class_names());
    for i in 0..folder.len() {
        let index = exported_index(folder.path(i).expect("path"));
        assert_eq!(folder.label(i), train.label(index));
        assert_eq!(
            folder.load(i).expect("decode"),
            train.load(index).expect("generate"),
            "sample {index}"
        );
    }
    let val_folder = ImageFolder::open(dir.path().join("val")).expect("open");
    assert_eq!(val_folder.len(), 8);
    let first_val = val_folder.path(0).map(PathBuf::from).expect("path");
    assert_ne!(
        val_folder.load(0).expect("decode"),
        train.load(exported_index(&first_val)).expect("generate")
    );
}

#[test]
fn jpeg_export_decodes_and_unlabelled_export_is_flat() {
    let dir = TempDir::new("jpeg");
    let data = synthetic(SyntheticSplit::Val, 1);
    export_image_folder(&data, dir.path(), ExportFormat::Jpeg { quality: 90 }).expect("export");
    let folder = ImageFolder::open(dir.path()).expect("open");
    assert_eq!(folder.len(), 4);
    let image = folder.load(0).expect("decode");
    assert_eq!((image.width(), image.height()), (24, 24));

    let flat_dir = TempDir::new("flat-export");
    let flat = FlatFolder::open(dir.path()).expect("open");
    export_image_folder(&flat, flat_dir.path(), ExportFormat::Png).expect("export");
    assert_eq!(FlatFolder::open(flat_dir.path()).expect("open").len(), 4);
    assert!(flat_dir.path().join("0000000.png").is_file());
}

/// Mean colour and brightness spread of an image: what a shortcut learner could use.
fn colour_features(image: &swav_augment::RgbImage) -> [f64; 4] {
    let n = (image.width() * image.height()) as f64;
    let mut f = [0.0; 4];
    for px in image.pixels().chunks_exact(3) {
        for c in 0..3 {
            f[c] += px[c] as f64 / n;
        }
        let l = (px[0] as f64 + px[1] as f64 + px[2] as f64) / 3.0;
        f[3] += l * l / n;
    }
    f[3] = (f[3] - ((f[0] + f[1] + f[2]) / 3.0).powi(2))
        .max(0.0)
        .sqrt();
    f
}

#[test]
fn synthetic_colour_statistics_do_not_reveal_the_class() {
    let config = SyntheticConfig {
        image_size: 32,
        num_classes: 10,
        images_per_class: 60,
        seed: 21,
        ..SyntheticConfig::default()
    };
    let (train, val) = SyntheticDataset::train_val(config, 60).expect("valid");
    let mut centroids = vec![[0.0f64; 4]; 10];
    for i in 0..train.len() {
        let f = colour_features(&train.load(i).expect("generate"));
        let label = train.label(i).expect("label");
        for k in 0..4 {
            centroids[label][k] += f[k] / 60.0;
        }
    }
    let correct = (0..val.len())
        .filter(|&i| {
            let f = colour_features(&val.load(i).expect("generate"));
            let distance = |c: &[f64; 4]| (0..4).map(|k| (f[k] - c[k]).powi(2)).sum::<f64>();
            let nearest = (0..10)
                .min_by(|&a, &b| distance(&centroids[a]).total_cmp(&distance(&centroids[b])))
                .expect("ten classes");
            Some(nearest) == val.label(i)
        })
        .count();
    // Chance is 60 of 600; allow sampling noise, not a colour shortcut.
    assert!(
        correct < 100,
        "colour statistics classify {correct} of 600 validation images"
    );
}
