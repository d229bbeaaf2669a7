//! The step's bucketed gradient average: gradients are copied into flat buckets as backward
//! finishes them, each bucket is summed over ranks as soon as it is complete, and after
//! backward the sums come back into the gradients scaled by `1/world` (one scale per
//! bucket).

use swav_nn::{Backend, GradReady, ParamMut};

use crate::bucket_layout::{BucketLayout, DEFAULT_BUCKET_CAP_MB};
use crate::bucket_transport::BucketTransport;
use crate::step_failure::StepFailure;

/// How a [`SwavStep`](crate::SwavStep) averages gradients over more than one rank.
pub struct GradientCommunication<B: Backend> {
    /// Bucket size in MiB ([`DEFAULT_BUCKET_CAP_MB`], as DDP); 0: one all-reduce per tensor.
    pub bucket_cap_mb: usize,
    /// Where buckets are summed. `None`: on the calling thread through the step's
    /// all-ranks collective, at launch (backward waits for each); `Some`: a transport that
    /// overlaps communication with the rest of backward.
    pub transport: Option<Box<dyn BucketTransport<B>>>,
}

impl<B: Backend> Default for GradientCommunication<B> {
    fn default() -> Self {
        Self {
            bucket_cap_mb: DEFAULT_BUCKET_CAP_MB,
            transport: None,
        }
    }
}

/// The buckets of one model and where the current step stands with them.
pub(crate) struct GradientBuckets<B: Backend> {
    layout: BucketLayout,
    buffers: Vec<B::Buf>,
    /// Gradients still to arrive, per bucket.
    pending: Vec<usize>,
    /// Buckets launched so far this step (always a prefix: launches go in order).
    launched: usize,
    /// Whether a step began and has not finished: its buckets may still be in flight.
    open: bool,
    /// The first failure while backward ran, reported by `finish`.
    failure: Option<StepFailure>,
}

impl<B: Backend> GradientBuckets<B> {
    /// Buckets of at most `cap` elements for parameters of `lens` elements.
    pub(crate) fn new(b: &mut B, lens: &[usize], cap: usize) -> Result<Self, B::Error> {
        let layout = BucketLayout::new(lens, cap);
        let mut buffers = Vec::with_capacity(layout.len());
        for bucket in layout.buckets() {
            buffers.push(b.zeros(bucket.len)?);
        }
        Ok(Self {
            pending: vec![0; layout.len()],
            layout,
            buffers,
            launched: 0,
            open: false,
            failure: None,
        })
    }

    /// Prepares a step: every bucket waits for all its gradients.
    pub(crate) fn begin(
        &mut self,
        transport: &mut dyn BucketTransport<B>,
    ) -> Result<(), StepFailure> {
        if self.open {
            return Err(StepFailure::Collective(
                "an earlier step failed while its gradients were being reduced; the ranks are out of step".into(),
            ));
        }
        for (pending, bucket) in self.pending.iter_mut().zip(self.layout.buckets()) {
            *pending = bucket.params.len();
        }
        self.launched = 0;
        self.failure = None;
        self.open = true;
        transport.begin()
    }

    /// Copies parameter `index`'s final gradient into its bucket and launches every bucket
    /// that is now complete and next in line.
    fn ready(
        &mut self,
        b: &mut B,
        index: usize,
        grad: &B::Buf,
        transport: &mut dyn BucketTransport<B>,
    ) {
        if self.failure.is_some() {
            return;
        }
        let slot = self.layout.slot(index);
        if let Err(e) = b.copy(
            grad,
            0,
            &mut self.buffers[slot.bucket],
            slot.offset,
            slot.len,
        ) {
            self.failure = Some(StepFailure::Device(e.to_string()));
            return;
        }
        self.pending[slot.bucket] -= 1;
        while self.launched < self.layout.len() && self.pending[self.launched] == 0 {
            let k = self.launched;
            if let Err(e) = transport.launch(b, k, &mut self.buffers[k]) {
                self.failure = Some(e);
                return;
            }
            self.launched += 1;
        }
    }

