//! The loaders: batch layout, determinism, resume, sharding, recycling, evaluation.

use std::sync::Arc;

use swav_augment::dataset::{Dataset, SyntheticConfig, SyntheticDataset, SyntheticSplit};
use swav_augment::loader::{EvalLoader, EvalLoaderConfig, LoaderConfig, MultiCropLoader};
use swav_augment::transform::config::{CropGroupConfig, MultiCropConfig};
use swav_augment::transform::crop::CropScratch;
use swav_augment::transform::eval::{EvalConfig, EvalMode, EvalTransform};
use swav_augment::transform::multi_crop::{MultiCropTransform, SampleKey};
use swav_augment::transform::normalize::Normalization;
use swav_augment::{DatasetError, LoaderError, RgbImage};

/// Images of one grey level per sample (`index % 250`), with label `index % 3`.
struct ConstantImages(usize);

impl Dataset for ConstantImages {
    fn len(&self) -> usize {
        self.0
    }
    fn label(&self, index: usize) -> Option<usize> {
        (index < self.0).then_some(index % 3)
    }
    fn class_names(&self) -> &[String] {
        static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        NAMES.get_or_init(|| vec!["a".into(), "b".into(), "c".into()])
    }
    fn sample_name(&self, index: usize) -> String {
        format!("constant #{index}")
    }
    fn load(&self, index: usize) -> Result<RgbImage, DatasetError> {
        RgbImage::from_raw(20, 30, vec![(index % 250) as u8; 20 * 30 * 3])
            .ok_or(DatasetError::IndexOutOfRange { index, len: self.0 })
    }
}

fn group(count: usize, size: u32) -> CropGroupConfig {
    CropGroupConfig {
        count,
        size,
        min_scale: 0.2,
        max_scale: 1.0,
    }
}

fn synthetic(per_class: usize) -> Arc<SyntheticDataset> {
    let config = SyntheticConfig {
        image_size: 32,
        num_classes: 10,
        images_per_class: per_class,
        seed: 5,
        ..SyntheticConfig::default()
    };
    Arc::new(SyntheticDataset::new(config, SyntheticSplit::Train).expect("valid"))
}

fn small_transform() -> MultiCropTransform {
    MultiCropTransform::new(MultiCropConfig::with_crops(vec![
        group(2, 24),
        group(3, 12),
    ]))
    .expect("valid")
}

fn config(batch_size: usize, workers: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size,
        seed: 9,
        workers,
        prefetch: 2,
        ..LoaderConfig::default()
    }
}

/// Every batch of an epoch: (iteration, indices, labels, group data).
type Contents = Vec<(usize, Vec<usize>, Option<Vec<usize>>, Vec<Vec<f32>>)>;

fn contents(batches: swav_augment::loader::EpochBatches) -> Contents {
    batches
        .map(|b| {
            let b = b.expect("batch");
            let data = b.groups().map(|g| g.data().to_vec()).collect();
            (
                b.iteration(),
                b.indices().to_vec(),
                b.labels().map(<[usize]>::to_vec),
                data,
            )
        })
        .collect()
}

#[test]
fn batches_are_crop_major_per_merged_resolution_group() {
    // Identity pixels: no jitter, greyscale or blur, and a normalisation that maps v to v.
    let mut crops = MultiCropConfig::with_crops(vec![group(2, 16), group(1, 16), group(2, 8)]);
    crops.jitter_probability = 0.0;
    crops.grayscale_probability = 0.0;
    crops.blur_probability = 0.0;
    crops.normalization = Normalization {
        mean: [0.0; 3],
        std: [1.0 / 255.0; 3],
    };
    let transform = MultiCropTransform::new(crops).expect("valid");
    let loader = MultiCropLoader::new(Arc::new(ConstantImages(40)), transform, config(6, 3))
        .expect("loader");
    assert_eq!(loader.resolution_groups().len(), 2);
    for batch in loader.epoch(0).expect("epoch") {
        let batch = batch.expect("batch");
        assert_eq!(batch.num_groups(), 2);
        let (large, small) = (
            batch.group(0).expect("16 px"),
            batch.group(1).expect("8 px"),
        );
        assert_eq!((large.shape(), large.first_crop()), ([18, 16, 16, 3], 0));
        assert_eq!((small.shape(), small.first_crop()), ([12, 8, 8, 3], 3));
        assert_eq!(
            batch.labels().map(<[usize]>::to_vec),
            Some(batch.indices().iter().map(|i| i % 3).collect())
        );
        for g in [large, small] {
            for crop in 0..g.crops() {
                for (n, &index) in batch.indices().iter().enumerate() {
                    let expected = (index % 250) as f32;
                    let image = g.image(crop, n).expect("in range");
                    // Position c * batch + n in the raw buffer.
                    let at = (crop * g.batch() + n) * image.len();
                    assert_eq!(&g.data()[at..at + image.len()], image);
                    assert!(
                        image.iter().all(|v| (v - expected).abs() < 1e-3),
                        "crop {crop} of image {n}"
                    );
                }
            }
            assert!(g.image(g.crops(), 0).is_none());
        }
    }
}

