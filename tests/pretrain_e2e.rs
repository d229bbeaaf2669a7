//! `swav pretrain` end to end: outputs, exact resume, and a NaN loss.

mod common;

use common::*;

#[test]
fn a_tiny_run_writes_checkpoints_metrics_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    swav_ok(&tiny_pretrain_args(s(&run), &[]));
    for file in [
        "checkpoint.safetensors",
        "metrics.jsonl",
        "config.toml",
        "trunk.safetensors",
        "checkpoints/ckp-0.safetensors",
        "checkpoints/ckp-1.safetensors",
    ] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    let records = metrics(&run);
    assert_eq!(
        records.len(),
        8,
        "2 epochs × 4 iterations, logged every iteration"
    );
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["iteration"], i as u64);
        assert!(r["loss"].as_f64().unwrap().is_finite());
        assert!(r["prototypes_in_use"].as_u64().unwrap() >= 1);
    }
    // The warm-up starts at 0 and reaches base_lr at the end of epoch 0.
    assert_eq!(records[0]["lr"], 0.0);
    assert_eq!(records[3]["lr"], 0.3);
    // The exported trunk has torchvision's names and no head.
    let trunk = tensors(&run.join("trunk.safetensors"));
    assert!(trunk.contains_key("layer4.1.bn2.running_var"));
    assert!(
        !trunk
            .keys()
            .any(|k| k.starts_with("projection_head") || k.starts_with("prototypes"))
    );
    // --print-config shows the resolved settings.
    let out = swav_ok(&tiny_pretrain_args(s(&run), &["--print-config"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("nmb_prototypes = 10") && text.contains("epsilon = 0.05"),
        "{text}"
    );
}

/// Model tensors and optimiser state, without the metadata (which holds timings).
fn state(path: &std::path::Path) -> std::collections::BTreeMap<String, (Vec<usize>, Vec<u8>)> {
    tensors(path)
}

#[test]
fn a_stopped_and_resumed_run_matches_the_uninterrupted_one_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    // A queue of 16 rows per crop from epoch 1 exercises its checkpointing too.
    let extra = [
        "--epochs",
        "3",
        "--queue-length",
        "16",
        "--epoch-queue-starts",
        "1",
    ];
    // Stop mid-epoch (after 6 iterations: epoch 1, iteration 2, queue half full), then
    // after 3 more (epoch 2, iteration 1), then finish.
    let (whole, parts) = whole_and_resumed_twice(dir.path(), &extra, "6", "3");

    let (a, b) = (metrics(&whole), metrics(&parts));
    assert_eq!(a.len(), b.len(), "same number of logged iterations");
    for (x, y) in a.iter().zip(&b) {
        for key in [
            "iteration",
            "loss",
            "lr",
            "codes_entropy",
            "prototypes_in_use",
            "queue_in_use",
        ] {
            assert_eq!(x[key], y[key], "iteration {}: {key}", x["iteration"]);
        }
    }
    assert!(
        a.iter().any(|r| r["queue_in_use"] == true),
        "the queue was used"
    );
    assert_eq!(
        state(&whole.join("checkpoint.safetensors")),
        state(&parts.join("checkpoint.safetensors"))
    );
}

#[test]
fn a_nan_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    swav_ok(&tiny_pretrain_args(s(&run), &["--epochs", "1"]));
    let checkpoint = run.join("checkpoint.safetensors");
    let before = std::fs::read(&checkpoint).unwrap();
    let error = swav_error(&[
        "pretrain",
        "--output",
        s(&run),
        "--resume",
        "--epochs",
        "3",
        "--base-lr",
        "1e38",
        "--final-lr",
        "1e38",
    ]);
    // The blow-up reaches the scores before the loss: Sinkhorn refuses them with their place.
    assert!(
        (error.contains("loss became") || error.contains("scores became NaN or infinite"))
            && error.contains("no update was applied"),
        "{error}"
    );
    assert!(error.contains("checkpoint.safetensors"), "{error}");
    assert_eq!(
        std::fs::read(&checkpoint).unwrap(),
        before,
        "the last good checkpoint is untouched"
    );
}

