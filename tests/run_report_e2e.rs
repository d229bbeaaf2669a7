//! What a run tells its user, through the binary: the resume line, the LARC clip setting,
//! the collapse diagnostics and their warning, the k-NN curve, and the run report.

mod common;

use common::*;

#[test]
fn resume_says_which_checkpoint_position_and_queue_it_continues_from() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let extra = [
        "--epochs",
        "3",
        "--queue-length",
        "16",
        "--epoch-queue-starts",
        "1",
        "--max-iterations",
        "6",
    ];
    swav_ok(&tiny_pretrain_args(s(&run), &extra));
    let out = swav_ok(&[
        "pretrain",
        "--output",
        s(&run),
        "--resume",
        "--max-iterations",
        "1",
    ]);
    let text = stderr(&out);
    let first = text.lines().next().unwrap_or_default();
    let checkpoint = run.join("checkpoint.safetensors");
    assert_eq!(
        first,
        format!(
            "resuming from {}: epoch 2/3, iteration 3/4 (global 7/12); queue 16/16 rows filled × 2 crops",
            s(&checkpoint)
        ),
        "{text}"
    );
    // Stopped at the end of epoch 1 (before the queue starts in a fresh run): no queue yet.
    let early = dir.path().join("early");
    let mut args = tiny_pretrain_args(s(&early), &["--epochs", "3", "--queue-length", "16"]);
    args.extend(["--epoch-queue-starts", "2", "--max-iterations", "4"]);
    swav_ok(&args);
    let out = swav_ok(&["pretrain", "--output", s(&early), "--resume"]);
    let first = stderr(&out).lines().next().unwrap_or_default().to_string();
    assert!(
        first.contains(
            "epoch 2/3, iteration 1/4 (global 5/12); no queue yet (it starts at epoch 3)"
        ),
        "{first}"
    );
}

#[test]
fn lars_clip_is_a_flag_and_a_config_key_and_changes_the_updates() {
    let dir = tempfile::tempdir().unwrap();
    let out = swav_ok(&tiny_pretrain_args(
        s(&dir.path().join("x")),
        &["--print-config"],
    ));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("lars_clip = false"),
        "off by default"
    );
    let config = dir.path().join("clip.toml");
    std::fs::write(&config, "lars_clip = true\n").unwrap();
    let out = swav_ok(&tiny_pretrain_args(
        s(&dir.path().join("x")),
        &["--config", s(&config), "--print-config"],
    ));
    assert!(String::from_utf8_lossy(&out.stdout).contains("lars_clip = true"));

    let (plain, clipped) = (dir.path().join("plain"), dir.path().join("clipped"));
    swav_ok(&tiny_pretrain_args(s(&plain), &["--epochs", "1"]));
    swav_ok(&tiny_pretrain_args(
        s(&clipped),
        &["--epochs", "1", "--lars-clip", "true"],
    ));
    let (a, b) = (metrics(&plain), metrics(&clipped));
    assert_eq!(a[0]["loss"], b[0]["loss"], "the same first step");
    assert_ne!(a[3]["loss"], b[3]["loss"], "clipped updates differ");
}

#[test]
fn every_logged_iteration_has_the_collapse_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    swav_ok(&tiny_pretrain_args(s(&run), &[]));
    let ln_k = 10f64.ln();
    for r in metrics(&run) {
        let it = r["iteration"].as_u64().unwrap();
        let gap = r["loss_minus_ln_k"].as_f64().unwrap();
        assert!(
            (gap - (r["loss"].as_f64().unwrap() - ln_k)).abs() < 1e-9,
            "{r}"
        );
        let cosine = r["prototype_cosine"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&cosine), "{r}");
        let variance = r["embedding_variance"].as_f64().unwrap();
        assert!(
            (0.0..=1.0 + 1e-6).contains(&variance) && variance > 0.0,
            "{r}"
        );
        assert!(r["score_spread"].as_f64().unwrap() > 0.0, "{r}");
        // The warm-up starts at lr 0 (no update), and the tiny run freezes the prototypes
        // for 2 iterations.
        let moved = r["lr"].as_f64().unwrap() > 0.0;
        let update = &r["relative_update"];
        assert_eq!(update["trunk"].as_f64().unwrap() > 0.0, moved, "{r}");
        assert_eq!(
            update["projection_head"].as_f64().unwrap() > 0.0,
            moved,
            "{r}"
        );
        let prototypes = update["prototypes"].as_f64().unwrap();
        assert_eq!(prototypes > 0.0, moved && it >= 2, "iteration {it}: {r}");
        assert_eq!(r["skipped_files"], 0);
    }
}

