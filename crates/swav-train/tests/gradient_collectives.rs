//! How many all-reduces a step spends on gradients: one per bucket, under ten for
//! ResNet-50, and the same weights whatever the bucket size.

use std::cell::Cell;
use std::time::Duration;

use swav_core::{Collective, Lars, PrototypeFreeze, SinkhornConfig, ThreadGroup, hashed_uniform};
use swav_cpu::CpuBackend;
use swav_nn::{Arch, CropGroup, SwavConfig, SwavModel, TrunkConfig};
use swav_train::{
    BucketLayout, Collectives, DEFAULT_BUCKET_CAP_MB, GradientCommunication, Iteration, StepPlan,
    SwavStep, TrainingState,
};

/// A collective that counts its calls.
struct Counting<C> {
    inner: C,
    calls: Cell<usize>,
}

impl<C: Collective<Vec<f32>>> Collective<Vec<f32>> for Counting<C> {
    type Error = C::Error;
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn world_size(&self) -> usize {
        self.inner.world_size()
    }
    fn all_reduce_sum(&self, data: &mut Vec<f32>) -> Result<(), C::Error> {
        self.calls.set(self.calls.get() + 1);
        self.inner.all_reduce_sum(data)
    }
    fn all_reduce_max(&self, data: &mut Vec<f32>) -> Result<(), C::Error> {
        self.calls.set(self.calls.get() + 1);
        self.inner.all_reduce_max(data)
    }
}

fn param_lens(model: &SwavModel<CpuBackend>) -> Vec<usize> {
    model.params().iter().map(|p| p.grad.len()).collect()
}

#[test]
fn resnet50_gradients_take_under_ten_all_reduces() {
    let mut b = CpuBackend::new();
    let config = SwavConfig {
        trunk: TrunkConfig {
            arch: Arch::ResNet50,
            width: 1,
            base_width: 64,
            small_stem: false,
        },
        hidden_dim: 2048,
        output_dim: 128,
        prototypes: 3000,
    };
    let model = SwavModel::new(&mut b, config, 0).unwrap();
    let lens = param_lens(&model);
    let per_tensor = BucketLayout::new(&lens, 0).len();
    let cap = BucketLayout::cap_elements(DEFAULT_BUCKET_CAP_MB);
    let buckets = BucketLayout::new(&lens, cap);
    assert_eq!(per_tensor, lens.len());
    assert!(per_tensor > 150, "{per_tensor} tensors");
    assert!(buckets.len() < 10, "{} buckets", buckets.len());
    // Every bucket but the last is close to the cap.
    for bucket in &buckets.buckets()[..buckets.len() - 1] {
        assert!(bucket.len > cap / 2 && bucket.len <= cap, "{}", bucket.len);
    }
}

const BATCH: usize = 2;
const WORLD: usize = 2;

/// Two steps of rank `rank`, averaging gradients in buckets of `cap_mb` MiB: the weights
/// afterwards, the all-reduces the all-ranks collective saw, and the step's own count of
/// gradient all-reduces per step.
fn two_steps(rank: usize, comm: ThreadGroup, cap_mb: usize) -> (Vec<Vec<u32>>, usize, usize) {
    let mut b = CpuBackend::new();
    let config = SwavConfig {
        trunk: TrunkConfig {
            arch: Arch::ResNet18,
            width: 1,
            base_width: 8,
            small_stem: true,
        },
        hidden_dim: 32,
        output_dim: 16,
        prototypes: 10,
    };
    let model = SwavModel::new(&mut b, config, 1).unwrap();
    let mut state = TrainingState::new(&mut b, model, Lars::default()).unwrap();
    let plan = StepPlan {
        batch: BATCH,
        crops: 2,
        prototypes: 10,
        dim: 16,
        crops_for_assign: vec![0, 1],
        temperature: 0.1,
        sinkhorn: SinkhornConfig {
            epsilon: 0.05,
            iterations: 3,
            ..SinkhornConfig::default()
        },
        freeze: PrototypeFreeze { iterations: 0 },
    };
    let mut step = SwavStep::new(&mut b, plan, 0).unwrap();
    step.set_gradient_communication(GradientCommunication {
        bucket_cap_mb: cap_mb,
        transport: None,
    });
    let images: Vec<f32> = (0..2 * BATCH * 16 * 16 * 3)
        .map(|i| hashed_uniform(40 + rank as u64, i as u64))
        .collect();
    let groups = [CropGroup {
        images: &images,
        crops: 2,
        height: 16,
        width: 16,
    }];
    let counting = Counting {
        inner: comm,
        calls: Cell::new(0),
    };
    let solo = swav_core::SingleProcess;
    for index in 0..2 {
        let ranks = Collectives {
            all_ranks: &counting,
            batch_norm: &solo,
        };
        let at = Iteration {
            index,
            lr: 0.3,
            diagnostics: false,
        };
        step.run(&mut b, &mut state, ranks, &groups, at).unwrap();
    }
    let weights = state
        .model
        .params()
        .iter()
        .map(|p| p.value.iter().map(|v| v.to_bits()).collect())
        .collect();
    let per_step = step.gradient_collectives(&state.model);
    (weights, counting.calls.get(), per_step)
}

fn run_ranks(cap_mb: usize) -> Vec<(Vec<Vec<u32>>, usize, usize)> {
    let groups = ThreadGroup::new(WORLD, Duration::from_secs(120));
    std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .into_iter()
            .enumerate()
            .map(|(rank, comm)| s.spawn(move || two_steps(rank, comm, cap_mb)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn a_step_spends_one_all_reduce_per_bucket_and_buckets_do_not_change_the_weights() {
    let per_tensor = run_ranks(0);
    let bucketed = run_ranks(DEFAULT_BUCKET_CAP_MB);
    let (weights, calls, buckets) = &bucketed[0];
    let (tensor_weights, tensor_calls, tensors) = &per_tensor[0];
    assert_eq!(*buckets, 1, "a small model fits one 25 MiB bucket");
    assert_eq!(*tensors, weights.len(), "cap 0: one all-reduce per tensor");
    // Everything else the steps reduce (Sinkhorn's sums) is the same in both runs.
    assert_eq!(tensor_calls - calls, 2 * (tensors - buckets));
    assert_eq!(weights, tensor_weights, "bucketing changed the weights");
    assert_eq!(bucketed[0].0, bucketed[1].0, "the ranks disagree");
}
