//! Bad input: corrupt, truncated, zero-byte, non-image and tiny files are skipped with a
//! warning and counted, or stop the run under the strict policy; never a panic.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{TempDir, goldens};
use swav_augment::dataset::decode::load_image_file;
use swav_augment::dataset::export::{ExportFormat, export_image_folder};
use swav_augment::dataset::{
    Dataset, ImageFolder, SyntheticConfig, SyntheticDataset, SyntheticSplit,
};
use swav_augment::loader::{
    BadInputPolicy, EvalLoader, EvalLoaderConfig, LoaderConfig, MultiCropLoader,
};
use swav_augment::transform::config::{CropGroupConfig, MultiCropConfig};
use swav_augment::transform::eval::{EvalConfig, EvalMode, EvalTransform};
use swav_augment::transform::multi_crop::MultiCropTransform;
use swav_augment::{DatasetError, LoaderError};

/// The kinds of bad file, each written into class folder `00_disc` of a dataset.
#[derive(Debug, Clone, Copy)]
enum Bad {
    Corrupt,
    Truncated,
    ZeroBytes,
    NotAnImage,
    Tiny,
}

const ALL_BAD: [Bad; 5] = [
    Bad::Corrupt,
    Bad::Truncated,
    Bad::ZeroBytes,
    Bad::NotAnImage,
    Bad::Tiny,
];

impl Bad {
    fn file_name(self) -> &'static str {
        match self {
            Bad::Corrupt => "bad_corrupt.jpg",
            Bad::Truncated => "bad_truncated.jpg",
            Bad::ZeroBytes => "bad_zero.png",
            Bad::NotAnImage => "bad_text.JPEG",
            Bad::Tiny => "bad_tiny.png",
        }
    }

    /// Writes the bad file next to the valid JPEG `template`.
    fn write(self, template: &Path) -> PathBuf {
        let jpeg = std::fs::read(template).expect("read template");
        let bytes = match self {
            Bad::Corrupt => {
                // Zero the frame header's height and width.
                let mut b = jpeg;
                let sof = b
                    .windows(2)
                    .position(|w| w == [0xFF, 0xC0])
                    .expect("baseline SOF0");
                b[sof + 5..sof + 9].fill(0);
                b
            }
            Bad::Truncated => jpeg[..jpeg.len() * 6 / 10].to_vec(),
            Bad::ZeroBytes => Vec::new(),
            Bad::NotAnImage => b"just some text, saved with an image extension".to_vec(),
            Bad::Tiny => std::fs::read(goldens().join("formats/tiny_1x1.png")).expect("read 1x1"),
        };
        let path = template.with_file_name(self.file_name());
        std::fs::write(&path, bytes).expect("write bad file");
        path
    }
}

/// 24 valid synthetic JPEGs in 2 classes plus the given bad files.
fn dataset_with(dir: &TempDir, bad: &[Bad]) -> Arc<ImageFolder> {
    let config = SyntheticConfig {
        image_size: 24,
        num_classes: 2,
        images_per_class: 12,
        seed: 11,
        ..SyntheticConfig::default()
    };
    let synthetic = SyntheticDataset::new(config, SyntheticSplit::Train).expect("valid");
    export_image_folder(&synthetic, dir.path(), ExportFormat::Jpeg { quality: 90 })
        .expect("export");
    let template = dir.path().join("00_disc").join("0000000.jpg");
    for kind in bad {
        kind.write(&template);
    }
    Arc::new(ImageFolder::open(dir.path()).expect("open"))
}

fn transform() -> MultiCropTransform {
    MultiCropTransform::new(MultiCropConfig::with_crops(vec![
        CropGroupConfig {
            count: 2,
            size: 16,
            min_scale: 0.3,
            max_scale: 1.0,
        },
        CropGroupConfig {
            count: 2,
            size: 8,
            min_scale: 0.05,
            max_scale: 0.3,
        },
    ]))
    .expect("valid")
}

fn loader(data: Arc<ImageFolder>, strict: bool, workers: usize) -> MultiCropLoader {
    let config = LoaderConfig {
        batch_size: 5,
        seed: 4,
        workers,
        prefetch: 2,
        bad_input: BadInputPolicy {
            strict,
            ..BadInputPolicy::default()
        },
        ..LoaderConfig::default()
    };
    MultiCropLoader::new(data, transform(), config).expect("loader")
}

fn index_of(data: &ImageFolder, name: &str) -> usize {
    (0..data.len())
        .find(|&i| data.path(i).is_some_and(|p| p.ends_with(name)))
        .expect("bad file is listed")
}

#[test]
fn each_bad_file_fails_to_load_with_an_error_naming_it() {
    let dir = TempDir::new("bad-decode");
    let template = {
        dataset_with(&dir, &[]);
        dir.path().join("00_disc").join("0000000.jpg")
    };
    for kind in ALL_BAD {
        let path = kind.write(&template);
        let result = load_image_file(&path);
        let matches_kind = match (kind, &result) {
            (Bad::Corrupt, Err(DatasetError::Decode { .. })) => true,
            (Bad::Truncated, Err(DatasetError::Truncated { .. })) => true,
            (Bad::ZeroBytes, Err(DatasetError::EmptyFile { .. })) => true,
            (Bad::NotAnImage, Err(DatasetError::UnknownFormat { .. })) => true,
            // A 1x1 image decodes; the loader's minimum side rejects it.
            (Bad::Tiny, Ok(image)) => (image.width(), image.height()) == (1, 1),
            _ => false,
        };
        assert!(matches_kind, "{kind:?}: {result:?}");
        if let Err(error) = result {
            assert!(error.to_string().contains(kind.file_name()), "{error}");
        }
    }
}

