//! WebDataset shards: writing them, counting and streaming them, and the shard loader's
//! promises (every sample once per epoch, worker-independent batches, exact resume, ranks
//! on disjoint shards, bad samples reported by shard and key).

mod common;

use std::path::PathBuf;

use common::TempDir;
use swav_augment::dataset::{SyntheticConfig, SyntheticDataset, SyntheticSplit};
use swav_augment::loader::{Batch, LoaderConfig, ShardInfo, ShardLoader, count_shards};
use swav_augment::shards::{ShardWriter, count_samples, read_samples, write_shards};
use swav_augment::transform::config::{CropGroupConfig, MultiCropConfig};
use swav_augment::transform::multi_crop::MultiCropTransform;

fn transform() -> MultiCropTransform {
    MultiCropTransform::new(MultiCropConfig::with_crops(vec![
        CropGroupConfig {
            count: 2,
            size: 16,
            min_scale: 0.3,
            max_scale: 1.0,
        },
        CropGroupConfig {
            count: 1,
            size: 8,
            min_scale: 0.1,
            max_scale: 0.3,
        },
    ]))
    .unwrap()
}

/// 60 built-in images (10 classes) in shards of 7 under `dir`.
fn shards(dir: &TempDir) -> Vec<ShardInfo> {
    let data = SyntheticDataset::new(
        SyntheticConfig {
            image_size: 24,
            num_classes: 10,
            images_per_class: 6,
            ..Default::default()
        },
        SyntheticSplit::Train,
    )
    .unwrap();
    let written = write_shards(&data, &dir.path().join("train"), 7, Some(3), |_| {}).unwrap();
    assert_eq!(written.shards.len(), 9);
    assert_eq!(written.samples.len(), 60);
    assert!(written.skipped.is_empty());
    count_shards(&written.shards).unwrap()
}

fn loader(shards: &[ShardInfo], rank: usize, world: usize, workers: usize) -> ShardLoader {
    let config = LoaderConfig {
        batch_size: 4,
        seed: 9,
        rank,
        world_size: world,
        workers,
        ..LoaderConfig::default()
    };
    ShardLoader::new(shards.to_vec(), transform(), config, 10).unwrap()
}

/// (sample ids, labels, crop bits) of each batch.
fn contents(
    batches: impl Iterator<Item = Result<Batch, swav_augment::LoaderError>>,
) -> Vec<(Vec<usize>, Vec<usize>, Vec<u32>)> {
    batches
        .map(|b| {
            let b = b.unwrap();
            let bits = b
                .groups()
                .flat_map(|g| g.data().iter().map(|v| v.to_bits()))
                .collect();
            (b.indices().to_vec(), b.labels().unwrap().to_vec(), bits)
        })
        .collect()
}

