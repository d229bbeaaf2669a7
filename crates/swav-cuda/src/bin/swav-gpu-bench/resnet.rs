//! A SwAV training step of ResNet-50 (torchvision layout, bottlenecks [3, 4, 6, 3]) with
//! multi-crop groups, built directly from the backend's operations: the same sequence of
//! kernels, shapes and data dependencies a training step runs, for timing and memory. It is
//! a benchmark harness, not the model (that is `swav-nn`'s): parameters are initialised
//! with the right scales but nothing here is checked for correctness beyond the loss.

use swav_core::{
    HeadOps, Lars, LossWorkspace, MomentumState, ParamKind, SingleProcess, SinkhornConfig,
    SinkhornWorkspace, SwappedPrediction, sinkhorn, swapped_prediction_loss,
};
use swav_cuda::{
    Conv2dShape, CudaBackend, CudaBuffer, CudaError, LarsParam, Pool2dShape, batch_norm_saved_len,
    batch_norm_stats_len,
};

use crate::timeline::{Category, Timeline};

const BN_EPS: f32 = 1e-5;
const BN_MOMENTUM: f32 = 0.1;
const HIDDEN: usize = 2048;
const FEATURES: usize = 128;
/// Channels of the trunk's output.
const TRUNK_OUT: usize = 2048;

/// A small deterministic generator for initial values (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Uniform in `[-a, a)`.
    pub fn uniform(&mut self, a: f32) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (((z >> 11) as f64 / (1u64 << 52) as f64 - 1.0) * a as f64) as f32
    }
    pub fn vec(&mut self, n: usize, a: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(a)).collect()
    }
}

/// A parameter tensor with its gradient, momentum and optimiser state.
pub struct Param {
    pub value: CudaBuffer,
    pub grad: CudaBuffer,
    pub momentum: CudaBuffer,
    pub state: MomentumState,
    pub kind: ParamKind,
}

impl Param {
    fn new(b: &mut CudaBackend, init: &[f32], kind: ParamKind) -> Result<Self, CudaError> {
        let mut value = b.zeros(init.len())?;
        b.upload(init, &mut value, 0)?;
        Ok(Self {
            value,
            grad: b.zeros(init.len())?,
            momentum: b.zeros(init.len())?,
            state: MomentumState::default(),
            kind,
        })
    }
}

/// A bias-free convolution (OHWI weight).
pub struct Conv {
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    w: Param,
}

impl Conv {
    fn new(
        b: &mut CudaBackend,
        rng: &mut Rng,
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self, CudaError> {
        // Kaiming normal, fan_out, as a uniform of the same standard deviation.
        let std = (2.0 / (cout * kernel * kernel) as f32).sqrt();
        let init = rng.vec(cout * kernel * kernel * cin, std * 3f32.sqrt());
        Ok(Self {
            cin,
            cout,
            kernel,
            stride,
            padding,
            w: Param::new(b, &init, ParamKind::Weight)?,
        })
    }

    fn shape(&self, batch: usize, h: usize, w: usize) -> Conv2dShape {
        Conv2dShape {
            batch,
            in_height: h,
            in_width: w,
            in_channels: self.cin,
            out_channels: self.cout,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
        }
    }
}

/// Batch norm parameters and running statistics.
pub struct Norm {
    c: usize,
    gamma: Param,
    beta: Param,
    running_mean: CudaBuffer,
    running_var: CudaBuffer,
}

impl Norm {
    fn new(b: &mut CudaBackend, c: usize) -> Result<Self, CudaError> {
        let mut running_var = b.zeros(c)?;
        b.fill(&mut running_var, 1.0)?;
        Ok(Self {
            c,
            gamma: Param::new(b, &vec![1.0; c], ParamKind::BiasOrNorm)?,
            beta: Param::new(b, &vec![0.0; c], ParamKind::BiasOrNorm)?,
            running_mean: b.zeros(c)?,
            running_var,
        })
    }

