//! Helpers for the end-to-end tests: the `swav` binary, a tiny run configuration, and
//! readers for what a run writes.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `swav` binary built alongside these tests (cargo builds it for swav-cli's own
/// integration tests, into the same profile folder).
pub fn swav_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/..");
    let bin = dir.join(format!("swav{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: build it with `cargo build -p swav-cli` (same profile as the tests)",
        bin.display()
    );
    bin
}

/// Runs `swav` with `args`.
pub fn swav(args: &[&str]) -> Output {
    Command::new(swav_binary())
        .args(args)
        .env_remove("RANK")
        .env_remove("WORLD_SIZE")
        .env_remove("OMPI_COMM_WORLD_RANK")
        .env_remove("OMPI_COMM_WORLD_SIZE")
        .env_remove("SLURM_PROCID")
        .env_remove("SLURM_NTASKS")
        .output()
        .expect("swav runs")
}

/// What a finished `swav` wrote on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Runs `swav` and fails the test with its output unless it succeeds.
pub fn swav_ok(args: &[&str]) -> Output {
    let out = swav(args);
    assert!(
        out.status.success(),
        "swav {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `swav`, expects it to fail with one `error:` line, the last on stderr (progress
/// lines may come before it), and returns that line.
pub fn swav_error(args: &[&str]) -> String {
    let out = swav(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "swav {args:?} should fail; stderr:\n{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(
        errors.len(),
        1,
        "swav {args:?}: expected one error line, got:\n{stderr}"
    );
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert_eq!(
        last, errors[0],
        "swav {args:?}: the error is not the last line:\n{stderr}"
    );
    last.to_string()
}

/// Flags of a run that takes a second or two on two CPU cores: a narrow ResNet-18 on a tiny
/// synthetic dataset, 2×16 + 2×8 crops, batch 8, 4 iterations per epoch.
pub const TINY: &[&str] = &[
    "--synthetic-classes",
    "4",
    "--synthetic-images-per-class",
    "8",
    "--synthetic-image-size",
    "16",
    "--nmb-crops",
    "2",
    "2",
    "--size-crops",
    "16",
    "8",
    "--min-scale-crops",
    "0.3",
    "0.1",
    "--max-scale-crops",
    "1",
    "0.3",
    "--arch",
    "resnet18",
    "--base-width",
    "8",
    "--small-stem",
    "true",
    "--hidden-mlp",
    "32",
    "--feat-dim",
    "16",
    "--nmb-prototypes",
    "10",
    "--batch-size",
    "8",
    "--epochs",
    "2",
    "--warmup-epochs",
    "1",
    "--base-lr",
    "0.3",
    "--freeze-prototypes-niters",
    "2",
    "--workers",
    "2",
    "--log-every",
    "1",
    "--eval-knn",
    "false",
];

/// `swav pretrain --output DIR` with the tiny flags plus `extra`.
pub fn tiny_pretrain_args<'a>(output: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["pretrain", "--output", output];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    args
}

/// The tiny run with `extra`, once uninterrupted into `dir/whole`, and once into
/// `dir/parts` stopped after `first` iterations, resumed for `second` more, then resumed to
/// the end; returns (whole, parts), for tests that compare the two.
pub fn whole_and_resumed_twice(
    dir: &Path,
    extra: &[&str],
    first: &str,
    second: &str,
) -> (PathBuf, PathBuf) {
    let whole = dir.join("whole");
    swav_ok(&tiny_pretrain_args(s(&whole), extra));
    let parts = dir.join("parts");
    let mut args = tiny_pretrain_args(s(&parts), extra);
    args.extend(["--max-iterations", first]);
    swav_ok(&args);
    swav_ok(&[
        "pretrain",
        "--output",
        s(&parts),
        "--resume",
        "--max-iterations",
        second,
    ]);
    swav_ok(&["pretrain", "--output", s(&parts), "--resume"]);
    (whole, parts)
}

/// The metrics log's records, one JSON object per line.
pub fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Every tensor of a safetensors file as raw bytes with its shape.
pub fn tensors(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    file.tensors()
        .into_iter()
        .map(|(name, view)| (name, (view.shape().to_vec(), view.data().to_vec())))
        .collect()
}

/// A path as a `&str` (tests use UTF-8 temporary paths).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}