    /// After backward: waits for every bucket and writes the averages (sum × `1/world`,
    /// one scale per bucket) into the gradients.
    pub(crate) fn finish(
        &mut self,
        b: &mut B,
        transport: &mut dyn BucketTransport<B>,
        mut params: Vec<ParamMut<'_, B::Buf>>,
        world: usize,
    ) -> Result<(), StepFailure> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        assert_eq!(
            self.launched,
            self.layout.len(),
            "backward announced only some parameters' gradients"
        );
        transport.wait_all(b, &mut self.buffers)?;
        let device = |e: B::Error| StepFailure::Device(e.to_string());
        for (bucket, buffer) in self.layout.buckets().iter().zip(&mut self.buffers) {
            b.scale(buffer, 1.0 / world as f32).map_err(device)?;
            for &index in &bucket.params {
                let slot = self.layout.slot(index);
                b.copy(buffer, slot.offset, params[index].grad, 0, slot.len)
                    .map_err(device)?;
            }
        }
        self.open = false;
        Ok(())
    }
}

/// The [`GradReady`] listener of one backward pass: buckets plus their transport.
pub(crate) struct BucketFeed<'a, B: Backend> {
    pub(crate) buckets: &'a mut GradientBuckets<B>,
    pub(crate) transport: &'a mut dyn BucketTransport<B>,
}