    /// Training-mode forward: statistics of `x`, then `y = bn(x) (+ residual) (ReLU)`.
    fn forward(
        &mut self,
        b: &mut CudaBackend,
        x: &CudaBuffer,
        rows: usize,
        residual: Option<&CudaBuffer>,
        relu: bool,
        y: &mut CudaBuffer,
    ) -> Result<CudaBuffer, CudaError> {
        let mut stats = b.zeros(batch_norm_stats_len(self.c))?;
        let mut saved = b.zeros(batch_norm_saved_len(self.c))?;
        b.batch_norm_stats(x, rows, self.c, &self.running_mean, &mut stats)?;
        b.batch_norm_finalize(
            &stats,
            self.c,
            BN_EPS,
            BN_MOMENTUM,
            &mut self.running_mean,
            &mut self.running_var,
            &mut saved,
        )?;
        b.batch_norm_apply(
            x,
            rows,
            self.c,
            &saved,
            &self.gamma.value,
            &self.beta.value,
            residual,
            relu,
            y,
        )?;
        Ok(saved)
    }

    /// Backward: parameter gradients accumulated, `dx` written.
    fn backward(
        &mut self,
        b: &mut CudaBackend,
        dy: &CudaBuffer,
        x: &CudaBuffer,
        relu_output: Option<&CudaBuffer>,
        rows: usize,
        saved: &CudaBuffer,
        dx: &mut CudaBuffer,
    ) -> Result<(), CudaError> {
        let mut sums = b.zeros(batch_norm_stats_len(self.c))?;
        b.batch_norm_backward_reduce(
            dy,
            x,
            relu_output,
            rows,
            self.c,
            saved,
            &mut sums,
            &mut self.gamma.grad,
            &mut self.beta.grad,
        )?;
        b.batch_norm_backward_apply(
            dy,
            x,
            relu_output,
            rows,
            self.c,
            saved,
            &self.gamma.value,
            Some(&sums),
            dx,
        )
    }

    fn params(&mut self) -> [&mut Param; 2] {
        [&mut self.gamma, &mut self.beta]
    }
}

/// One bottleneck: 1×1, 3×3 (strided), 1×1, and the projection shortcut on the first
/// block of a stage.
pub struct Bottleneck {
    conv1: Conv,
    bn1: Norm,
    conv2: Conv,
    bn2: Norm,
    conv3: Conv,
    bn3: Norm,
    down: Option<(Conv, Norm)>,
}

/// What one bottleneck keeps from its forward pass for its backward pass.
struct BottleneckActs {
    h: usize,
    w: usize,
    t1: CudaBuffer,
    r1: CudaBuffer,
    t2: CudaBuffer,
    r2: CudaBuffer,
    t3: CudaBuffer,
    shortcut: Option<(CudaBuffer, CudaBuffer, CudaBuffer)>,
    out: CudaBuffer,
    saved: [CudaBuffer; 3],
}

/// ResNet-50 with the SwAV projection head and prototypes.
pub struct SwavResNet50 {
    stem: Conv,
    stem_bn: Norm,
    blocks: Vec<Bottleneck>,
    head1: (Param, Param),
    head_bn: Norm,
    head2: (Param, Param),
    prototypes: Param,
    prototype_count: usize,
}

/// Everything one resolution group keeps for its backward pass.
pub struct GroupActs {
    pub batch: usize,
    pub resolution: usize,
    pub input: CudaBuffer,
    stem: Option<(CudaBuffer, CudaBuffer, CudaBuffer, CudaBuffer)>,
    blocks: Vec<BottleneckActs>,
    features: Option<CudaBuffer>,
}

impl GroupActs {
    /// A group of `batch` images at `resolution`², with random NHWC input.
    pub fn new(
        b: &mut CudaBackend,
        rng: &mut Rng,
        batch: usize,
        resolution: usize,
    ) -> Result<Self, CudaError> {
        let data = rng.vec(batch * resolution * resolution * 3, 1.7);
        let mut input = b.alloc_activation(data.len())?;
        b.upload(&data, &mut input, 0)?;
        Ok(Self {
            batch,
            resolution,
            input,
            stem: None,
            blocks: Vec::new(),
            features: None,
        })
    }

