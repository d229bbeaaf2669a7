//! Collapse diagnostics.

use swav_core::{
    CollapseReport, mean_code_entropy, mean_sample_entropy, prototypes_in_use, uniform_loss,
};

#[test]
fn entropy_of_the_mean_code_spans_zero_to_ln_k() {
    let k = 4;
    // Every sample on prototype 2: collapsed.
    let collapsed = [0.0f32, 0.0, 1.0, 0.0].repeat(5);
    assert_eq!(mean_code_entropy(&collapsed, 5, k), 0.0);
    assert_eq!(prototypes_in_use(&collapsed, 5, k), 1);
    // One sample per prototype: balanced.
    let balanced: Vec<f64> = (0..k)
        .flat_map(|i| (0..k).map(move |j| if i == j { 1.0 } else { 0.0 }))
        .collect();
    assert!((mean_code_entropy(&balanced, k, k) - (k as f64).ln()).abs() < 1e-12);
    assert_eq!(prototypes_in_use(&balanced, k, k), k);
    // One-hot codes are sharp; uniform codes carry no signal, whatever their mean.
    assert_eq!(mean_sample_entropy(&balanced, k, k), 0.0);
    let uniform = vec![0.25f64; 4 * k];
    assert!((mean_sample_entropy(&uniform, 4, k) - (k as f64).ln()).abs() < 1e-12);
    assert!((mean_code_entropy(&uniform, 4, k) - (k as f64).ln()).abs() < 1e-12);
}

#[test]
fn the_report_flags_a_loss_at_ln_k() {
    let codes = vec![1.0f32 / 3000.0; 2 * 3000];
    let stuck = CollapseReport::new(8.0066, &codes, 2, 3000);
    assert!((stuck.uniform_loss - 8.0064).abs() < 1e-4);
    assert!(stuck.at_uniform_loss(0.001));
    assert!((uniform_loss(512) - 6.2383).abs() < 1e-4);
    let learning = CollapseReport { loss: 3.1, ..stuck };
    assert!(!learning.at_uniform_loss(0.001));
    assert!(learning.loss_ratio() < 0.4);
}