#[test]
fn a_collapse_warning_names_the_cause_and_the_knob() {
    let dir = tempfile::tempdir().unwrap();
    // A temperature of 10 flattens every prediction and an epsilon of 100 every code: the
    // loss sits at ln K from the start.
    let out = swav_ok(&tiny_pretrain_args(
        s(&dir.path().join("run")),
        &["--epochs", "4", "--temperature", "10", "--epsilon", "100"],
    ));
    let text = stderr(&out);
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("SwAV has probably collapsed"))
        .collect();
    assert_eq!(warnings.len(), 1, "once:\n{text}");
    let warning = warnings[0];
    assert!(
        warning.contains("lower the temperature (--temperature, now 10)")
            && warning.contains("lower --epsilon (now 100)"),
        "{warning}"
    );
    assert!(
        !warning.contains("--freeze-prototypes-niters, now"),
        "the prototypes did not align: {warning}"
    );
}

#[test]
fn on_collapse_adapt_escapes_by_changing_what_the_diagnosis_names() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = swav_ok(&tiny_pretrain_args(
        s(&run),
        &[
            "--epochs",
            "6",
            "--temperature",
            "10",
            "--epsilon",
            "100",
            "--on-collapse",
            "adapt",
        ],
    ));
    let text = stderr(&out);
    assert!(
        text.contains("collapse escape 1 of 3: epsilon 100 -> 0.05; restarting from its start")
            && text.contains("collapse escape 2 of 3: temperature 10 -> 0.1"),
        "{text}"
    );
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config
            .contains(r#"collapse_adaptations = ["epsilon 100 -> 0.05", "temperature 10 -> 0.1"]"#)
            && config.contains("temperature = 0.1"),
        "{config}"
    );
    let records = metrics(&run);
    assert_eq!(records.len(), 24, "the whole run after the last restart");
    assert!(
        records[0]["adaptation"]
            .as_str()
            .is_some_and(|a| a.contains("temperature 10 -> 0.1"))
    );
    let ln_k = 10f64.ln();
    let last = records.last().unwrap()["loss"].as_f64().unwrap();
    assert!((last / ln_k - 1.0).abs() > 0.05, "still at ln K: {last}");
    assert!(!text.contains("the run ended collapsed"), "{text}");

    // A healthy run that collapses after a resume goes back to its last healthy epoch end.
    let healthy = dir.path().join("healthy");
    let flags = ["--nmb-prototypes", "4", "--on-collapse", "adapt"];
    let mut first = tiny_pretrain_args(s(&healthy), &flags);
    first.extend(["--epochs", "3"]);
    swav_ok(&first);
    assert!(healthy.join("checkpoints/last-good.safetensors").exists());
    let out = swav_ok(&[
        "pretrain",
        "--output",
        s(&healthy),
        "--resume",
        "--epochs",
        "6",
        "--temperature",
        "10",
        "--epsilon",
        "100",
    ]);
    let text = stderr(&out);
    assert!(
        text.contains("collapse escape 1 of 3: epsilon 100 -> 0.05; restarting from its last healthy epoch end")
            && text.contains("last-good.safetensors"),
        "{text}"
    );
}

#[test]
fn on_collapse_stop_ends_the_run_with_one_error_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let error = swav_error(&tiny_pretrain_args(
        s(&run),
        &[
            "--epochs",
            "6",
            "--temperature",
            "10",
            "--epsilon",
            "100",
            "--on-collapse",
            "stop",
        ],
    ));
    assert!(
        error.contains("stopped because the run collapsed (--on-collapse stop"),
        "{error}"
    );
    assert!(run.join("checkpoint.safetensors").exists());
}

