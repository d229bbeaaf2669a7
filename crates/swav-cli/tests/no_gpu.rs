//! `swav bench --device cuda` on a machine without a GPU: one clear error line and a
//! non-zero exit status, never a panic. (`swav pretrain --device cuda` is covered by the
//! workspace's end-to-end tests.)

use std::process::Command;

#[test]
fn cuda_bench_without_a_gpu_is_one_clear_line() {
    if swav_cuda::LibraryStatus::probe().driver {
        eprintln!("skipped: this machine has a CUDA driver");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_swav"))
        .args(["bench", "--device", "cuda", "--steps", "1"])
        .output()
        .expect("swav runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it should fail; stderr:\n{stderr}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "an error exit, not a panic; stderr:\n{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line; stderr:\n{stderr}");
    assert!(
        lines[0].starts_with("error: --device cuda: no CUDA driver"),
        "{}",
        lines[0]
    );
    assert!(out.stdout.is_empty(), "no JSON line without a measurement");
}
