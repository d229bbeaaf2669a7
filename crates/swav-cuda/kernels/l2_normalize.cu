// Row-wise L2 normalisation, F.normalize(dim=1): z = x / max(||x||, eps), and its backward
// dx = (dz - z * <z, dz>) / ||x|| when ||x|| > eps, else dz / eps. One block per row; buffers
// f32 or bf16 in any mix (names carry the element types in argument order); the norm and the
// dot product accumulate in f64, as in swav-cpu.

template <class X, class Z>
__device__ void l2_forward_impl(const X* x, size_t cols, float eps, Z* z) {
    __shared__ double scratch[32];
    const size_t base = (size_t)blockIdx.x * cols;
    double s = 0.0;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) {
        const double v = load(x, base + c);
        s += v * v;
    }
    s = block_reduce<SumOp>(s, scratch);
    const float denom = fmaxf((float)sqrt(s), eps);
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) store(z, base + c, load(x, base + c) / denom);
}

template <class DZ, class X, class Z, class DX>
__device__ void l2_backward_impl(const DZ* dz, const X* x, const Z* z, size_t cols, float eps,
                                 DX* dx) {
    __shared__ double scratch[32];
    const size_t base = (size_t)blockIdx.x * cols;
    double ss = 0.0, dot_sum = 0.0;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) {
        const double v = load(x, base + c);
        ss += v * v;
        dot_sum += (double)load(z, base + c) * (double)load(dz, base + c);
    }
    ss = block_reduce<SumOp>(ss, scratch);
    dot_sum = block_reduce<SumOp>(dot_sum, scratch);
    const float norm = (float)sqrt(ss);
    const float dot = (float)dot_sum;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) {
        const float g = load(dz, base + c);
        const float out = norm > eps ? (g - load(z, base + c) * dot) / norm : g / eps;
        store(dx, base + c, out);
    }
}

#define L2_FORWARD(XS, X, ZS, Z)                                                                \
    extern "C" __global__ void l2_normalize_forward_##XS##_##ZS(const X* x, size_t cols,         \
                                                                float eps, Z* z) {               \
        l2_forward_impl(x, cols, eps, z);                                                        \
    }
L2_FORWARD(f32, float, f32, float)
L2_FORWARD(f32, float, bf16, bf16)
L2_FORWARD(bf16, bf16, f32, float)
L2_FORWARD(bf16, bf16, bf16, bf16)

#define L2_BACKWARD(NAME, DZ, X, Z, DX)                                                         \
    extern "C" __global__ void NAME(const DZ* dz, const X* x, const Z* z, size_t cols, float eps, \
                                    DX* dx) {                                                    \
        l2_backward_impl(dz, x, z, cols, eps, dx);                                               \
    }
L2_BACKWARD(l2_normalize_backward_f32_f32_f32_f32, float, float, float, float)
L2_BACKWARD(l2_normalize_backward_f32_f32_f32_bf16, float, float, float, bf16)
L2_BACKWARD(l2_normalize_backward_f32_f32_bf16_f32, float, float, bf16, float)
L2_BACKWARD(l2_normalize_backward_f32_f32_bf16_bf16, float, float, bf16, bf16)
L2_BACKWARD(l2_normalize_backward_f32_bf16_f32_f32, float, bf16, float, float)
L2_BACKWARD(l2_normalize_backward_f32_bf16_f32_bf16, float, bf16, float, bf16)
L2_BACKWARD(l2_normalize_backward_f32_bf16_bf16_f32, float, bf16, bf16, float)
L2_BACKWARD(l2_normalize_backward_f32_bf16_bf16_bf16, float, bf16, bf16, bf16)
L2_BACKWARD(l2_normalize_backward_bf16_f32_f32_f32, bf16, float, float, float)
L2_BACKWARD(l2_normalize_backward_bf16_f32_f32_bf16, bf16, float, float, bf16)
L2_BACKWARD(l2_normalize_backward_bf16_f32_bf16_f32, bf16, float, bf16, float)
L2_BACKWARD(l2_normalize_backward_bf16_f32_bf16_bf16, bf16, float, bf16, bf16)
L2_BACKWARD(l2_normalize_backward_bf16_bf16_f32_f32, bf16, bf16, float, float)
L2_BACKWARD(l2_normalize_backward_bf16_bf16_f32_bf16, bf16, bf16, float, bf16)
L2_BACKWARD(l2_normalize_backward_bf16_bf16_bf16_f32, bf16, bf16, bf16, float)
L2_BACKWARD(l2_normalize_backward_bf16_bf16_bf16_bf16, bf16, bf16, bf16, bf16)