#[test]
fn each_bad_file_is_skipped_and_counted_while_batches_stay_full() {
    for kind in ALL_BAD {
        let dir = TempDir::new("bad-skip");
        let data = dataset_with(&dir, &[kind]);
        let bad_index = index_of(&data, kind.file_name());
        let loader = loader(Arc::clone(&data), false, 2);
        assert_eq!(loader.iters_per_epoch(), 5); // 25 files, batch 5
        let mut seen = 0;
        for batch in loader.epoch(0).expect("epoch") {
            let batch = batch.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(batch.len(), 5, "{kind:?}");
            assert!(!batch.indices().contains(&bad_index), "{kind:?}");
            assert_eq!(
                batch.group(0).map(|g| g.data().len()),
                Some(2 * 5 * 16 * 16 * 3)
            );
            seen += batch.len();
        }
        assert_eq!(seen, 25);
        let summary = loader.bad_input_summary();
        assert_eq!(summary.count, 1, "{kind:?}");
        assert!(
            summary.examples[0].0.ends_with(kind.file_name()),
            "{summary}"
        );
        assert!(summary.to_string().contains(kind.file_name()));
    }
}

#[test]
fn strict_mode_stops_at_each_bad_file_with_its_name() {
    for kind in ALL_BAD {
        let dir = TempDir::new("bad-strict");
        let data = dataset_with(&dir, &[kind]);
        let loader = loader(data, true, 2);
        let results: Vec<Result<_, LoaderError>> = loader.epoch(0).expect("epoch").collect();
        let error = results
            .iter()
            .find_map(|r| r.as_ref().err())
            .unwrap_or_else(|| panic!("{kind:?}: strict mode accepted the file"));
        assert!(matches!(error, LoaderError::BadSample(_)), "{error}");
        assert!(error.to_string().contains(kind.file_name()), "{error}");
        assert!(
            results.last().is_some_and(|r| r.is_err()),
            "{kind:?}: the epoch goes on after the error"
        );
        assert_eq!(loader.bad_input_summary().count, 0);
    }
}

/// Every batch of an epoch as (indices, all group data).
fn epoch_contents(loader: &MultiCropLoader, epoch: u64) -> Vec<(Vec<usize>, Vec<Vec<f32>>)> {
    loader
        .epoch(epoch)
        .expect("epoch")
        .map(|b| {
            let b = b.expect("batch");
            (
                b.indices().to_vec(),
                b.groups().map(|g| g.data().to_vec()).collect(),
            )
        })
        .collect()
}

#[test]
fn substitution_is_deterministic_across_worker_counts() {
    let dir = TempDir::new("bad-determinism");
    let data = dataset_with(&dir, &ALL_BAD);
    let one = loader(Arc::clone(&data), false, 1);
    let three = loader(Arc::clone(&data), false, 3);
    for epoch in 0..2 {
        assert_eq!(
            epoch_contents(&one, epoch),
            epoch_contents(&three, epoch),
            "epoch {epoch}"
        );
    }
    let summary = three.bad_input_summary();
    assert_eq!(summary.count, 5);
    assert_eq!(summary.examples.len(), 5);
    assert_eq!(one.bad_input_summary(), summary);
}

#[test]
fn evaluation_leaves_bad_files_out_and_sees_every_good_one_once() {
    let dir = TempDir::new("bad-eval");
    let data = dataset_with(&dir, &ALL_BAD);
    let eval = EvalTransform::new(EvalConfig {
        size: 16,
        mode: EvalMode::Resize,
        ..EvalConfig::default()
    })
    .expect("valid");
    let config = EvalLoaderConfig {
        batch_size: 4,
        workers: 2,
        ..EvalLoaderConfig::default()
    };
    let loader = EvalLoader::new(
        Arc::clone(&data) as Arc<dyn Dataset>,
        eval.clone(),
        config.clone(),
    )
    .expect("loader");
    let mut seen = Vec::new();
    for batch in loader.batches().expect("batches") {
        let batch = batch.expect("batch");
        let group = batch.group(0).expect("one group");
        assert_eq!(group.shape(), [batch.len(), 16, 16, 3]);
        seen.extend_from_slice(batch.indices());
    }
    let bad: Vec<usize> = ALL_BAD
        .iter()
        .map(|k| index_of(&data, k.file_name()))
        .collect();
    let expected: Vec<usize> = (0..data.len()).filter(|i| !bad.contains(i)).collect();
    assert_eq!(seen, expected);
    assert_eq!(loader.bad_input_summary().count, 5);

    let strict = EvalLoaderConfig {
        bad_input: BadInputPolicy {
            strict: true,
            ..BadInputPolicy::default()
        },
        ..config
    };
    let loader = EvalLoader::new(data, eval, strict).expect("loader");
    assert!(loader.batches().expect("batches").any(|b| b.is_err()));
}

#[test]
fn a_dataset_of_only_bad_files_is_an_error_not_a_panic() {
    let dir = TempDir::new("bad-all");
    let root = dir.path().join("class");
    std::fs::create_dir_all(&root).expect("mkdir");
    for i in 0..6 {
        std::fs::write(root.join(format!("{i}.jpg")), b"").expect("write");
    }
    let data = Arc::new(ImageFolder::open(dir.path()).expect("open"));
    let config = LoaderConfig {
        batch_size: 3,
        workers: 2,
        ..LoaderConfig::default()
    };
    let loader = MultiCropLoader::new(data, transform(), config).expect("loader");
    let first = loader.epoch(0).expect("epoch").next().expect("one result");
    let error = first.map(|_| ()).expect_err("no readable sample");
    assert!(
        matches!(error, LoaderError::NoReadableSample { len: 6, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("0.jpg"), "{error}");
}
