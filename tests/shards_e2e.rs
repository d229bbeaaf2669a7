//! WebDataset shards through the binary: `swav shard` packs an image folder with a
//! manifest, `swav pretrain` trains on shards written by Python's `webdataset` package and
//! on its own, a sharded run stopped and resumed matches the uninterrupted one bit for bit,
//! and bad shard names and commands that cannot stream shards fail in one line.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use swav::swav_augment::dataset::export::{ExportFormat, export_image_folder};
use swav::swav_augment::dataset::{SyntheticConfig, SyntheticDataset, SyntheticSplit};

/// The two shards `scripts/shards/webdataset_interop.py fixture` wrote with webdataset's
/// ShardWriter: 12 JPEG and 12 PNG samples with `.cls` labels, one with a `.txt` too.
fn webdataset_fixture() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/webdataset/wds-{000000..000001}.tar")
        .display()
        .to_string()
}

/// The built-in shapes (4 classes of 10, 16 px) as an ImageFolder of PNGs, packed by
/// `swav shard` into shards of 6 under `dir`; returns the shard pattern.
fn packed_shapes(dir: &Path) -> String {
    let folder = dir.join("shapes");
    let config = SyntheticConfig {
        image_size: 16,
        num_classes: 4,
        images_per_class: 10,
        ..SyntheticConfig::default()
    };
    let data = SyntheticDataset::new(config, SyntheticSplit::Train).expect("synthetic");
    export_image_folder(&data, &folder, ExportFormat::Png).expect("export");
    let prefix: PathBuf = dir.join("shards").join("shapes");
    let out = swav_ok(&[
        "shard",
        s(&folder),
        "--output",
        s(&prefix),
        "--shard-size",
        "6",
    ]);
    let log = stderr(&out);
    assert!(log.contains("wrote 40 samples into 7 shards"), "{log}");
    let pattern = format!("{}-{{000000..000006}}.tar", prefix.display());
    assert!(
        log.contains(&pattern),
        "the last line says how to train: {log}"
    );
    let manifest =
        std::fs::read_to_string(dir.join("shards").join("shapes-manifest.tsv")).expect("manifest");
    let lines: Vec<&str> = manifest.lines().collect();
    assert_eq!(lines[0], "key\tshard\tsource");
    assert_eq!(lines.len(), 41);
    assert!(
        lines[1].starts_with("000000\tshapes-000000.tar\t"),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(".png"), "the source file: {}", lines[1]);
    pattern
}

#[test]
fn a_folder_with_train_and_val_packs_its_training_split() {
    let dir = tempfile::tempdir().unwrap();
    let config = SyntheticConfig {
        image_size: 16,
        num_classes: 2,
        images_per_class: 3,
        ..SyntheticConfig::default()
    };
    for (split, which) in [
        ("train", SyntheticSplit::Train),
        ("val", SyntheticSplit::Val),
    ] {
        let data = SyntheticDataset::new(config, which).expect("synthetic");
        export_image_folder(
            &data,
            &dir.path().join("split").join(split),
            ExportFormat::Png,
        )
        .expect("export");
    }
    let out = swav_ok(&[
        "shard",
        s(&dir.path().join("split")),
        "--output",
        s(&dir.path().join("packed")),
    ]);
    let log = stderr(&out);
    let train = dir.path().join("split").join("train");
    assert!(
        log.contains(&format!("packing 6 images of {}", train.display())),
        "{log}"
    );
}

#[test]
fn shards_written_by_webdataset_train() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = swav_ok(&tiny_pretrain_args(
        s(&run),
        &[
            "--data",
            &webdataset_fixture(),
            "--epochs",
            "1",
            "--eval-knn",
            "true",
        ],
    ));
    let log = stderr(&out);
    assert!(
        log.contains("training shards: 2 shards") && log.contains("24 samples (with cls labels)"),
        "{log}"
    );
    assert!(log.contains("3 iterations per epoch"), "{log}");
    assert!(log.contains("hold no validation split"), "{log}");
    assert_eq!(metrics(&run).len(), 3);
}

#[test]
fn a_sharded_run_stopped_and_resumed_matches_the_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let shards = packed_shapes(dir.path());
    let extra = ["--data", shards.as_str(), "--shuffle-buffer", "10"];
    // 40 samples, batches of 8: 5 iterations per epoch. Stop mid-epoch 0, then mid-epoch 1.
    let (whole, parts) = whole_and_resumed_twice(dir.path(), &extra, "3", "4");

    let (a, b) = (metrics(&whole), metrics(&parts));
    assert_eq!(a.len(), 10);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        for key in ["iteration", "loss", "codes_entropy", "prototypes_in_use"] {
            assert_eq!(x[key], y[key], "iteration {}: {key}", x["iteration"]);
        }
    }
    assert_eq!(
        tensors(&whole.join("checkpoint.safetensors")),
        tensors(&parts.join("checkpoint.safetensors"))
    );

    // Another shuffle buffer is another order, hence another run.
    let other = dir.path().join("other");
    swav_ok(&tiny_pretrain_args(
        s(&other),
        &[
            "--data",
            shards.as_str(),
            "--shuffle-buffer",
            "1",
            "--epochs",
            "1",
        ],
    ));
    assert_ne!(metrics(&other)[0]["loss"], a[0]["loss"]);
}