#[test]
fn written_shards_count_and_read_back_with_labels() {
    let dir = TempDir::new("shard-read");
    let infos = shards(&dir);
    assert_eq!(infos.iter().map(|s| s.count.samples).sum::<usize>(), 60);
    assert!(infos.iter().all(|s| s.count.labelled == s.count.samples));
    let mut keys = Vec::new();
    read_samples(&infos[0].path, |sample| {
        assert!(sample.image().is_some_and(|(ext, _)| ext == "png"));
        assert!(sample.label().unwrap().is_some_and(|l| l < 10));
        keys.push(sample.key);
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(
        keys,
        [
            "000000", "000001", "000002", "000003", "000004", "000005", "000006"
        ]
    );
}

#[test]
fn an_epoch_holds_each_sample_at_most_once_and_any_worker_count_gives_the_same_batches() {
    let dir = TempDir::new("shard-epoch");
    let infos = shards(&dir);
    let one = loader(&infos, 0, 1, 1);
    assert_eq!(one.iters_per_epoch(), 15);
    let epoch = contents(one.epoch_from(0, 0).unwrap());
    let mut ids: Vec<usize> = epoch.iter().flat_map(|(ids, _, _)| ids.clone()).collect();
    assert_eq!(ids.len(), 60);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 60);
    assert_eq!(
        contents(loader(&infos, 0, 1, 3).epoch_from(0, 0).unwrap()),
        epoch
    );
    let next = contents(one.epoch_from(1, 0).unwrap());
    assert_ne!(next[0].0, epoch[0].0, "each epoch has its own order");
}

#[test]
fn an_epoch_resumed_at_an_iteration_continues_exactly() {
    let dir = TempDir::new("shard-resume");
    let infos = shards(&dir);
    let l = loader(&infos, 0, 1, 2);
    let whole = contents(l.epoch_from(2, 0).unwrap());
    let resumed = contents(l.epoch_from(2, 6).unwrap());
    assert_eq!(resumed.len(), 9);
    assert_eq!(resumed[..], whole[6..]);
    assert_eq!(l.epoch_from(2, 15).unwrap().count(), 0);
    assert!(l.epoch_from(2, 16).is_err());
}

#[test]
fn ranks_read_disjoint_shards_and_agree_on_the_epoch_length() {
    let dir = TempDir::new("shard-ranks");
    let infos = shards(&dir);
    let (r0, r1) = (loader(&infos, 0, 2, 1), loader(&infos, 1, 2, 1));
    // Rank 0 has 5 shards (7 + 7 + 7 + 7 + 4 = 32 samples), rank 1 four (28): 28 / 4 = 7.
    assert_eq!(r0.rank_samples(), [32, 28]);
    assert_eq!((r0.iters_per_epoch(), r1.iters_per_epoch()), (7, 7));
    let ids = |l: &ShardLoader| -> Vec<usize> {
        contents(l.epoch_from(0, 0).unwrap())
            .into_iter()
            .flat_map(|(ids, _, _)| ids)
            .collect()
    };
    let (a, b) = (ids(&r0), ids(&r1));
    assert!(a.iter().all(|id| (id >> 32) % 2 == 0) && b.iter().all(|id| (id >> 32) % 2 == 1));
    let config = LoaderConfig {
        batch_size: 4,
        world_size: 10,
        ..LoaderConfig::default()
    };
    let too_many = ShardLoader::new(infos, transform(), config, 10)
        .err()
        .unwrap()
        .to_string();
    assert!(
        too_many.contains("10 ranks need at least 10 shards"),
        "{too_many}"
    );
}

#[test]
fn bad_samples_are_replaced_and_reported_with_shard_and_key() {
    let dir = TempDir::new("shard-bad");
    let prefix: PathBuf = dir.path().join("mixed");
    let good = std::fs::read(common::goldens().join("texture.png")).unwrap();
    let mut writer = ShardWriter::new(&prefix, 100).unwrap();
    for i in 0..8 {
        let key = format!("s{i}");
        match i {
            3 => writer.add(&key, &[("jpg", b"not a jpeg".as_slice()), ("cls", b"1")]),
            5 => writer.add(&key, &[("txt", b"caption only".as_slice())]),
            6 => writer.add(&key, &[("png", good.as_slice()), ("cls", b"many")]),
            _ => writer.add(&key, &[("png", good.as_slice()), ("cls", b"2")]),
        }
        .unwrap();
    }
    let written = writer.finish().unwrap();
    let count = count_samples(&written[0]).unwrap();
    assert_eq!(
        (count.samples, count.labelled, count.without_image),
        (7, 7, 1)
    );
    let config = LoaderConfig {
        batch_size: 7,
        workers: 2,
        ..LoaderConfig::default()
    };
    let l = ShardLoader::new(count_shards(&written).unwrap(), transform(), config, 1).unwrap();
    let batches = contents(l.epoch_from(0, 0).unwrap());
    assert_eq!(batches.len(), 1);
    assert_eq!(
        batches[0].0.len(),
        7,
        "bad images are replaced, so the batch stays full"
    );
    let summary = l.bad_input_summary();
    assert_eq!(summary.count, 3, "{summary}");
    let names: Vec<&str> = summary.examples.iter().map(|(n, _)| n.as_str()).collect();
    let shard = written[0].display().to_string();
    assert_eq!(
        names,
        [
            format!("{shard}:s3"),
            format!("{shard}:s5"),
            format!("{shard}:s6")
        ]
    );
    assert!(
        summary.examples[1].1.contains("no image member"),
        "{summary:?}"
    );
    assert!(
        summary.examples[2]
            .1
            .contains("'many' is not a class number"),
        "{summary:?}"
    );

    let strict = LoaderConfig {
        batch_size: 7,
        bad_input: swav_augment::loader::BadInputPolicy {
            strict: true,
            ..Default::default()
        },
        ..LoaderConfig::default()
    };
    let l = ShardLoader::new(count_shards(&written).unwrap(), transform(), strict, 1).unwrap();
    let error = l
        .epoch_from(0, 0)
        .unwrap()
        .find_map(Result::err)
        .unwrap()
        .to_string();
    assert!(error.contains(&format!("{shard}:s3")), "{error}");
}

#[test]
fn a_file_that_is_not_a_tar_stops_with_its_name() {
    let dir = TempDir::new("shard-corrupt");
    let path = dir.path().join("broken.tar");
    std::fs::write(&path, vec![7u8; 700]).unwrap();
    let error = count_samples(&path).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("shard {}", path.display())),
        "{error}"
    );
    assert!(error.contains("not a readable tar archive"), "{error}");
}
