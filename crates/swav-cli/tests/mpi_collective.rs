//! Two processes under Open MPI's `mpirun` all-reduce and broadcast through `MpiCollective`.
//!
//! The test re-launches its own executable under `mpirun -np 2`; each copy runs the worker
//! below (selected by an environment variable) and writes what it saw. Without `mpirun` the
//! test is skipped with a message; `SWAV_REQUIRE_MPI=1` turns the skip into a failure.

use std::path::Path;
use std::process::Command;

use swav_cli::distributed::mpi::MpiCollective;
use swav_core::Collective;

const WORKER_ENV: &str = "SWAV_MPI_TEST_OUT";

fn mpirun_available() -> bool {
    Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn two_ranks_sum_and_max_through_mpi() {
    if !mpirun_available() {
        assert!(
            std::env::var("SWAV_REQUIRE_MPI").as_deref() != Ok("1"),
            "SWAV_REQUIRE_MPI=1 but mpirun is not available"
        );
        eprintln!("skipped: mpirun (Open MPI) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(&exe)
        .args(["--exact", "mpi_worker", "--nocapture", "--test-threads=1"])
        .env(WORKER_ENV, dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mpirun failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for rank in 0..2 {
        let seen = std::fs::read_to_string(dir.path().join(format!("rank{rank}"))).unwrap();
        assert_eq!(
            seen.trim(),
            "sum 3 30 max 2 20 f64 3 group 1 of 1 own bcast rank 0's id",
            "rank {rank}"
        );
    }
}

/// The body each MPI process runs (a no-op in a normal test run).
#[test]
fn mpi_worker() {
    let Ok(out) = std::env::var(WORKER_ENV) else {
        return;
    };
    let comm = MpiCollective::init().expect("MPI initialises under mpirun");
    let rank = Collective::<[f32]>::rank(&comm);
    assert_eq!(Collective::<[f32]>::world_size(&comm), 2);
    let mine = (rank + 1) as f32;
    let mut sum = vec![mine, 10.0 * mine];
    comm.all_reduce_sum(&mut sum).unwrap();
    let mut max = vec![mine, 10.0 * mine];
    comm.all_reduce_max(&mut max).unwrap();
    let mut wide = vec![mine as f64];
    comm.all_reduce_sum(&mut wide).unwrap();
    let group = comm.split_groups(1).unwrap();
    let mut own = vec![mine];
    group.all_reduce_sum(&mut own).unwrap();
    let mine_to_send: &[u8] = if rank == 0 {
        b"rank 0's id"
    } else {
        b"ignored"
    };
    let broadcast = comm.broadcast_bytes(mine_to_send).unwrap();
    let line = format!(
        "sum {} {} max {} {} f64 {} group {} of {} {} bcast {}",
        sum[0],
        sum[1],
        max[0],
        max[1],
        wide[0],
        Collective::<[f32]>::world_size(&group),
        Collective::<[f32]>::world_size(&group),
        if own[0] == mine { "own" } else { "mixed" },
        String::from_utf8_lossy(&broadcast),
    );
    std::fs::write(Path::new(&out).join(format!("rank{rank}")), line).unwrap();
}