    /// Values per image group, for the uploader.
    pub fn input_len(&self) -> usize {
        self.batch * self.resolution * self.resolution * 3
    }
}

impl SwavResNet50 {
    pub fn new(b: &mut CudaBackend, prototypes: usize) -> Result<Self, CudaError> {
        let mut rng = Rng::new(2020);
        let stem = Conv::new(b, &mut rng, 3, 64, 7, 2, 3)?;
        let stem_bn = Norm::new(b, 64)?;
        let mut blocks = Vec::new();
        let mut cin = 64;
        for (stage, (&planes, &count)) in [64usize, 128, 256, 512]
            .iter()
            .zip(&[3usize, 4, 6, 3])
            .enumerate()
        {
            for i in 0..count {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let cout = planes * 4;
                let down = if i == 0 {
                    Some((
                        Conv::new(b, &mut rng, cin, cout, 1, stride, 0)?,
                        Norm::new(b, cout)?,
                    ))
                } else {
                    None
                };
                blocks.push(Bottleneck {
                    conv1: Conv::new(b, &mut rng, cin, planes, 1, 1, 0)?,
                    bn1: Norm::new(b, planes)?,
                    conv2: Conv::new(b, &mut rng, planes, planes, 3, stride, 1)?,
                    bn2: Norm::new(b, planes)?,
                    conv3: Conv::new(b, &mut rng, planes, cout, 1, 1, 0)?,
                    bn3: Norm::new(b, cout)?,
                    down,
                });
                cin = cout;
            }
        }
        let linear = |b: &mut CudaBackend,
                      rng: &mut Rng,
                      fin: usize,
                      fout: usize|
         -> Result<(Param, Param), CudaError> {
            let bound = 1.0 / (fin as f32).sqrt();
            Ok((
                Param::new(b, &rng.vec(fout * fin, bound), ParamKind::Weight)?,
                Param::new(b, &rng.vec(fout, bound), ParamKind::BiasOrNorm)?,
            ))
        };
        let head1 = linear(b, &mut rng, TRUNK_OUT, HIDDEN)?;
        let head_bn = Norm::new(b, HIDDEN)?;
        let head2 = linear(b, &mut rng, HIDDEN, FEATURES)?;
        let bound = 1.0 / (FEATURES as f32).sqrt();
        let prototypes_init = rng.vec(prototypes * FEATURES, bound);
        Ok(Self {
            stem,
            stem_bn,
            blocks,
            head1,
            head_bn,
            head2,
            prototypes: Param::new(b, &prototypes_init, ParamKind::Weight)?,
            prototype_count: prototypes,
        })
    }

    /// Number of parameter values (for the report).
    pub fn parameter_count(&mut self) -> usize {
        self.params().iter().map(|p| p.value.len()).sum()
    }

    fn params(&mut self) -> Vec<&mut Param> {
        let mut out: Vec<&mut Param> = vec![&mut self.stem.w];
        out.extend(self.stem_bn.params());
        for blk in &mut self.blocks {
            out.push(&mut blk.conv1.w);
            out.extend(blk.bn1.params());
            out.push(&mut blk.conv2.w);
            out.extend(blk.bn2.params());
            out.push(&mut blk.conv3.w);
            out.extend(blk.bn3.params());
            if let Some((conv, bn)) = &mut blk.down {
                out.push(&mut conv.w);
                out.extend(bn.params());
            }
        }
        out.push(&mut self.head1.0);
        out.push(&mut self.head1.1);
        out.extend(self.head_bn.params());
        out.push(&mut self.head2.0);
        out.push(&mut self.head2.1);
        out.push(&mut self.prototypes);
        out
    }