#[test]
fn every_crop_equals_the_transform_applied_directly() {
    let data = synthetic(4);
    let loader =
        MultiCropLoader::new(data.clone(), small_transform(), config(8, 2)).expect("loader");
    let transform = small_transform();
    let mut scratch = CropScratch::new();
    let batch = loader
        .epoch_from(3, 2)
        .expect("epoch")
        .next()
        .expect("a batch")
        .expect("batch");
    assert_eq!(batch.indices(), loader.epoch_schedule(3)[2].as_slice());
    for (n, &index) in batch.indices().iter().enumerate() {
        let image = data.load(index).expect("generate");
        let mut expected: Vec<Vec<f32>> = (0..5)
            .map(|c| vec![0.0; (transform.crop_size(c).unwrap_or(0).pow(2) * 3) as usize])
            .collect();
        let mut slots: Vec<&mut [f32]> = expected.iter_mut().map(Vec::as_mut_slice).collect();
        transform
            .apply(
                &image,
                SampleKey {
                    seed: 9,
                    epoch: 3,
                    index: index as u64,
                },
                &mut scratch,
                &mut slots,
            )
            .expect("apply");
        for (crop, want) in expected.iter().enumerate() {
            let (g, local) = if crop < 2 { (0, crop) } else { (1, crop - 2) };
            assert_eq!(
                batch.group(g).and_then(|g| g.image(local, n)),
                Some(want.as_slice()),
                "crop {crop} of {n}"
            );
        }
    }
}

#[test]
fn output_is_bit_identical_for_any_worker_count_and_prefetch() {
    let data = synthetic(5);
    let reference = contents(
        MultiCropLoader::new(data.clone(), small_transform(), config(7, 1))
            .expect("loader")
            .epoch(1)
            .expect("epoch"),
    );
    assert_eq!(reference.len(), 7);
    for (workers, prefetch) in [(2, 1), (4, 3), (3, 8)] {
        let cfg = LoaderConfig {
            prefetch,
            ..config(7, workers)
        };
        let loader = MultiCropLoader::new(data.clone(), small_transform(), cfg).expect("loader");
        assert_eq!(
            contents(loader.epoch(1).expect("epoch")),
            reference,
            "{workers} workers, prefetch {prefetch}"
        );
    }
}

#[test]
fn epochs_and_seeds_change_the_batches_and_resume_continues_exactly() {
    let data = synthetic(4);
    let loader =
        MultiCropLoader::new(data.clone(), small_transform(), config(5, 2)).expect("loader");
    let epoch2 = contents(loader.epoch(2).expect("epoch"));
    assert_eq!(epoch2.len(), 8);
    let resumed = contents(loader.epoch_from(2, 5).expect("resume"));
    assert_eq!(resumed, epoch2[5..].to_vec());
    assert!(contents(loader.epoch_from(2, 8).expect("end")).is_empty());
    assert!(matches!(
        loader.epoch_from(2, 9),
        Err(LoaderError::StartPastEnd {
            iteration: 9,
            iters_per_epoch: 8
        })
    ));

    let epoch3 = contents(loader.epoch(3).expect("epoch"));
    assert_ne!(epoch3[0].1, epoch2[0].1);
    let other_seed = MultiCropLoader::new(
        data,
        small_transform(),
        LoaderConfig {
            seed: 10,
            ..config(5, 2)
        },
    )
    .expect("loader");
    assert_ne!(
        contents(other_seed.epoch(2).expect("epoch"))[0].3,
        epoch2[0].3
    );
}

