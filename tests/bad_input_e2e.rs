//! Every subcommand's bad-input paths: one clear line naming the file or flag, a non-zero
//! exit status, and nothing lost.

mod common;

use common::*;

#[test]
fn pretrain_rejects_bad_data_config_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let e = swav_error(&[
        "pretrain",
        "--output",
        s(&out),
        "--data",
        "/nonexistent/images",
    ]);
    assert!(e.contains("/nonexistent/images"), "{e}");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = swav_error(&["pretrain", "--output", s(&out), "--data", s(&empty)]);
    assert!(e.contains(s(&empty)), "{e}");

    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "epsilon = 0.05\nnmb_prototypez = 10\n").unwrap();
    let e = swav_error(&["pretrain", "--output", s(&out), "--config", s(&config)]);
    assert!(
        e.contains("nmb_prototypez") && e.contains(s(&config)),
        "{e}"
    );
    std::fs::write(&config, "epochs = \"many\"\n").unwrap();
    let e = swav_error(&["pretrain", "--output", s(&out), "--config", s(&config)]);
    assert!(e.contains("epochs"), "{e}");
    let e = swav_error(&[
        "pretrain",
        "--output",
        s(&out),
        "--config",
        "/nonexistent.toml",
    ]);
    assert!(e.contains("/nonexistent.toml"), "{e}");

    let e = swav_error(&tiny_pretrain_args(s(&out), &["--epsilon=-0.05"]));
    assert!(e.contains("epsilon"), "{e}");
    let e = swav_error(&tiny_pretrain_args(
        s(&out),
        &["--crops-for-assign", "0", "7"],
    ));
    assert!(e.contains("crops_for_assign"), "{e}");

    // An output folder that cannot be created (its parent is a file).
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let e = swav_error(&tiny_pretrain_args(s(&file.join("run")), &[]));
    assert!(e.contains("a-file"), "{e}");
    assert!(!out.exists(), "no failed command created the output folder");
}

#[test]
fn resume_rejects_corrupt_truncated_and_foreign_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    swav_ok(&tiny_pretrain_args(s(&run), &["--epochs", "1"]));
    let ckpt = run.join("checkpoint.safetensors");
    let good = std::fs::read(&ckpt).unwrap();

    // Another architecture: refused before anything is written.
    let e = swav_error(&[
        "pretrain",
        "--output",
        s(&run),
        "--resume",
        "--arch",
        "resnet34",
    ]);
    assert!(e.contains("arch") && e.contains("differs"), "{e}");
    assert_eq!(std::fs::read(&ckpt).unwrap(), good);

    // Initial weights of another width: the mismatching tensor is named.
    let other = dir.path().join("other");
    let e = swav_error(&tiny_pretrain_args(
        s(&other),
        &["--base-width", "16", "--init-weights", s(&ckpt)],
    ));
    assert!(e.contains("conv1.weight") || e.contains("shape"), "{e}");

    // Truncated, then bit-flipped: detected, never loaded (without numbered copies to fall
    // back to: tests/checkpoint_fallback_e2e.rs has those).
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    std::fs::write(&ckpt, &good[..good.len() / 2]).unwrap();
    let e = swav_error(&["pretrain", "--output", s(&run), "--resume"]);
    assert!(
        e.contains("corrupt or truncated") && e.contains("checkpoint.safetensors"),
        "{e}"
    );
    let mut flipped = good.clone();
    let at = flipped.len() - 10;
    flipped[at] ^= 1;
    std::fs::write(&ckpt, &flipped).unwrap();
    let e = swav_error(&["pretrain", "--output", s(&run), "--resume"]);
    assert!(e.contains("checksum"), "{e}");
    // Resuming where there is no run at all.
    let e = swav_error(&[
        "pretrain",
        "--output",
        s(&dir.path().join("none")),
        "--resume",
    ]);
    assert!(
        e.contains("--resume") && e.contains("checkpoint.safetensors"),
        "{e}"
    );
}

#[test]
fn eval_extract_assign_export_import_reject_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a weights file").unwrap();
    let missing = dir.path().join("missing.safetensors");
    let out = dir.path().join("out.npy");

    for args in [
        vec!["eval", "knn", "--weights", s(&missing)],
        vec!["eval", "linear", "--weights", s(&garbage)],
        vec![
            "extract",
            "--weights",
            s(&missing),
            "--data",
            s(dir.path()),
            "--output",
            s(&out),
        ],
        vec![
            "assign",
            "--weights",
            s(&garbage),
            "--data",
            s(dir.path()),
            "--output",
            s(&out),
        ],
        vec!["export", "--checkpoint", s(&garbage), "--output", s(&out)],
        vec!["import", "--weights", s(&missing), "--output", s(&out)],
    ] {
        let e = swav_error(&args);
        let named = if args.contains(&s(&missing)) {
            s(&missing)
        } else {
            s(&garbage)
        };
        assert!(e.contains(named), "{args:?}: {e}");
    }

    let run = dir.path().join("run");
    swav_ok(&tiny_pretrain_args(s(&run), &["--epochs", "1"]));
    let ckpt = run.join("checkpoint.safetensors");
    let e = swav_error(&[
        "eval",
        "knn",
        "--weights",
        s(&ckpt),
        "--data",
        "/nonexistent/eval",
    ]);
    assert!(e.contains("/nonexistent/eval"), "{e}");
    let e = swav_error(&[
        "extract",
        "--weights",
        s(&ckpt),
        "--data",
        "/nonexistent/images",
        "--output",
        s(&out),
    ]);
    assert!(e.contains("/nonexistent/images"), "{e}");
    let e = swav_error(&["import", "--weights", s(&ckpt), "--output", s(&out)]);
    assert!(e.contains("already a swav checkpoint"), "{e}");

    let z = dir.path().join("z.npy");
    ndarray_npy::write_npy(&z, &ndarray::array![[1.0f32, 0.0, 0.0]]).unwrap();
    let w = dir.path().join("w.npy");
    ndarray_npy::write_npy(&w, &ndarray::array![[1.0f32, 0.0]]).unwrap();
    let e = swav_error(&[
        "assign",
        "--embeddings",
        s(&z),
        "--prototypes",
        s(&w),
        "--output",
        s(&out),
    ]);
    assert!(e.contains("w.npy") && e.contains("columns"), "{e}");
    let e = swav_error(&[
        "assign",
        "--embeddings",
        s(&missing),
        "--prototypes",
        s(&w),
        "--output",
        s(&out),
    ]);
    assert!(e.contains(s(&missing)), "{e}");
    assert!(!out.exists(), "nothing was written by a failed command");
}

#[test]
fn cuda_without_a_gpu_is_one_clear_line() {
    if std::path::Path::new("/dev/nvidia0").exists() {
        eprintln!("skipped: this machine has a GPU");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let e = swav_error(&tiny_pretrain_args(
        s(&dir.path().join("run")),
        &["--device", "cuda"],
    ));
    assert!(
        e.contains("--device cuda") && e.to_lowercase().contains("cuda"),
        "{e}"
    );
}