#[test]
fn bad_shard_names_and_commands_that_cannot_stream_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let fixture = webdataset_fixture();
    let missing = format!("{}/none-{{0..3}}.tar", dir.path().display());
    let e = swav_error(&tiny_pretrain_args(s(&run), &["--data", &missing]));
    assert!(
        e.contains("4 of its 4 shards do not exist") && e.contains("none-0.tar"),
        "{e}"
    );
    let e = swav_error(&tiny_pretrain_args(s(&run), &["--data", "x-{1..}.tar"]));
    assert!(e.contains("'' is not a non-negative integer"), "{e}");

    let e = swav_error(&tiny_pretrain_args(
        s(&run),
        &["--data", &fixture, "--preset", "small-data"],
    ));
    assert!(e.contains("--recipe-probe-iterations 0"), "{e}");
    let mut supervised = tiny_pretrain_args(s(&run), &["--data", &fixture]);
    supervised[0] = "supervised";
    let e = swav_error(&supervised);
    assert!(e.contains("only `swav pretrain` streams"), "{e}");
    let trained = dir.path().join("trained");
    swav_ok(&tiny_pretrain_args(s(&trained), &["--epochs", "1"]));
    let weights = trained.join("checkpoint.safetensors");
    for command in [
        vec!["eval", "knn", "--weights", s(&weights), "--data", &fixture],
        vec![
            "extract",
            "--weights",
            s(&weights),
            "--data",
            &fixture,
            "--output",
            "f.npy",
        ],
        vec![
            "assign",
            "--weights",
            s(&weights),
            "--data",
            &fixture,
            "--output",
            "a.npy",
        ],
    ] {
        let e = swav_error(&command);
        assert!(
            e.contains("only `swav pretrain` streams"),
            "{command:?}: {e}"
        );
    }

    let e = swav_error(&tiny_pretrain_args(
        s(&run),
        &["--data", &fixture, "--images-per-class", "3"],
    ));
    assert!(
        e.contains("--images-per-class") && e.contains("streamed without an index"),
        "{e}"
    );
    // A folder of shards given as a folder says how to name them.
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/webdataset");
    let e = swav_error(&tiny_pretrain_args(s(&run), &["--data", s(&folder)]));
    assert!(e.contains("holds no images but 2 .tar files"), "{e}");

    let broken = dir.path().join("broken.tar");
    std::fs::write(&broken, vec![1u8; 1024]).unwrap();
    let e = swav_error(&tiny_pretrain_args(s(&run), &["--data", s(&broken)]));
    assert!(
        e.contains("broken.tar") && e.contains("not a readable tar archive"),
        "{e}"
    );
    let e = swav_error(&["shard", s(&dir.path().join("nowhere")), "--output", "x"]);
    assert!(e.contains("nowhere"), "{e}");
    assert!(!run.exists(), "no failed command created the run folder");
}

#[test]
fn bad_samples_in_a_shard_are_skipped_and_reported_by_shard_and_key() {
    use swav::swav_augment::shards::ShardWriter;
    let dir = tempfile::tempdir().unwrap();
    let png = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/swav-augment/tests/goldens/texture.png"),
    )
    .unwrap();
    let prefix = dir.path().join("mixed");
    let mut writer = ShardWriter::new(&prefix, 100).unwrap();
    for i in 0..20 {
        let key = format!("{i:04}");
        match i {
            3 => writer.add(&key, &[("jpg", b"garbage".as_slice()), ("cls", b"0")]),
            7 => writer.add(&key, &[("txt", b"a caption".as_slice())]),
            _ => writer.add(&key, &[("png", png.as_slice()), ("cls", b"1")]),
        }
        .unwrap();
    }
    let shard = writer.finish().unwrap().remove(0);
    let run = dir.path().join("run");
    // One batch of all 19 samples, so that every bad one is met.
    let out = swav_ok(&tiny_pretrain_args(
        s(&run),
        &["--data", s(&shard), "--epochs", "1", "--batch-size", "19"],
    ));
    let log = stderr(&out);
    assert!(
        log.contains("19 samples (with cls labels); 1 sample without an image member is skipped"),
        "{log}"
    );
    let name = |key: &str| format!("{}:{key}", shard.display());
    assert!(
        log.contains(&format!(
            "training data: 2 files skipped; first: {}",
            name("0003")
        )),
        "{log}"
    );
    assert!(
        log.contains(&name("0007")),
        "the caption-only sample is named: {log}"
    );
    assert_eq!(metrics(&run).len(), 1, "one batch of 19");
}