#[test]
fn ranks_share_one_padded_permutation() {
    let data = synthetic(4); // 40 samples
    let world = 3;
    let mut seen = Vec::new();
    for rank in 0..world {
        let cfg = LoaderConfig {
            rank,
            world_size: world,
            ..config(4, 1)
        };
        let loader = MultiCropLoader::new(data.clone(), small_transform(), cfg).expect("loader");
        assert_eq!(loader.iters_per_epoch(), 3); // floor(ceil(40 / 3) / 4)
        let schedule = loader.epoch_schedule(6);
        assert_eq!(schedule.len(), 3);
        seen.extend(schedule.into_iter().flatten());
    }
    // 36 scheduled of 42 padded positions; no index more than twice (padding repeats 2).
    assert_eq!(seen.len(), 36);
    for index in 0..40 {
        assert!(seen.iter().filter(|&&i| i == index).count() <= 2);
    }
}

#[test]
fn without_drop_last_the_last_batch_is_partial() {
    let data = synthetic(2); // 20 samples
    let cfg = LoaderConfig {
        drop_last: false,
        ..config(8, 2)
    };
    let loader = MultiCropLoader::new(data, small_transform(), cfg).expect("loader");
    assert_eq!(loader.iters_per_epoch(), 3);
    let lens: Vec<usize> = loader
        .epoch(0)
        .expect("epoch")
        .map(|b| b.expect("batch").len())
        .collect();
    assert_eq!(lens, [8, 8, 4]);
    let last = loader
        .epoch_from(0, 2)
        .expect("epoch")
        .next()
        .expect("one")
        .expect("batch");
    assert_eq!(last.group(1).map(|g| g.shape()), Some([3 * 4, 12, 12, 3]));
}

#[test]
fn buffers_are_recycled_and_held_batches_do_not_stall_the_loader() {
    let data = synthetic(6);
    let loader = MultiCropLoader::new(data, small_transform(), config(4, 2)).expect("loader");
    let batches = loader.epoch(0).expect("epoch").count();
    assert_eq!(batches, 15);
    let stats = loader.stats();
    assert!(
        stats.buffers_allocated <= 3,
        "{} buffers for prefetch 2",
        stats.buffers_allocated
    );
    assert_eq!((stats.batches, stats.samples, stats.produced), (15, 60, 60));
    assert!(stats.samples_per_second() > 0.0 && stats.samples_per_core_second() > 0.0);
    assert!(stats.to_string().contains("60 samples"));

    // Keeping every batch alive only costs memory.
    let held: Vec<_> = loader.epoch(1).expect("epoch").collect();
    assert_eq!(held.len(), 15);
    assert!(held.iter().all(Result::is_ok));

    // Dropping an epoch part-way stops it; the next one starts cleanly.
    let mut partial = loader.epoch(2).expect("epoch");
    assert!(partial.next().is_some_and(|b| b.is_ok()));
    drop(partial);
    loader.reset_stats();
    assert_eq!(loader.epoch(3).expect("epoch").count(), 15);
    assert_eq!(loader.stats().batches, 15);
}

#[test]
fn invalid_loader_settings_name_the_parameter() {
    let data = synthetic(1); // 10 samples
    let parameter =
        |cfg: LoaderConfig| match MultiCropLoader::new(data.clone(), small_transform(), cfg) {
            Err(LoaderError::Config(e)) => e.parameter,
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("accepted"),
        };
    assert_eq!(parameter(config(0, 1)), "batch_size");
    assert_eq!(parameter(config(11, 1)), "batch_size"); // no full batch with drop_last
    assert_eq!(parameter(config(2, 0)), "workers");
    assert_eq!(
        parameter(LoaderConfig {
            prefetch: 0,
            ..config(2, 1)
        }),
        "prefetch"
    );
    assert_eq!(
        parameter(LoaderConfig {
            rank: 2,
            world_size: 2,
            ..config(2, 1)
        }),
        "rank"
    );
    assert_eq!(
        parameter(LoaderConfig {
            world_size: 0,
            ..config(2, 1)
        }),
        "world_size"
    );
    assert!(matches!(
        MultiCropLoader::new(Arc::new(ConstantImages(0)), small_transform(), config(2, 1)),
        Err(LoaderError::EmptyDataset)
    ));
}

