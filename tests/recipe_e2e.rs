//! The recipe-search tools end to end: `swav supervised` (the labelled yardstick), crop
//! rotations, the synthetic dataset's seed, and the label-free recipe probes of
//! `--preset small-data`.

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
    // Its TensorBoard file: the version record, then loss, lr and accuracy at each of the 8
    // logged iterations.
    let events = std::fs::read(run.join("events.out.tfevents.swav")).unwrap();
    let count = |tag: &[u8]| events.windows(tag.len()).filter(|w| *w == tag).count();
    assert_eq!(count(b"brain.Event:2"), 1);
    assert_eq!(count(b"train/crop_accuracy"), 8);
    assert_eq!(count(b"train/loss"), 8);
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
    args.extend(["--recipe-probe-iterations", "0"]);
    let text = stderr(&swav_ok(&args));
    assert!(!text.contains("note:"), "{text}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("on_collapse = \"adapt\""), "{config}");
}

fn recipe_choice(run: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("recipe-choice.json")).unwrap()).unwrap()
}

#[test]
fn the_probes_score_every_candidate_without_labels_and_train_the_best() {
    let dir = tempfile::tempdir().unwrap();
    let (run, again) = (dir.path().join("choice"), dir.path().join("again"));
    let probes = ["--recipe-probe-iterations", "3"];
    let text = stderr(&swav_ok(&tiny_pretrain_args(s(&run), &probes)));
    assert!(text.contains("probe 1/4: plain (nothing)"), "{text}");
    assert!(text.contains("<- chosen"), "{text}");
    let choice = recipe_choice(&run);
    let entries = choice["probes"].as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|p| p["candidate"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["plain", "grey-crops", "large-crops", "rotated-crops"]
    );
    // Healthy before collapsed, then the highest effective rank, the earlier on a tie.
    let key = |p: &serde_json::Value| {
        (
            p["collapse"].as_str() == Some("none"),
            p["effective_rank"].as_f64().unwrap(),
        )
    };
    let mut best = &entries[0];
    for p in entries {
        assert_eq!(p["iterations"].as_u64(), Some(3), "{p}");
        let rank = p["effective_rank"].as_f64().unwrap();
        // 64-d trunk features (base width 8) of 2 views of each of the 32 images.
        assert!((1.0..=64.0).contains(&rank), "rank of 64-d features: {p}");
        let folder = run.join("probes").join(p["candidate"].as_str().unwrap());
        assert!(folder.join("trunk.safetensors").exists());
        assert_eq!(metrics(&folder).len(), 3);
        if key(p) > key(best) {
            best = p;
        }
    }
    let random = choice["random_effective_rank"].as_f64().unwrap();
    assert!((1.0..=64.0).contains(&random), "{choice}");
    let chosen = choice["chosen"].as_str().unwrap();
    assert_eq!(chosen, best["candidate"].as_str().unwrap());
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains(&format!("chosen_recipe = \"{chosen}\""))
            && config.contains("recipe_probe_iterations = 0"),
        "{config}"
    );
    // The winner goes on from its probe: the run is bit for bit the run of that recipe alone.
    let alone = dir.path().join("alone");
    swav_ok(&tiny_pretrain_args(s(&alone), &["--recipe", chosen]));
    assert_eq!(first_losses(&run), first_losses(&alone));
    assert_eq!(first_losses(&run).len(), 8, "2 epochs × 4 iterations");
    let prototypes = |run: &std::path::Path| {
        tensors(&run.join("checkpoint.safetensors"))
            .remove("prototypes.weight")
            .expect("prototypes.weight")
    };
    assert_eq!(prototypes(&run), prototypes(&alone));
    // Seeded: the same command makes the same choice with the same scores.
    swav_ok(&tiny_pretrain_args(s(&again), &probes));
    let repeat = recipe_choice(&again);
    assert_eq!(repeat["chosen"], choice["chosen"]);
    for (p, q) in entries.iter().zip(repeat["probes"].as_array().unwrap()) {
        for field in ["effective_rank", "last_loss", "collapse"] {
            assert_eq!(p[field], q[field], "{field}");
        }
    }
    // A resume keeps the chosen recipe and probes nothing again.
    let text = stderr(&swav_ok(&["pretrain", "--resume", "--output", s(&run)]));
    assert!(
        text.contains("already finished") && !text.contains("probe"),
        "{text}"
    );
    let resumed = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(resumed.contains(&format!("chosen_recipe = \"{chosen}\"")));
}

#[test]
fn a_named_recipe_skips_the_probes_and_cannot_be_combined_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("named");
    let text = stderr(&swav_ok(&tiny_pretrain_args(
        s(&run),
        &["--recipe", "rotated-crops"],
    )));
    assert!(!text.contains("probe"), "{text}");
    assert!(!run.join("recipe-choice.json").exists());
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("chosen_recipe = \"rotated-crops\"")
            && config.contains("rotation_probability = 1.0"),
        "{config}"
    );
    let err = swav_error(&tiny_pretrain_args(
        s(&dir.path().join("both")),
        &["--recipe", "plain", "--recipe-probe-iterations", "5"],
    ));
    assert!(err.contains("recipe_probe_iterations"), "{err}");
    let out = swav(&tiny_pretrain_args(
        s(&dir.path().join("unknown")),
        &["--recipe", "sharp"],
    ));
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("--recipe") && err.contains("rotated-crops"),
        "the error lists the candidates: {err}"
    );
}

#[test]
fn a_time_budget_sets_the_epochs_from_the_probes_speed() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("budget");
    // Four seconds: the probes take some, the winner trains what fits of the rest.
    let text = stderr(&swav_ok(&tiny_pretrain_args(
        s(&run),
        &["--recipe-probe-iterations", "3", "--time-budget", "0.07"],
    )));
    let choice = recipe_choice(&run);
    let plan = &choice["time_budget"];
    let epochs = plan["epochs"].as_u64().expect("the plan's epochs");
    assert!(epochs >= 1, "{plan}");
    assert!(
        plan["seconds_per_iteration"].as_f64().unwrap() > 0.0,
        "{plan}"
    );
    assert!(
        text.contains("time budget 4s:") && text.contains(&format!("trains {epochs} epochs")),
        "{text}"
    );
    // The run checks the plan at every epoch end against its own speed and ends earlier
    // when finishing would overrun; then it says so, and config.toml has the new length.
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let trained: u64 = config
        .lines()
        .find_map(|l| l.strip_prefix("epochs = "))
        .expect("epochs in config.toml")
        .parse()
        .unwrap();
    assert!(trained >= 1 && trained <= epochs, "{trained} of {epochs}");
    if trained < epochs {
        assert!(
            text.contains(&format!("it now ends after {trained} epochs")),
            "{text}"
        );
    }
    assert_eq!(
        metrics(&run).len() as u64,
        trained * 4,
        "4 iterations per epoch"
    );
    // Without probes there is no measured speed: the budget is not applied, and it says so.
    let named = dir.path().join("named");
    let text = stderr(&swav_ok(&tiny_pretrain_args(
        s(&named),
        &["--recipe", "plain", "--time-budget", "0.07"],
    )));
    assert!(
        text.contains("time budget (0.07 min) not applied"),
        "{text}"
    );
    assert_eq!(metrics(&named).len(), 8, "its 2 epochs");
    let err = swav_error(&tiny_pretrain_args(
        s(&dir.path().join("bad")),
        &["--time-budget", "-1"],
    ));
    assert!(err.contains("time_budget_minutes"), "{err}");
}
