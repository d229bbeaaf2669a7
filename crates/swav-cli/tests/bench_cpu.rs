//! `swav bench` on the CPU: the median step of a small configuration and its JSON line.

use std::process::Command;

#[test]
fn cpu_bench_reports_a_json_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_swav"))
        .args([
            "bench",
            "--preset",
            "demo",
            "--batch-size",
            "4",
            "--steps",
            "1",
        ])
        .output()
        .expect("swav runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "swav bench failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("one JSON line on stdout");
    assert_eq!(json["device"], "cpu");
    assert_eq!(json["batch"], 4);
    assert_eq!(json["crops"], serde_json::json!(["2x32"]));
    assert!(
        json["images_per_sec"].as_f64().is_some_and(|v| v > 0.0),
        "{json}"
    );
    assert!(stderr.contains("median"), "{stderr}");
}
