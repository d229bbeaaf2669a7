//! The recipe-search tools end to end: `swav supervised` (the labelled yardstick), crop
//! rotations and the synthetic dataset's seed.

mod common;

use common::*;

/// `swav supervised --output DIR` with the tiny flags plus `extra`.
fn tiny_supervised_args<'a>(output: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = tiny_pretrain_args(output, extra);
    args[0] = "supervised";
    args
}

fn first_losses(run: &std::path::Path) -> Vec<f64> {
    metrics(run)
        .iter()
        .map(|r| r["loss"].as_f64().expect("loss"))
        .collect()
}

#[test]
fn supervised_trains_the_same_steps_and_reports_knn_beside_random() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("sup");
    let out = swav_ok(&tiny_supervised_args(s(&run), &["--eval-knn", "true"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("supervised: 8 iterations"),
        "2 epochs × 4 iterations, as pretrain: {stderr}"
    );
    assert!(stderr.contains("it 8/8"), "{stderr}");
    assert!(run.join("config.toml").exists());
    let knn: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("knn.json")).unwrap()).unwrap();
    let models: Vec<&str> = knn["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["supervised", "random init"]);
    for r in knn["results"].as_array().unwrap() {
        for k in r["top1"].as_array().unwrap() {
            let top1 = k["top1"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&top1));
        }
    }
}

#[test]
fn supervised_refuses_what_only_pretrain_does() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("sup");
    let err = swav_error(&tiny_supervised_args(s(&run), &["--resume"]));
    assert!(err.contains("--resume"), "{err}");
}

#[test]
fn rotations_reach_the_crops_and_bad_values_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, rotated) = (dir.path().join("plain"), dir.path().join("rotated"));
    swav_ok(&tiny_pretrain_args(s(&plain), &[]));
    swav_ok(&tiny_pretrain_args(
        s(&rotated),
        &["--rotation-probability", "1", "--rotation-degrees", "90"],
    ));
    assert_ne!(first_losses(&plain)[0], first_losses(&rotated)[0]);
    let config = std::fs::read_to_string(rotated.join("config.toml")).unwrap();
    assert!(config.contains("rotation_probability = 1.0"), "{config}");
    assert!(config.contains("rotation_degrees = 90.0"), "{config}");

    let err = swav_error(&tiny_pretrain_args(
        s(&dir.path().join("bad")),
        &["--rotation-probability", "1.5"],
    ));
    assert!(err.contains("rotation_probability"), "{err}");
    let err = swav_error(&tiny_pretrain_args(
        s(&dir.path().join("bad2")),
        &["--rotation-degrees", "270"],
    ));
    assert!(err.contains("rotation_degrees"), "{err}");
}

#[test]
fn the_synthetic_seed_draws_other_images() {
    let dir = tempfile::tempdir().unwrap();
    let (zero, seven) = (dir.path().join("zero"), dir.path().join("seven"));
    swav_ok(&tiny_pretrain_args(s(&zero), &["--max-iterations", "1"]));
    swav_ok(&tiny_pretrain_args(
        s(&seven),
        &["--max-iterations", "1", "--synthetic-seed", "7"],
    ));
    assert_ne!(first_losses(&zero)[0], first_losses(&seven)[0]);
    let again = dir.path().join("again");
    swav_ok(&tiny_pretrain_args(
        s(&again),
        &["--max-iterations", "1", "--synthetic-seed", "7"],
    ));
    assert_eq!(first_losses(&seven), first_losses(&again));
}