impl<B: Backend> GradReady<B> for BucketFeed<'_, B> {
    fn grad_ready(&mut self, b: &mut B, index: usize, grad: &B::Buf) {
        self.buckets.ready(b, index, grad, self.transport);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use swav_core::{Collective, ElementWiseOps, SingleProcess, ThreadGroup};
    use swav_cpu::CpuBackend;
    use swav_nn::{Arch, CropGroup, SwavConfig, SwavModel, TrunkConfig, hashed_uniform};

    use super::*;
    use crate::bucket_transport::InlineTransport;

    const WORLD: usize = 3;
    const BATCH: usize = 2;

    fn config() -> SwavConfig {
        SwavConfig {
            trunk: TrunkConfig {
                arch: Arch::ResNet18,
                width: 1,
                base_width: 8,
                small_stem: true,
            },
            hidden_dim: 32,
            output_dim: 16,
            prototypes: 10,
        }
    }

    fn noise(stream: u64, len: usize) -> Vec<f32> {
        (0..len).map(|i| hashed_uniform(stream, i as u64)).collect()
    }

    /// A transport that takes each bucket away to a thread of its own, which sums it over a
    /// second group of ranks (as the MPI communication thread does).
    struct ThreadTransport {
        to_thread: Option<mpsc::Sender<Vec<f32>>>,
        from_thread: mpsc::Receiver<Vec<f32>>,
        worker: Option<JoinHandle<()>>,
    }

    impl ThreadTransport {
        fn new(comm: ThreadGroup) -> Self {
            let (to_thread, inbox) = mpsc::channel::<Vec<f32>>();
            let (outbox, from_thread) = mpsc::channel();
            let worker = std::thread::spawn(move || {
                for mut bucket in inbox {
                    comm.all_reduce_sum(&mut bucket).unwrap();
                    outbox.send(bucket).unwrap();
                }
            });
            Self {
                to_thread: Some(to_thread),
                from_thread,
                worker: Some(worker),
            }
        }
    }

    impl Drop for ThreadTransport {
        fn drop(&mut self) {
            self.to_thread = None;
            self.worker.take().unwrap().join().unwrap();
        }
    }

    impl BucketTransport<CpuBackend> for ThreadTransport {
        fn begin(&mut self) -> Result<(), StepFailure> {
            Ok(())
        }
        fn launch(
            &mut self,
            _: &mut CpuBackend,
            _: usize,
            bucket: &mut Vec<f32>,
        ) -> Result<(), StepFailure> {
            let bucket = std::mem::take(bucket);
            self.to_thread.as_ref().unwrap().send(bucket).unwrap();
            Ok(())
        }
        fn wait_all(
            &mut self,
            _: &mut CpuBackend,
            buckets: &mut [Vec<f32>],
        ) -> Result<(), StepFailure> {
            for bucket in buckets {
                *bucket = self.from_thread.recv().unwrap();
            }
            Ok(())
        }
    }

    /// How a rank averages its gradients.
    enum Path {
        /// The reference: one all-reduce and one scale per tensor.
        PerTensor,
        /// Buckets of this many elements, reduced at launch.
        Inline(usize),
        /// Buckets of this many elements, reduced on another thread.
        Threaded(usize, ThreadGroup),
    }

    /// One backward pass of rank `rank` (two resolution groups, its own images and score
    /// gradient), averaged over the ranks of `comm` along `path`: the gradients.
    fn averaged_gradients(rank: usize, comm: &ThreadGroup, path: Path) -> Vec<Vec<f32>> {
        let mut b = CpuBackend::new();
        let config = config();
        let k = config.prototypes;
        let mut model = SwavModel::new(&mut b, config, 3).unwrap();
        let large = noise(10 + rank as u64, 2 * BATCH * 16 * 16 * 3);
        let small = noise(20 + rank as u64, 2 * BATCH * 8 * 8 * 3);
        let groups = [
            CropGroup {
                images: &large,
                crops: 2,
                height: 16,
                width: 16,
            },
            CropGroup {
                images: &small,
                crops: 2,
                height: 8,
                width: 8,
            },
        ];
        model
            .forward_train(&mut b, &groups, BATCH, &SingleProcess)
            .unwrap();
        let d_scores = noise(30 + rank as u64, 4 * BATCH * k);
        model.zero_grad(&mut b).unwrap();
        let lens: Vec<usize> = model.params().iter().map(|p| p.grad.len()).collect();
        let (cap, mut threaded, mut inline);
        let transport: &mut dyn BucketTransport<CpuBackend> = match path {
            Path::PerTensor => {
                model.backward(&mut b, &d_scores, &SingleProcess).unwrap();
                for p in model.params_mut() {
                    comm.all_reduce_sum(p.grad).unwrap();
                    b.scale(p.grad, 1.0 / WORLD as f32).unwrap();
                }
                return model.params().iter().map(|p| p.grad.clone()).collect();
            }
            Path::Inline(c) => {
                cap = c;
                inline = InlineTransport { comm };
                &mut inline
            }
            Path::Threaded(c, second) => {
                cap = c;
                threaded = ThreadTransport::new(second);
                &mut threaded
            }
        };
        let mut buckets = GradientBuckets::new(&mut b, &lens, cap).unwrap();
        buckets.begin(transport).unwrap();
        let mut feed = BucketFeed {
            buckets: &mut buckets,
            transport: &mut *transport,
        };
        model
            .backward_notifying(&mut b, &d_scores, &SingleProcess, &mut feed)
            .unwrap();
        buckets
            .finish(&mut b, transport, model.params_mut(), WORLD)
            .unwrap();
        model.params().iter().map(|p| p.grad.clone()).collect()
    }

    /// Every rank's gradients along `path(rank)`.
    fn all_ranks(path: impl Fn(usize) -> Path + Sync) -> Vec<Vec<Vec<f32>>> {
        let groups = ThreadGroup::new(WORLD, Duration::from_secs(120));
        std::thread::scope(|s| {
            let handles: Vec<_> = groups
                .into_iter()
                .enumerate()
                .map(|(rank, comm)| {
                    let path = &path;
                    s.spawn(move || averaged_gradients(rank, &comm, path(rank)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    fn bits(ranks: &[Vec<Vec<f32>>]) -> Vec<Vec<Vec<u32>>> {
        ranks
            .iter()
            .map(|r| {
                r.iter()
                    .map(|g| g.iter().map(|v| v.to_bits()).collect())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn bucketed_averages_are_bitwise_the_per_tensor_averages() {
        let reference = bits(&all_ranks(|_| Path::PerTensor));
        assert!(
            reference[0].iter().flatten().any(|&v| v != 0),
            "the gradients are not all zero"
        );
        assert_eq!(reference[0], reference[1], "every rank holds the average");
        // One bucket for everything, a few buckets, one per tensor.
        for cap in [usize::MAX, 20_000, 0] {
            assert_eq!(
                bits(&all_ranks(|_| Path::Inline(cap))),
                reference,
                "cap {cap}"
            );
        }
        let seconds = ThreadGroup::new(WORLD, Duration::from_secs(120));
        let seconds: Vec<std::sync::Mutex<Option<ThreadGroup>>> = seconds
            .into_iter()
            .map(|g| std::sync::Mutex::new(Some(g)))
            .collect();
        let threaded =
            all_ranks(|rank| Path::Threaded(20_000, seconds[rank].lock().unwrap().take().unwrap()));
        assert_eq!(bits(&threaded), reference);
    }

    #[test]
    fn a_step_left_open_by_a_failure_refuses_the_next() {
        let mut b = CpuBackend::new();
        let mut buckets = GradientBuckets::<CpuBackend>::new(&mut b, &[3, 4], 0).unwrap();
        let mut transport = InlineTransport {
            comm: &SingleProcess,
        };
        buckets.begin(&mut transport).unwrap();
        let error = buckets.begin(&mut transport).unwrap_err();
        assert!(error.to_string().contains("out of step"), "{error}");
    }
}