    /// One SwAV step on `groups` (crop-major, `crops_per_group` crops each); returns the loss.
    pub fn step(
        &mut self,
        b: &mut CudaBackend,
        groups: &mut [GroupActs],
        crops_per_group: &[usize],
        lars: &Lars<f32>,
        lr: f32,
        t: &mut Timeline,
    ) -> Result<f32, CudaError> {
        for p in self.params() {
            b.fill(&mut p.grad, 0.0)?;
        }
        t.mark(Category::Optimizer)?;
        let (rows, k) = (
            groups.iter().map(|g| g.batch).sum::<usize>(),
            self.prototype_count,
        );
        b.normalize_rows(&mut self.prototypes.value, k, FEATURES, 1e-12)?;
        t.mark(Category::Head)?;

        for g in groups.iter_mut() {
            self.forward_trunk(b, g, t)?;
        }
        // Head on all crops at once.
        let mut features = b.alloc_activation(rows * TRUNK_OUT)?;
        let mut offset = 0;
        for g in groups.iter() {
            let f = g.features.as_ref().expect("forward ran");
            b.copy(f, 0, &mut features, offset, g.batch * TRUNK_OUT)?;
            offset += g.batch * TRUNK_OUT;
        }
        let mut h1 = b.alloc_activation(rows * HIDDEN)?;
        b.linear_forward(
            &features,
            &self.head1.0.value,
            Some(&self.head1.1.value),
            rows,
            TRUNK_OUT,
            HIDDEN,
            &mut h1,
        )?;
        let mut h2 = b.alloc_activation(rows * HIDDEN)?;
        let head_saved = self.head_bn.forward(b, &h1, rows, None, true, &mut h2)?;
        let mut h3 = b.zeros(rows * FEATURES)?;
        b.linear_forward(
            &h2,
            &self.head2.0.value,
            Some(&self.head2.1.value),
            rows,
            HIDDEN,
            FEATURES,
            &mut h3,
        )?;
        let mut z = b.zeros(rows * FEATURES)?;
        b.l2_normalize_rows_forward(&h3, rows, FEATURES, 1e-12, &mut z)?;
        let mut scores = b.zeros(rows * k)?;
        b.matmul_nt(&z, &self.prototypes.value, rows, k, FEATURES, &mut scores)?;

        // Codes for the two 224 crops, loss and its gradient.
        let bs = groups[0].batch / crops_per_group[0];
        let crops: usize = crops_per_group.iter().sum();
        let mut codes = Vec::new();
        let mut sinkhorn_ws = SinkhornWorkspace::new(b, bs, k)?;
        for crop in 0..2 {
            let mut crop_scores = b.zeros(bs * k)?;
            b.copy(&scores, crop * bs * k, &mut crop_scores, 0, bs * k)?;
            let mut q = b.zeros(bs * k)?;
            sinkhorn(
                b,
                &SingleProcess,
                &crop_scores,
                bs,
                k,
                &SinkhornConfig::default(),
                &mut sinkhorn_ws,
                &mut q,
            )
            .map_err(|e| match e {
                swav_core::SinkhornError::Device(d) => d,
                swav_core::SinkhornError::Collective(never) => match never {},
            })?;
            codes.push(q);
        }
        let layout = SwappedPrediction {
            batch: bs,
            crops,
            prototypes: k,
            crops_for_assign: &[0, 1],
            temperature: 0.1f32,
        };
        let mut loss_ws = LossWorkspace::new(b, &layout)?;
        let mut dscores = b.zeros(rows * k)?;
        let loss = swapped_prediction_loss(
            b,
            &layout,
            &scores,
            &codes,
            &mut loss_ws,
            Some(&mut dscores),
        )?;

        // Head backward.
        let mut dz = b.zeros(rows * FEATURES)?;
        b.linear_backward_data(&dscores, &self.prototypes.value, rows, FEATURES, k, &mut dz)?;
        b.linear_backward_weight(
            &dscores,
            &z,
            rows,
            FEATURES,
            k,
            &mut self.prototypes.grad,
            None,
        )?;
        let mut dh3 = b.zeros(rows * FEATURES)?;
        b.l2_normalize_rows_backward(&dz, &h3, &z, rows, FEATURES, 1e-12, &mut dh3)?;
        let mut dh2 = b.alloc_activation(rows * HIDDEN)?;
        b.linear_backward_data(&dh3, &self.head2.0.value, rows, HIDDEN, FEATURES, &mut dh2)?;
        b.linear_backward_weight(
            &dh3,
            &h2,
            rows,
            HIDDEN,
            FEATURES,
            &mut self.head2.0.grad,
            Some(&mut self.head2.1.grad),
        )?;
        let mut dh1 = b.alloc_activation(rows * HIDDEN)?;
        self.head_bn
            .backward(b, &dh2, &h1, Some(&h2), rows, &head_saved, &mut dh1)?;
        let mut dfeatures = b.alloc_activation(rows * TRUNK_OUT)?;
        b.linear_backward_data(
            &dh1,
            &self.head1.0.value,
            rows,
            TRUNK_OUT,
            HIDDEN,
            &mut dfeatures,
        )?;
        b.linear_backward_weight(
            &dh1,
            &features,
            rows,
            TRUNK_OUT,
            HIDDEN,
            &mut self.head1.0.grad,
            Some(&mut self.head1.1.grad),
        )?;
        t.mark(Category::Head)?;

        let mut offset = 0;
        for g in groups.iter_mut() {
            let mut dfeat = b.alloc_activation(g.batch * TRUNK_OUT)?;
            b.copy(&dfeatures, offset, &mut dfeat, 0, g.batch * TRUNK_OUT)?;
            offset += g.batch * TRUNK_OUT;
            t.mark(Category::Head)?;
            self.backward_trunk(b, g, dfeat, t)?;
        }

        let mut params: Vec<LarsParam<'_, swav_cuda::CudaBuffer>> = self
            .params()
            .into_iter()
            .map(|p| LarsParam {
                param: &mut p.value,
                grad: Some(&p.grad),
                momentum: &mut p.momentum,
                state: &mut p.state,
                kind: p.kind,
            })
            .collect();
        b.lars_step(lars, &mut params, lr)?;
        t.mark(Category::Optimizer)?;
        Ok(loss)
    }

