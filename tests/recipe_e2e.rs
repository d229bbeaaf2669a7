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

#[test]
fn the_imagenet_recipe_on_small_data_names_the_small_data_preset() {
    use swav::swav_augment::dataset::export::{ExportFormat, export_image_folder};
    use swav::swav_augment::dataset::{SyntheticConfig, SyntheticDataset, SyntheticSplit};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("photos");
    let images = SyntheticDataset::new(
        SyntheticConfig {
            image_size: 24,
            num_classes: 2,
            images_per_class: 4,
            ..SyntheticConfig::default()
        },
        SyntheticSplit::Train,
    )
    .unwrap();
    export_image_folder(&images, &data, ExportFormat::Png).unwrap();
    // The official recipe (224 px crops), made cheap enough for one iteration.
    let small_net = [
        "--data",
        s(&data),
        "--arch",
        "resnet18",
        "--base-width",
        "8",
        "--hidden-mlp",
        "16",
        "--feat-dim",
        "8",
        "--nmb-prototypes",
        "4",
        "--batch-size",
        "4",
        "--workers",
        "1",
        "--max-iterations",
        "1",
        "--eval-knn",
        "false",
    ];
    let run = dir.path().join("imagenet");
    let mut args = vec!["pretrain", "--output", s(&run)];
    args.extend(small_net);
    let text = stderr(&swav_ok(&args));
    let hint: Vec<&str> = text.lines().filter(|l| l.starts_with("note:")).collect();
    assert_eq!(hint.len(), 1, "{text}");
    assert!(
        hint[0].contains("holds 8 images (about 24 px)")
            && hint[0].contains("224 px crops")
            && hint[0].contains("--preset small-data"),
        "{}",
        hint[0]
    );
    // The small-data preset itself gets no such line.
    let run = dir.path().join("small");
    let mut args = vec!["pretrain", "--output", s(&run), "--preset", "small-data"];
    args.extend(small_net);
    let text = stderr(&swav_ok(&args));
    assert!(!text.contains("note:"), "{text}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("on_collapse = \"adapt\""), "{config}");
}
