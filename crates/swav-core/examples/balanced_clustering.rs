//! Balanced soft clustering of arbitrary embeddings with Sinkhorn-Knopp codes.
//!
//! ```sh
//! cargo run --release -p swav-core --example balanced_clustering
//! ```
//!
//! 300 embeddings in 16 dimensions come from three blobs of unequal size (200, 70 and 30
//! points); six prototypes are drawn at random. A plain nearest-prototype assignment puts
//! the points wherever the prototypes happen to be (one prototype takes most of the batch,
//! another none). Sinkhorn's soft codes give every prototype the same total mass, 300 / 6
//! = 50 points' worth, which is what SwAV needs to avoid collapse; their hard assignment
//! (the highest code of each point) comes close to even, and each prototype still draws
//! its points from one blob: the big blob is spread over four prototypes, the small ones
//! share the rest.

use swav_core::{
    MatrixOps, SingleProcess, SinkhornConfig, SinkhornWorkspace, SliceOps, SplitMix64, sinkhorn,
};

const DIM: usize = 16;
const PROTOTYPES: usize = 6;

/// Scales `v` to unit length.
fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

fn main() {
    let mut rng = SplitMix64::new(7);
    let blobs = [200usize, 70, 30];
    let centres: Vec<Vec<f32>> = blobs
        .iter()
        .map(|_| (0..DIM).map(|_| rng.normal() as f32).collect())
        .collect();
    let (mut z, mut blob_of) = (Vec::new(), Vec::new());
    for (b, &count) in blobs.iter().enumerate() {
        for _ in 0..count {
            let mut point: Vec<f32> = centres[b]
                .iter()
                .map(|c| c + 0.3 * rng.normal() as f32)
                .collect();
            normalise(&mut point);
            z.extend(point);
            blob_of.push(b);
        }
    }
    let n = blob_of.len();
    let mut prototypes = Vec::new();
    for _ in 0..PROTOTYPES {
        let mut p: Vec<f32> = (0..DIM).map(|_| rng.normal() as f32).collect();
        normalise(&mut p);
        prototypes.extend(p);
    }

    let mut ops = SliceOps;
    let mut scores = vec![0.0f32; n * PROTOTYPES];
    ops.matmul_nt(&z, &prototypes, n, PROTOTYPES, DIM, &mut scores)
        .expect("shapes match");
    let mut codes = vec![0.0f32; n * PROTOTYPES];
    let mut workspace = SinkhornWorkspace::new(&mut ops, n, PROTOTYPES).expect("workspace");
    let config = SinkhornConfig {
        epsilon: 0.05,
        iterations: 20,
        ..Default::default()
    };
    sinkhorn(
        &mut ops,
        &SingleProcess,
        &scores,
        &config,
        &mut workspace,
        &mut codes,
    )
    .expect("finite scores");

    let argmax = |row: &[f32]| {
        (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .expect("a row")
    };
    let mut nearest = [[0usize; 3]; PROTOTYPES];
    let mut balanced = [[0usize; 3]; PROTOTYPES];
    for i in 0..n {
        let row = i * PROTOTYPES..(i + 1) * PROTOTYPES;
        nearest[argmax(&scores[row.clone()])][blob_of[i]] += 1;
        balanced[argmax(&codes[row])][blob_of[i]] += 1;
    }
    println!("points per prototype, by blob (200 / 70 / 30 points):");
    println!("prototype   nearest prototype   Sinkhorn: code mass   highest code");
    for k in 0..PROTOTYPES {
        let total = |c: &[usize; 3]| c.iter().sum::<usize>();
        let mass: f32 = codes.iter().skip(k).step_by(PROTOTYPES).sum();
        println!(
            "{k:>9}   {:>4} {:<14}   {mass:>19.1}   {:>4} {:?}",
            total(&nearest[k]),
            format!("{:?}", nearest[k]),
            total(&balanced[k]),
            balanced[k]
        );
    }
}