#[test]
fn an_existing_run_is_not_overwritten_without_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    swav_ok(&tiny_pretrain_args(s(&run), &["--epochs", "1"]));
    let error = swav_error(&tiny_pretrain_args(s(&run), &["--epochs", "1"]));
    assert!(
        error.contains("already holds a run") && error.contains("--resume"),
        "{error}"
    );
}

/// The official `scripts/swav_400ep_bs256_pretrain.sh` after `python -u main_swav.py`, word
/// for word, with its DATASET_PATH, dist_url and EXPERIMENT_PATH filled in.
#[rustfmt::skip]
const OFFICIAL_400EP_BS256: &[&str] = &[
    "--data_path", "/path/to/imagenet",
    "--nmb_crops", "2", "6",
    "--size_crops", "224", "96",
    "--min_scale_crops", "0.14", "0.05",
    "--max_scale_crops", "1.", "0.14",
    "--crops_for_assign", "0", "1",
    "--temperature", "0.1",
    "--epsilon", "0.05",
    "--sinkhorn_iterations", "3",
    "--feat_dim", "128",
    "--nmb_prototypes", "3000",
    "--queue_length", "3840",
    "--epoch_queue_starts", "15",
    "--epochs", "400",
    "--batch_size", "64",
    "--base_lr", "0.6",
    "--final_lr", "0.0006",
    "--freeze_prototypes_niters", "5005",
    "--wd", "0.000001",
    "--warmup_epochs", "0",
    "--dist_url", "tcp://learnfair0001:40000",
    "--arch", "resnet50",
    "--use_fp16", "true",
    "--sync_bn", "pytorch",
    "--dump_path", "./experiments/swav_400ep_bs256_pretrain",
];

#[test]
fn the_official_scripts_command_line_runs_as_it_is() {
    let mut args = vec!["pretrain"];
    args.extend_from_slice(OFFICIAL_400EP_BS256);
    args.push("--print-config");
    let out = swav_ok(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "data = \"/path/to/imagenet\"",
        "nmb_crops = [2, 6]",
        "max_scale_crops = [1.0, 0.14]",
        "queue_length = 3840",
        "epochs = 400",
        "base_lr = 0.6",
        "warmup_epochs = 0",
        "wd = 0.000001",
        "arch = \"resnet50\"",
        "hidden_mlp = 2048",
        "sync_bn = \"global\"",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    // The same line trains: on the built-in images instead of ImageNet, for one iteration
    // of two images, into a temporary folder (later flags win over earlier ones).
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("official");
    let mut args = vec!["pretrain", "--preset", "defaults"];
    args.extend_from_slice(&OFFICIAL_400EP_BS256[2..]);
    args.extend([
        "--dump_path",
        s(&run),
        "--batch_size",
        "2",
        "--max-iterations",
        "1",
        "--workers",
        "1",
        "--synthetic-classes",
        "2",
        "--synthetic-images-per-class",
        "1",
        "--eval-knn",
        "false",
    ]);
    let text = stderr(&swav_ok(&args));
    assert!(
        text.contains("--use_fp16 true: the CPU backend trains in f32 throughout"),
        "{text}"
    );
    assert_eq!(metrics(&run).len(), 1);
    // The apex spelling of group-wise sync BN, and a --dist_url of another form.
    let config = swav_ok(&tiny_pretrain_args(
        s(&dir.path().join("apex")),
        &[
            "--sync_bn",
            "apex",
            "--dist_url",
            "env://",
            "--print-config",
        ],
    ));
    assert!(String::from_utf8_lossy(&config.stdout).contains("sync_bn = \"groups\""));
    let err = swav_error(&tiny_pretrain_args(
        s(&dir.path().join("bad")),
        &["--dist_url", "file:///shared/init"],
    ));
    assert!(err.contains("--dist_url \"file:///shared/init\""), "{err}");
}