    fn forward_trunk(
        &mut self,
        b: &mut CudaBackend,
        g: &mut GroupActs,
        t: &mut Timeline,
    ) -> Result<(), CudaError> {
        let n = g.batch;
        let s = self.stem.shape(n, g.resolution, g.resolution);
        let mut t0 = b.alloc_activation(s.output_len())?;
        b.conv2d_forward(&g.input, &self.stem.w.value, &s, &mut t0, None)?;
        t.mark(Category::Conv)?;
        let rows = s.output_pixels();
        let mut r0 = b.alloc_activation(s.output_len())?;
        let saved0 = self.stem_bn.forward(b, &t0, rows, None, true, &mut r0)?;
        let pool = Pool2dShape {
            batch: n,
            in_height: s.out_height(),
            in_width: s.out_width(),
            channels: 64,
            kernel: 3,
            stride: 2,
            padding: 1,
        };
        let mut m0 = b.alloc_activation(pool.output_len())?;
        b.max_pool2d_forward(&r0, &pool, &mut m0)?;
        t.mark(Category::NormPool)?;

        let (mut h, mut w) = (pool.out_height(), pool.out_width());
        g.blocks.clear();
        for i in 0..self.blocks.len() {
            let input = if i == 0 { &m0 } else { &g.blocks[i - 1].out };
            let acts = forward_block(b, &mut self.blocks[i], input, n, h, w, t)?;
            h = acts_out_dim(&self.blocks[i], h);
            w = acts_out_dim(&self.blocks[i], w);
            g.blocks.push(acts);
        }
        let last = &g.blocks.last().expect("blocks").out;
        let mut features = b.alloc_activation(n * TRUNK_OUT)?;
        b.global_avg_pool_forward(last, n, h * w, TRUNK_OUT, &mut features)?;
        t.mark(Category::NormPool)?;
        g.stem = Some((t0, r0, m0, saved0));
        g.features = Some(features);
        Ok(())
    }

