//! Two CPU ranks under Open MPI's `mpirun` (SyncBN, distributed Sinkhorn, averaged
//! gradients) train the same parameters as one rank holding the combined batch; and when one
//! rank freezes inside the job, the other stops on its stall watchdog instead of hanging.
//!
//! Skipped with a message when `mpirun` is missing; `SWAV_REQUIRE_MPI=1` (set by CI) turns
//! the skip into a failure.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn mpirun_available() -> bool {
    Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the test can run (false: skipped with a message, unless CI requires MPI).
fn mpi_or_skip() -> bool {
    if mpirun_available() {
        return true;
    }
    assert!(
        std::env::var("SWAV_REQUIRE_MPI").as_deref() != Ok("1"),
        "SWAV_REQUIRE_MPI=1 but mpirun is missing"
    );
    eprintln!("skipped: mpirun (Open MPI) is not installed");
    false
}

/// The pids of the `swav` processes whose command line names `marker`, with their MPI rank.
fn ranks_running(marker: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if !cmdline.contains(marker) || !cmdline.contains("pretrain") || cmdline.contains("mpirun")
        {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let rank = environ
            .split(|&b| b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .find_map(|kv| kv.strip_prefix("OMPI_COMM_WORLD_RANK="))
            .map(str::to_string);
        if let Some(rank) = rank {
            found.push((pid, rank));
        }
    }
    found
}

#[test]
fn a_frozen_rank_makes_the_other_stop_with_a_clear_error() {
    if !mpi_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("frozen-peer");
    let swav = swav_binary();
    let mut args = vec![
        "--allow-run-as-root",
        "--oversubscribe",
        "-np",
        "2",
        s(&swav),
    ];
    args.extend(tiny_pretrain_args(
        s(&run),
        &[
            "--epochs",
            "1000",
            "--batch-size",
            "4",
            // Long enough for a first step on a loaded 2-core machine (the watchdog counts
            // from the start, so a tighter one can end the job before training runs).
            "--collective-timeout",
            "10",
        ],
    ));
    let mut job = Command::new("mpirun")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training runs (rank 0 has logged a step), then freeze rank 1.
    let started = Instant::now();
    while !run.join("metrics.jsonl").exists() || metrics_lines(&run) == 0 {
        if let Some(status) = job.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut job.stderr.take().unwrap(), &mut stderr).unwrap();
            panic!("the job ended ({status}) before its first step:\n{stderr}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "training never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ranks = ranks_running(s(&run));
    let (frozen, _) = ranks
        .iter()
        .find(|(_, rank)| rank == "1")
        .unwrap_or_else(|| panic!("rank 1 not found among {ranks:?}"));
    let stopped = Command::new("kill")
        .args(["-STOP", &frozen.to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let frozen_at = Instant::now();
    let status = loop {
        if let Some(status) = job.try_wait().unwrap() {
            break status;
        }
        if frozen_at.elapsed() > Duration::from_secs(90) {
            let _ = Command::new("kill")
                .args(["-KILL", &frozen.to_string()])
                .status();
            job.kill().unwrap();
            panic!("the job still hangs 90 s after rank 1 froze");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-KILL", &frozen.to_string()])
        .status();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut job.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "the job reported success:\n{stderr}");
    assert!(
        stderr.contains("rank 0 of 2 made no progress")
            && stderr.contains("--collective-timeout 10"),
        "no stall error from rank 0:\n{stderr}"
    );
}

/// How many steps the metrics log holds so far.
fn metrics_lines(run: &std::path::Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

#[test]
fn two_mpi_ranks_match_one_rank_with_the_combined_batch() {
    if !mpi_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single");
    // 32 images: 4 iterations of 8 on one rank, or of 4 on each of two ranks.
    swav_ok(&tiny_pretrain_args(
        s(&single),
        &["--epochs", "1", "--batch-size", "8"],
    ));

    // Gradient buckets summed on the communication thread during backward, and after it.
    for overlap in ["SWAV_OVERLAP_GRADIENTS=1", "SWAV_OVERLAP_GRADIENTS=0"] {
        let pair = dir.path().join(overlap);
        let mut args = vec![
            "--allow-run-as-root",
            "--oversubscribe",
            "-np",
            "2",
            "-x",
            overlap,
        ];
        let swav = swav_binary();
        args.push(s(&swav));
        args.extend(tiny_pretrain_args(
            s(&pair),
            &["--epochs", "1", "--batch-size", "4"],
        ));
        let out = Command::new("mpirun").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "mpirun failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        let a = tensors(&single.join("checkpoint.safetensors"));
        let b = tensors(&pair.join("checkpoint.safetensors"));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, (shape, bytes)) in &a {
            let (other_shape, other) = &b[name];
            assert_eq!(shape, other_shape, "{name}");
            if name.ends_with("num_batches_tracked") {
                assert_eq!(bytes, other, "{name}");
                continue;
            }
            // projection_head.0 is followed by batch norm, so its bias has a zero gradient up to
            // rounding; LARC rescales that noise to a full step, so its momentum (and, slightly,
            // its value) depend on the summation order. Nothing downstream sees it.
            let noise_driven = name.contains("projection_head.0.bias");
            let momentum = name.starts_with("optimizer.");
            let tolerance = match (noise_driven, momentum) {
                (true, true) => continue,
                (true, false) => 1e-2,
                (false, true) => 1e-2,
                (false, false) => 1e-3,
            };
            let x = floats(bytes);
            let y = floats(other);
            let scale = x.iter().map(|v| v.abs() as f64).fold(1e-6, f64::max);
            let diff = x
                .iter()
                .zip(&y)
                .map(|(p, q)| (p - q).abs() as f64)
                .fold(0.0, f64::max)
                / scale;
            assert!(
                diff < tolerance,
                "{overlap}: {name}: relative difference {diff:.2e}"
            );
        }
        // Both runs log the loss of the same global batch at every iteration.
        let (la, lb) = (metrics(&single), metrics(&pair));
        assert_eq!(la.len(), lb.len());
        for (x, y) in la.iter().zip(&lb) {
            let (p, q) = (x["loss"].as_f64().unwrap(), y["loss"].as_f64().unwrap());
            assert!(
                (p - q).abs() < 1e-4 * p.abs(),
                "iteration {}: loss {p} vs {q}",
                x["iteration"]
            );
        }
    }
}

/// `mpirun -np 2` with `mpi_options` of the tiny run writing to `run`, plus `extra` flags.
fn mpirun_tiny_pair(run: &std::path::Path, mpi_options: &[&str], extra: &[&str]) {
    let swav = swav_binary();
    let mut args = vec!["--allow-run-as-root", "--oversubscribe", "-np", "2"];
    args.extend_from_slice(mpi_options);
    args.push(s(&swav));
    let mut flags = vec!["--epochs", "1", "--batch-size", "4"];
    flags.extend_from_slice(extra);
    args.extend(tiny_pretrain_args(s(run), &flags));
    let out = Command::new("mpirun").args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "mpirun {mpi_options:?} {extra:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `allreduce` rows of a gradient timeline: (ready, start, end) in milliseconds.
fn timeline_buckets(path: &std::path::Path) -> Vec<(f64, f64, f64)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.contains("\nbackward,"), "{text}");
    text.lines()
        .filter(|l| l.starts_with("allreduce,"))
        .map(|l| {
            let f: Vec<f64> = l.split(',').skip(3).map(|v| v.parse().unwrap()).collect();
            (f[0], f[1], f[2])
        })
        .collect()
}

#[test]
fn gradient_buckets_train_the_same_bits_overlapped_blocking_and_per_tensor() {
    if !mpi_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (overlapped, blocking, per_tensor) = (
        dir.path().join("overlapped"),
        dir.path().join("blocking"),
        dir.path().join("per-tensor"),
    );
    let timeline = |name: &str| format!("SWAV_GRADIENT_TIMELINE={}", s(&dir.path().join(name)));
    mpirun_tiny_pair(&overlapped, &["-x", &timeline("buckets")], &[]);
    mpirun_tiny_pair(&blocking, &["-x", "SWAV_OVERLAP_GRADIENTS=0"], &[]);
    mpirun_tiny_pair(
        &per_tensor,
        &["-x", &timeline("tensors")],
        &["--bucket-cap-mb", "0"],
    );

    let reference = tensors(&overlapped.join("checkpoint.safetensors"));
    for run in [&blocking, &per_tensor] {
        let other = tensors(&run.join("checkpoint.safetensors"));
        assert_eq!(
            reference.keys().collect::<Vec<_>>(),
            other.keys().collect::<Vec<_>>()
        );
        for (name, value) in &reference {
            assert_eq!(value, &other[name], "{}: {name} differs", run.display());
        }
    }
    // The tiny model's gradients fit one 25 MiB bucket; cap 0 sends one per tensor.
    let parameters = reference
        .keys()
        .filter(|k| !k.starts_with("optimizer.") && !k.contains("running_"))
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .count();
    for rank in 0..2 {
        let buckets = timeline_buckets(&dir.path().join(format!("buckets.rank{rank}.csv")));
        assert_eq!(buckets.len(), 1, "rank {rank}: {buckets:?}");
        for (ready, start, end) in &buckets {
            assert!(ready <= start && start <= end, "rank {rank}: {buckets:?}");
        }
        let tensors = timeline_buckets(&dir.path().join(format!("tensors.rank{rank}.csv")));
        assert_eq!(tensors.len(), parameters, "rank {rank}");
    }
}

#[test]
fn a_bad_overlap_setting_is_refused_in_one_line() {
    if !mpi_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let swav = swav_binary();
    let run = dir.path().join("run");
    let mut args = vec![
        "--allow-run-as-root",
        "--oversubscribe",
        "-np",
        "2",
        "-x",
        "SWAV_OVERLAP_GRADIENTS=yes",
        s(&swav),
    ];
    args.extend(tiny_pretrain_args(s(&run), &["--batch-size", "4"]));
    let out = Command::new("mpirun").args(&args).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SWAV_OVERLAP_GRADIENTS must be 0 or 1, not \"yes\""),
        "{stderr}"
    );
}
