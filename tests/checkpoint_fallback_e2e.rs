//! A damaged latest checkpoint does not end a run: `--resume` (and `--resume auto`) falls back
//! to the newest intact numbered copy under `checkpoints/`, says which and what was lost, and
//! the run then finishes exactly as if nothing had happened; with no intact file, one line
//! names every file tried.

mod common;

use std::path::Path;

use common::*;

/// Tiny runs of 3 epochs (4 iterations each) with a numbered copy after every epoch.
const EXTRA: [&str; 4] = ["--epochs", "3", "--checkpoint-freq", "1"];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn every_kind_of_damage_falls_back_to_the_newest_intact_copy_and_finishes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    swav_ok(&tiny_pretrain_args(s(&whole), &EXTRA));

    // Stopped at global iteration 10 (epoch 2, iteration 2): the latest checkpoint is there,
    // the newest numbered copy (ckp-1) at the end of epoch 1 (global iteration 8).
    let stopped = dir.path().join("stopped");
    let mut first = tiny_pretrain_args(s(&stopped), &EXTRA);
    first.extend(["--max-iterations", "10"]);
    swav_ok(&first);
    let good = std::fs::read(stopped.join("checkpoint.safetensors")).unwrap();

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    // A valid safetensors file that is not a checkpoint (no position, no configuration).
    let foreign = std::fs::read(whole.join("trunk.safetensors")).unwrap();
    let damages: [(&str, Vec<u8>); 4] = [
        ("cut", good[..good.len() * 2 / 3].to_vec()),
        ("flipped", flipped),
        ("empty", Vec::new()),
        ("foreign", foreign),
    ];
    for (name, bytes) in damages {
        let run = dir.path().join(name);
        copy_dir(&stopped, &run);
        std::fs::write(run.join("checkpoint.safetensors"), bytes).unwrap();
        let mut again = tiny_pretrain_args(s(&run), &EXTRA);
        again.extend(["--resume", "auto"]);
        let out = swav(&again);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        let notice = stderr
            .lines()
            .find(|l| l.contains("resuming from the newest intact copy"))
            .unwrap_or_else(|| panic!("{name}: no fallback notice:\n{stderr}"));
        assert!(
            notice.contains("ckp-1.safetensors")
                && notice.contains("the 2 iteration(s) logged after it (global 9 to 10)"),
            "{name}: {notice}"
        );
        assert_eq!(
            tensors(&whole.join("checkpoint.safetensors")),
            tensors(&run.join("checkpoint.safetensors")),
            "{name}: the run did not finish as the uninterrupted one"
        );
        assert_eq!(metrics(&whole).len(), metrics(&run).len(), "{name}");
    }

    // Nothing intact: one line naming every file tried.
    let ruined = dir.path().join("ruined");
    copy_dir(&stopped, &ruined);
    std::fs::write(ruined.join("checkpoint.safetensors"), b"").unwrap();
    for copy in ["ckp-0", "ckp-1"] {
        std::fs::write(
            ruined
                .join("checkpoints")
                .join(format!("{copy}.safetensors")),
            b"not a checkpoint",
        )
        .unwrap();
    }
    let error = swav_error(&["pretrain", "--output", s(&ruined), "--resume"]);
    for tried in [
        "checkpoint.safetensors",
        "ckp-1.safetensors",
        "ckp-0.safetensors",
    ] {
        assert!(error.contains(tried), "{tried} not named: {error}");
    }
    assert!(error.contains("no intact checkpoint"), "{error}");
}