    fn backward_trunk(
        &mut self,
        b: &mut CudaBackend,
        g: &mut GroupActs,
        dfeatures: CudaBuffer,
        t: &mut Timeline,
    ) -> Result<(), CudaError> {
        let n = g.batch;
        let last = g.blocks.last().expect("forward ran");
        let (h, w) = (
            acts_out_dim(self.blocks.last().expect("blocks"), last.h),
            acts_out_dim(self.blocks.last().expect("blocks"), last.w),
        );
        let mut dout = b.alloc_activation(n * h * w * TRUNK_OUT)?;
        b.global_avg_pool_backward(&dfeatures, n, h * w, TRUNK_OUT, &mut dout)?;
        t.mark(Category::NormPool)?;
        let (t0, r0, m0, saved0) = g.stem.take().expect("forward ran");
        for i in (0..self.blocks.len()).rev() {
            let acts = g.blocks.pop().expect("one record per block");
            let input = if i == 0 { &m0 } else { &g.blocks[i - 1].out };
            dout = backward_block(b, &mut self.blocks[i], input, acts, dout, n, t)?;
        }
        let s = self.stem.shape(n, g.resolution, g.resolution);
        let pool = Pool2dShape {
            batch: n,
            in_height: s.out_height(),
            in_width: s.out_width(),
            channels: 64,
            kernel: 3,
            stride: 2,
            padding: 1,
        };
        let mut dr0 = b.alloc_activation(s.output_len())?;
        b.max_pool2d_backward(&dout, &r0, &pool, &mut dr0)?;
        let mut dt0 = b.alloc_activation(s.output_len())?;
        self.stem_bn.backward(
            b,
            &dr0,
            &t0,
            Some(&r0),
            s.output_pixels(),
            &saved0,
            &mut dt0,
        )?;
        t.mark(Category::NormPool)?;
        b.conv2d_backward_filter(&dt0, &g.input, &s, &mut self.stem.w.grad)?;
        t.mark(Category::Conv)?;
        Ok(())
    }
}

/// The spatial size after a block (its 3×3 conv carries the stride).
fn acts_out_dim(blk: &Bottleneck, d: usize) -> usize {
    (d + 2 - 3) / blk.conv2.stride + 1
}

fn forward_block(
    b: &mut CudaBackend,
    blk: &mut Bottleneck,
    input: &CudaBuffer,
    n: usize,
    h: usize,
    w: usize,
    t: &mut Timeline,
) -> Result<BottleneckActs, CudaError> {
    let s1 = blk.conv1.shape(n, h, w);
    let mut t1 = b.alloc_activation(s1.output_len())?;
    b.conv2d_forward(input, &blk.conv1.w.value, &s1, &mut t1, None)?;
    t.mark(Category::Conv)?;
    let mut r1 = b.alloc_activation(s1.output_len())?;
    let saved1 = blk
        .bn1
        .forward(b, &t1, s1.output_pixels(), None, true, &mut r1)?;
    t.mark(Category::NormPool)?;

    let s2 = blk.conv2.shape(n, h, w);
    let mut t2 = b.alloc_activation(s2.output_len())?;
    b.conv2d_forward(&r1, &blk.conv2.w.value, &s2, &mut t2, None)?;
    t.mark(Category::Conv)?;
    let mut r2 = b.alloc_activation(s2.output_len())?;
    let saved2 = blk
        .bn2
        .forward(b, &t2, s2.output_pixels(), None, true, &mut r2)?;
    t.mark(Category::NormPool)?;

    let s3 = blk.conv3.shape(n, s2.out_height(), s2.out_width());
    let mut t3 = b.alloc_activation(s3.output_len())?;
    b.conv2d_forward(&r2, &blk.conv3.w.value, &s3, &mut t3, None)?;
    t.mark(Category::Conv)?;

    let shortcut = match &mut blk.down {
        Some((conv, bn)) => {
            let sd = conv.shape(n, h, w);
            let mut td = b.alloc_activation(sd.output_len())?;
            b.conv2d_forward(input, &conv.w.value, &sd, &mut td, None)?;
            t.mark(Category::Conv)?;
            let mut id = b.alloc_activation(sd.output_len())?;
            let savedd = bn.forward(b, &td, sd.output_pixels(), None, false, &mut id)?;
            Some((td, id, savedd))
        }
        None => None,
    };
    let mut out = b.alloc_activation(s3.output_len())?;
    let residual = shortcut.as_ref().map_or(input, |(_, id, _)| id);
    let saved3 = blk
        .bn3
        .forward(b, &t3, s3.output_pixels(), Some(residual), true, &mut out)?;
    t.mark(Category::NormPool)?;
    Ok(BottleneckActs {
        h,
        w,
        t1,
        r1,
        t2,
        r2,
        t3,
        shortcut,
        out,
        saved: [saved1, saved2, saved3],
    })
}

/// Backward of one bottleneck; consumes `dout` and returns the input gradient.
fn backward_block(
    b: &mut CudaBackend,
    blk: &mut Bottleneck,
    input: &CudaBuffer,
    acts: BottleneckActs,
    mut dout: CudaBuffer,
    n: usize,
    t: &mut Timeline,
) -> Result<CudaBuffer, CudaError> {
    let (s1, s2) = (
        blk.conv1.shape(n, acts.h, acts.w),
        blk.conv2.shape(n, acts.h, acts.w),
    );
    let s3 = blk.conv3.shape(n, s2.out_height(), s2.out_width());
    let [saved1, saved2, saved3] = &acts.saved;
    // g = dout masked by the block's final ReLU: the gradient of bn3's output and of the
    // shortcut.
    b.relu_backward(&mut dout, &acts.out, s3.output_len())?;
    let mut dt3 = b.alloc_activation(s3.output_len())?;
    blk.bn3.backward(
        b,
        &dout,
        &acts.t3,
        None,
        s3.output_pixels(),
        saved3,
        &mut dt3,
    )?;
    t.mark(Category::NormPool)?;
    let mut dr2 = b.alloc_activation(s2.output_len())?;
    b.conv2d_backward_data(&dt3, &blk.conv3.w.value, &s3, &mut dr2, false)?;
    b.conv2d_backward_filter(&dt3, &acts.r2, &s3, &mut blk.conv3.w.grad)?;
    t.mark(Category::Conv)?;
    let mut dt2 = b.alloc_activation(s2.output_len())?;
    blk.bn2.backward(
        b,
        &dr2,
        &acts.t2,
        Some(&acts.r2),
        s2.output_pixels(),
        saved2,
        &mut dt2,
    )?;
    t.mark(Category::NormPool)?;
    let mut dr1 = b.alloc_activation(s1.output_len())?;
    b.conv2d_backward_data(&dt2, &blk.conv2.w.value, &s2, &mut dr1, false)?;
    b.conv2d_backward_filter(&dt2, &acts.r1, &s2, &mut blk.conv2.w.grad)?;
    t.mark(Category::Conv)?;
    let mut dt1 = b.alloc_activation(s1.output_len())?;
    blk.bn1.backward(
        b,
        &dr1,
        &acts.t1,
        Some(&acts.r1),
        s1.output_pixels(),
        saved1,
        &mut dt1,
    )?;
    t.mark(Category::NormPool)?;
    let mut din = b.alloc_activation(s1.input_len())?;
    b.conv2d_backward_data(&dt1, &blk.conv1.w.value, &s1, &mut din, false)?;
    b.conv2d_backward_filter(&dt1, input, &s1, &mut blk.conv1.w.grad)?;
    t.mark(Category::Conv)?;
    match (&mut blk.down, &acts.shortcut) {
        (Some((conv, bn)), Some((td, _, savedd))) => {
            let sd = conv.shape(n, acts.h, acts.w);
            let mut dtd = b.alloc_activation(sd.output_len())?;
            bn.backward(b, &dout, td, None, sd.output_pixels(), savedd, &mut dtd)?;
            t.mark(Category::NormPool)?;
            b.conv2d_backward_data(&dtd, &conv.w.value, &sd, &mut din, true)?;
            b.conv2d_backward_filter(&dtd, input, &sd, &mut conv.w.grad)?;
            t.mark(Category::Conv)?;
        }
        _ => {
            b.axpy(1.0, &dout, 0, &mut din, 0, s1.input_len())?;
            t.mark(Category::NormPool)?;
        }
    }
    Ok(din)
}