#[test]
fn knn_every_epoch_draws_a_curve_without_changing_the_training() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, probed) = (dir.path().join("plain"), dir.path().join("probed"));
    swav_ok(&tiny_pretrain_args(s(&plain), &["--epochs", "3"]));
    let out = swav_ok(&tiny_pretrain_args(
        s(&probed),
        &[
            "--epochs",
            "3",
            "--eval-knn-every",
            "1",
            "--eval-knn",
            "true",
        ],
    ));
    let text = stderr(&out);
    assert!(
        text.contains("k-NN top-1 after epoch 1: k=20 ")
            && text.contains("k-NN top-1 after epoch 2: "),
        "{text}"
    );
    assert_eq!(
        tensors(&plain.join("checkpoint.safetensors")),
        tensors(&probed.join("checkpoint.safetensors")),
        "evaluating k-NN leaves the training bit for bit the same"
    );
    // Epochs 1 and 2 during training, epoch 3 from the final comparison.
    let curve: Vec<serde_json::Value> = std::fs::read_to_string(probed.join("knn.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at: Vec<(u64, u64)> = curve
        .iter()
        .map(|p| {
            (
                p["epoch"].as_u64().unwrap(),
                p["iteration"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(at, vec![(1, 4), (2, 8), (3, 12)]);
    assert!(probed.join("knn.json").exists());

    // Resuming drops the points of the iterations it runs again.
    let parts = dir.path().join("parts");
    let mut first = tiny_pretrain_args(s(&parts), &["--epochs", "3", "--eval-knn-every", "1"]);
    first.extend(["--max-iterations", "6"]);
    swav_ok(&first);
    swav_ok(&["pretrain", "--output", s(&parts), "--resume"]);
    let lines = std::fs::read_to_string(parts.join("knn.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");
}

#[test]
fn report_draws_the_curves_and_says_where_the_run_stands() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = swav_ok(&tiny_pretrain_args(
        s(&run),
        &["--eval-knn-every", "1", "--eval-knn", "true"],
    ));
    let curves = run.join("curves.svg");
    assert!(
        stderr(&out).contains(&format!("training curves: {}", s(&curves))),
        "the run draws its curves at the end"
    );
    std::fs::remove_file(&curves).unwrap();

    let out = swav_ok(&["report", s(&run)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{}: epoch 2/2, iteration 8; loss ", s(&run)))
            && text.contains("ln K 2.3026")
            && text.contains("prototypes in use ")
            && text.contains("k-NN top-1 after epoch 2:")
            && text.contains(&format!("curves: {}", s(&curves))),
        "{text}"
    );
    let svg = std::fs::read_to_string(&curves).unwrap();
    for needle in [
        ">Loss<",
        ">Learning rate<",
        ">Code entropy<",
        ">Prototypes in use<",
        ">k-NN top-1 on the validation split<",
        ">Collapse signs<",
        "ln K (collapse) = 2.303",
        "K = 10",
        "trained, k = 20",
        "random init, k = 20",
        "iteration (4 per epoch)",
    ] {
        assert!(svg.contains(needle), "curves.svg lacks {needle}");
    }
    // Loss and ln K; lr; two entropies and ln K; prototypes and K; two k-NN curves and
    // their random-init levels; three diagnostics.
    assert_eq!(svg.matches("<polyline").count(), 15);

    // The TensorBoard file: the version record first, then the scalars.
    let events = std::fs::read(run.join("events.out.tfevents.swav")).unwrap();
    let first_len = u64::from_le_bytes(events[..8].try_into().unwrap()) as usize;
    assert!(events[12..12 + first_len].ends_with(b"brain.Event:2"));
    let has = |tag: &[u8]| events.windows(tag.len()).any(|w| w == tag);
    assert!(has(b"train/loss") && has(b"knn/top1_k20") && has(b"collapse/prototype_cosine"));
    assert!(text.contains("TensorBoard events: "), "{text}");

    let e = swav_error(&["report", s(dir.path())]);
    assert!(
        e.contains("metrics.jsonl") && e.contains(s(dir.path())),
        "{e}"
    );
}

/// The event file's records (TFRecord framing: length, its CRC, data, the data's CRC).
fn event_records(path: &std::path::Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut records, mut at) = (Vec::new(), 0);
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        records.push(bytes[at + 12..at + 12 + len].to_vec());
        at += 12 + len + 4;
    }
    assert_eq!(at, bytes.len(), "whole records only");
    records
}

#[test]
fn the_tensorboard_file_grows_while_the_run_trains_and_a_resume_starts_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let events = run.join("events.out.tfevents.swav");
    swav_ok(&tiny_pretrain_args(
        s(&run),
        &["--max-iterations", "3", "--eval-knn-every", "1"],
    ));
    // Stopped after 3 of 8 iterations: the file already holds them, stamped with the time
    // of day (seconds since 1970), not seconds since the start.
    let records = event_records(&events);
    assert!(records[0].ends_with(b"brain.Event:2"));
    let has = |r: &[u8], tag: &[u8]| r.windows(tag.len()).any(|w| w == tag);
    let losses: Vec<&Vec<u8>> = records.iter().filter(|r| has(r, b"train/loss")).collect();
    assert_eq!(losses.len(), metrics(&run).len());
    assert_eq!(losses.len(), 3);
    for r in &losses {
        assert_eq!(r[0], 0x09, "wall_time first");
        let wall = f64::from_le_bytes(r[1..9].try_into().unwrap());
        assert!(wall > 1.6e9, "absolute wall time: {wall}");
    }
    swav_ok(&["pretrain", "--resume", "--output", s(&run)]);
    let records = event_records(&events);
    // A session start at step 4 (iteration 3, the first the resumed run logs), then the
    // rest of the run.
    let start = records
        .iter()
        .position(|r| r.ends_with(&[0x3a, 2, 0x08, 0x01]))
        .expect("a session start record");
    assert!(records[start][9..].starts_with(&[0x10, 4]), "at step 4");
    let after = records[start..]
        .iter()
        .filter(|r| has(r, b"train/loss"))
        .count();
    assert_eq!(after, 5, "iterations 3..8");
    assert_eq!(metrics(&run).len(), 8);
    // Both epochs' k-NN points, appended beside the steps without overwriting them.
    let knn = records.iter().filter(|r| has(r, b"knn/top1_k20")).count();
    assert_eq!(knn, 2);
}