#[test]
fn evaluation_covers_each_sample_once_across_ranks_in_order() {
    let data = synthetic(3); // 30 samples
    let eval = EvalTransform::new(EvalConfig {
        size: 20,
        mode: EvalMode::ResizeCenterCrop,
        ..EvalConfig::default()
    })
    .expect("valid");
    let mut all = Vec::new();
    let mut scratch = CropScratch::new();
    for rank in 0..4 {
        let cfg = EvalLoaderConfig {
            batch_size: 3,
            rank,
            world_size: 4,
            workers: 2,
            ..EvalLoaderConfig::default()
        };
        let loader = EvalLoader::new(data.clone(), eval.clone(), cfg).expect("loader");
        let expected: Vec<usize> = (rank..30).step_by(4).collect();
        assert_eq!(loader.indices(), expected.as_slice());
        assert_eq!(loader.num_batches(), expected.len().div_ceil(3));
        let mut seen = Vec::new();
        for batch in loader.batches().expect("batches") {
            let batch = batch.expect("batch");
            let g = batch.group(0).expect("one group");
            assert_eq!(g.shape(), [batch.len(), 20, 20, 3]);
            for (n, &index) in batch.indices().iter().enumerate() {
                assert_eq!(batch.labels().map(|l| l[n]), data.label(index));
                let mut want = vec![0.0; eval.output_len()];
                eval.render(
                    &data.load(index).expect("generate"),
                    &mut scratch,
                    &mut want,
                )
                .expect("render");
                assert_eq!(g.image(0, n), Some(want.as_slice()));
            }
            seen.extend_from_slice(batch.indices());
        }
        assert_eq!(seen, expected);
        assert_eq!(loader.stats().samples, expected.len() as u64);
        all.extend(seen);
    }
    all.sort_unstable();
    assert_eq!(all, (0..30).collect::<Vec<_>>());
}

#[test]
fn loaders_and_batches_can_move_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_and_sync::<MultiCropLoader>();
    send_and_sync::<EvalLoader>();
    send::<swav_augment::loader::Batch>();
    send::<swav_augment::loader::EpochBatches>();
    send::<LoaderError>();
}

/// A dataset whose sample 7 panics when loaded.
struct PanicsOnSeven(ConstantImages);

impl Dataset for PanicsOnSeven {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn label(&self, index: usize) -> Option<usize> {
        self.0.label(index)
    }
    fn class_names(&self) -> &[String] {
        self.0.class_names()
    }
    fn sample_name(&self, index: usize) -> String {
        self.0.sample_name(index)
    }
    fn load(&self, index: usize) -> Result<RgbImage, DatasetError> {
        assert_ne!(index, 7, "a buggy dataset");
        self.0.load(index)
    }
}

#[test]
fn a_panicking_dataset_becomes_an_error_at_its_batch() {
    let data = Arc::new(PanicsOnSeven(ConstantImages(12)));
    let cfg = EvalLoaderConfig {
        batch_size: 4,
        workers: 2,
        ..EvalLoaderConfig::default()
    };
    let eval = EvalTransform::new(EvalConfig {
        size: 8,
        mode: EvalMode::Resize,
        ..EvalConfig::default()
    })
    .expect("valid");
    let loader = EvalLoader::new(data, eval, cfg).expect("loader");
    let results: Vec<_> = loader.batches().expect("batches").collect();
    assert_eq!(results.len(), 2, "the epoch stops at the failed batch");
    assert!(results[0].is_ok());
    assert!(matches!(
        results[1],
        Err(LoaderError::WorkerLost {
            epoch: 0,
            iteration: 1
        })
    ));
    // The loader is still usable.
    assert_eq!(
        loader
            .batches()
            .expect("batches")
            .take(1)
            .filter(Result::is_ok)
            .count(),
        1
    );
}
