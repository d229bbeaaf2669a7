//! Two CPU ranks under Open MPI's `mpirun` (SyncBN, distributed Sinkhorn, averaged
//! gradients) train the same parameters as one rank holding the combined batch; and when one
//! rank freezes inside the job, the other stops on its stall watchdog instead of hanging;
//! runs stopped and resumed (also on WebDataset shards) match the uninterrupted ones.
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
    let (status, stderr) = wait_for_end(&mut job, *frozen, "rank 1 froze");
    assert!(!status.success(), "the job reported success:\n{stderr}");
    assert!(
        stderr.contains("rank 0 of 2 made no progress")
            && stderr.contains("--collective-timeout 10"),
        "no stall error from rank 0:\n{stderr}"
    );
}

/// Waits up to 90 s for `job` to end, then kills `stuck` (a stopped or dead rank) and
/// returns the job's status and stderr; fails the test naming `what` when the job still runs.
fn wait_for_end(
    job: &mut std::process::Child,
    stuck: u32,
    what: &str,
) -> (std::process::ExitStatus, String) {
    let since = Instant::now();
    let kill_stuck = || {
        let _ = Command::new("kill")
            .args(["-KILL", &stuck.to_string()])
            .status();
    };
    let status = loop {
        if let Some(status) = job.try_wait().unwrap() {
            break status;
        }
        if since.elapsed() > Duration::from_secs(90) {
            kill_stuck();
            job.kill().unwrap();
            panic!("the job still runs 90 s after {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    kill_stuck();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut job.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
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

/// Borrowed arguments.
fn as_str(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `mpirun -np 2 swav ARGS...`.
fn mpirun_swav(args: &[&str]) -> Command {
    let swav = swav_binary();
    let mut cmd = Command::new("mpirun");
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(&swav)
        .args(args);
    cmd
}

/// Runs `mpirun -np 2 swav ARGS...` to success and returns its stderr.
fn mpirun_ok(args: &[&str]) -> String {
    let out = mpirun_swav(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "mpirun swav {args:?} failed:\n{stderr}"
    );
    stderr
}

/// A queue of 8 rows per rank (16 in all) from epoch 1, batch 4 per rank: 4 iterations an
/// epoch.
const QUEUE_ON: [&str; 6] = [
    "--batch-size",
    "4",
    "--queue-length",
    "16",
    "--epoch-queue-starts",
    "1",
];

#[test]
fn two_ranks_stopped_and_resumed_with_the_queue_match_the_uninterrupted_run_bit_for_bit() {
    if !mpi_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut extra = vec!["--epochs", "3"];
    extra.extend(QUEUE_ON);
    let whole = dir.path().join("whole");
    mpirun_ok(&tiny_pretrain_args(s(&whole), &extra));

    // Stop at epoch 1, iteration 2 (the queues half full, and each rank's different), then
    // continue with the command a requeued job would run.
    let parts = dir.path().join("parts");
    let mut first = tiny_pretrain_args(s(&parts), &extra);
    first.extend(["--max-iterations", "6"]);
    mpirun_ok(&first);
    let mut again = tiny_pretrain_args(s(&parts), &extra);
    again.extend(["--resume", "auto"]);
    let stderr = mpirun_ok(&again);
    assert!(
        stderr.contains("[rank 0] resuming from") && stderr.contains("queue 8/8 rows filled"),
        "{stderr}"
    );

    let (a, b) = (
        tensors(&whole.join("checkpoint.safetensors")),
        tensors(&parts.join("checkpoint.safetensors")),
    );
    assert_eq!(a["queue"].0, vec![2, 2, 8, 16], "one queue per rank");
    let (half, queue) = (a["queue"].1.len() / 2, &a["queue"].1);
    assert_ne!(queue[..half], queue[half..], "the ranks' queues differ");
    assert_eq!(a, b, "resumed state differs from the uninterrupted run's");
    let (la, lb) = (metrics(&whole), metrics(&parts));
    assert_eq!(la.len(), lb.len());
    for (x, y) in la.iter().zip(&lb) {
        assert_eq!(x["loss"], y["loss"], "iteration {}", x["iteration"]);
    }

    // Another world size is refused in one line naming both.
    let error = swav_error(&["pretrain", "--output", s(&parts), "--resume"]);
    assert!(
        error.contains("written by a run on 2 rank(s) but this run has 1"),
        "{error}"
    );
}

#[test]
fn sigterm_to_every_rank_stops_them_together_and_resume_auto_finishes_bit_identical() {
    if !mpi_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // One command line for every attempt, as a requeued job reruns it: --preset and
    // --resume auto included. 60 epochs of 4 iterations leave time to signal mid-run.
    let command = |run: &std::path::Path| -> Vec<String> {
        let mut extra = vec!["--preset", "demo", "--epochs", "60", "--resume", "auto"];
        extra.extend(QUEUE_ON);
        tiny_pretrain_args(s(run), &extra)
            .into_iter()
            .map(str::to_string)
            .collect()
    };

    let whole = dir.path().join("whole");
    let stderr = mpirun_ok(&as_str(&command(&whole)));
    assert!(stderr.contains("--resume auto: no checkpoint"), "{stderr}");

    let run = dir.path().join("preempted");
    let mut job = mpirun_swav(&as_str(&command(&run)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while metrics_lines(&run) < 6 {
        assert!(job.try_wait().unwrap().is_none(), "the job ended early");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never trained"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let ranks = ranks_running(s(&run));
    assert_eq!(ranks.len(), 2, "{ranks:?}");
    for (pid, _) in &ranks {
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
    }
    let status = job.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut job.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    let stops: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("stopped on SIGTERM after"))
        .collect();
    assert_eq!(stops.len(), 2, "both ranks report the stop:\n{stderr}");
    let at = |line: &str| {
        line.split("after ")
            .nth(1)
            .unwrap()
            .split(" of")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(at(stops[0]), at(stops[1]), "same iteration:\n{stderr}");
    let done: u64 = at(stops[0]).parse().unwrap();
    assert!(done < 240, "stopped mid-run: {done}");
    assert!(!run.join("trunk.safetensors").exists());
    for rank in 0..2 {
        let log = std::fs::read_to_string(run.join(format!("train.log-{rank}"))).unwrap();
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("[rank {rank}] stopped on SIGTERM"))
                    && l.starts_with("20")),
            "rank {rank}'s log has the timestamped stop:\n{log}"
        );
    }

    let stderr = mpirun_ok(&as_str(&command(&run)));
    assert!(stderr.contains("[rank 0] resuming from"), "{stderr}");
    assert_eq!(
        std::fs::read(whole.join("trunk.safetensors")).unwrap(),
        std::fs::read(run.join("trunk.safetensors")).unwrap(),
        "the preempted and resumed run's trunk differs from the uninterrupted one's"
    );
    // A requeue after the end does nothing.
    let stderr = mpirun_ok(&as_str(&command(&run)));
    assert!(stderr.contains("had already finished"), "{stderr}");
}

#[test]
fn a_rank_frozen_at_start_up_makes_the_other_stop_within_the_startup_timeout() {
    if !mpi_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("frozen-at-start");
    let mut job = mpirun_swav(&tiny_pretrain_args(
        s(&run),
        &["--startup-timeout", "5", "--collective-timeout", "600"],
    ))
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Freeze rank 1 as soon as it exists, before it can meet rank 0.
    let started = Instant::now();
    let frozen = loop {
        if let Some((pid, _)) = ranks_running(s(&run)).into_iter().find(|(_, r)| r == "1") {
            Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status()
                .unwrap();
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "rank 1 never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    let (status, stderr) = wait_for_end(&mut job, frozen, "rank 1 froze at start-up");
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("rank 0 of 2 still waits for") && stderr.contains("--startup-timeout 5"),
        "no start-up timeout from rank 0:\n{stderr}"
    );
}

#[test]
fn a_rank_killed_mid_step_ends_the_job() {
    if !mpi_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("killed-peer");
    let mut job = mpirun_swav(&tiny_pretrain_args(
        s(&run),
        &[
            "--epochs",
            "1000",
            "--batch-size",
            "4",
            "--collective-timeout",
            "10",
        ],
    ))
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let started = Instant::now();
    while metrics_lines(&run) == 0 {
        assert!(job.try_wait().unwrap().is_none(), "the job ended early");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never trained"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ranks = ranks_running(s(&run));
    let (victim, _) = ranks.iter().find(|(_, r)| r == "1").expect("rank 1");
    Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    let (status, stderr) = wait_for_end(&mut job, *victim, "rank 1 was killed");
    assert!(!status.success(), "{stderr}");
    assert!(
        run.join("checkpoint.safetensors").exists() || metrics_lines(&run) < 4,
        "an epoch ended, so its checkpoint must be there"
    );
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
    mpirun_tiny_pair(
        &overlapped,
        &["-x", "SWAV_OVERLAP_GRADIENTS=1", "-x", &timeline("buckets")],
        &[],
    );
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

#[test]
fn the_recipe_probes_refuse_more_than_one_rank_in_one_line() {
    if !mpi_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = mpirun_swav(&tiny_pretrain_args(
        s(&run),
        &["--batch-size", "4", "--recipe-probe-iterations", "2"],
    ))
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("run on one process, not 2") && stderr.contains("--recipe"),
        "{stderr}"
    );
    assert!(!run.join("probes").exists(), "nothing was probed");
}

#[test]
fn two_ranks_on_shards_stopped_and_resumed_match_the_uninterrupted_run_bit_for_bit() {
    use swav::swav_augment::dataset::{SyntheticConfig, SyntheticDataset, SyntheticSplit};
    use swav::swav_augment::shards::write_shards;
    if !mpi_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 40 images in 8 shards of 5: each rank streams 4 shards (20 samples), batch 4.
    let config = SyntheticConfig {
        image_size: 16,
        num_classes: 4,
        images_per_class: 10,
        ..SyntheticConfig::default()
    };
    let data = SyntheticDataset::new(config, SyntheticSplit::Train).unwrap();
    write_shards(&data, &dir.path().join("shards/s"), 5, Some(1), |_| {}).unwrap();
    let spec = format!("{}/shards/s-{{000000..000007}}.tar", dir.path().display());
    let extra = [
        "--data",
        spec.as_str(),
        "--batch-size",
        "4",
        "--shuffle-buffer",
        "6",
    ];
    let whole = dir.path().join("whole");
    let stderr = mpirun_ok(&tiny_pretrain_args(s(&whole), &extra));
    assert!(
        stderr.contains("each of 2 ranks streams its own shards (20 samples each)")
            && stderr.contains("5 iterations per epoch"),
        "{stderr}"
    );

    let parts = dir.path().join("parts");
    let mut first = tiny_pretrain_args(s(&parts), &extra);
    first.extend(["--max-iterations", "7"]);
    mpirun_ok(&first);
    let mut again = tiny_pretrain_args(s(&parts), &extra);
    again.extend(["--resume", "auto"]);
    mpirun_ok(&again);

    assert_eq!(
        tensors(&whole.join("checkpoint.safetensors")),
        tensors(&parts.join("checkpoint.safetensors")),
        "the resumed sharded run differs from the uninterrupted one"
    );
    let (la, lb) = (metrics(&whole), metrics(&parts));
    assert_eq!(la.len(), 10);
    assert_eq!(la.len(), lb.len());
    for (x, y) in la.iter().zip(&lb) {
        assert_eq!(x["loss"], y["loss"], "iteration {}", x["iteration"]);
    }
}
