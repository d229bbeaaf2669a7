// SGD with momentum under apex's LARC, exactly as swav_core::Lars (docs/algorithm.md §4.1), for one
// tensor (HeadOps::sgd_momentum_step) and for every parameter of the model in two launches:
//
//   1. lars_norms: each block sums p^2 and g^2 over one chunk of one tensor; the last block to
//      finish adds each tensor's chunks in order and turns the norms into the LARC scaling
//      (the same expression, operand for operand, as Lars::scaling);
//   2. lars_update: each block applies d = scale * (g + wd * p), buf = d (first step) or
//      momentum * buf + d, p -= lr * buf to one chunk, and refreshes the bf16 copy of p used
//      by the convolutions and matrix products, when the tensor has one.
//
// This module is compiled with --fmad=false, so with equal norms the update is bit-identical
// to the host reference.

#define OPT_THREADS 256

// The tensor table built on the host (one u64 array, all sections of length T except the
// last two): p, g, momentum buffer, bf16 copy (0 = none), length, flags, chunk_begin (T + 1
// entries: the first chunk of each tensor, then the total) and chunk_tensor (one per chunk).
#define FLAG_BIAS_OR_NORM 1ull
#define FLAG_FIRST_STEP 2ull

struct TensorTable {
    const u64* base;
    u32 tensors;
    __device__ u64 p(u32 t) const { return base[t]; }
    __device__ u64 g(u32 t) const { return base[tensors + t]; }
    __device__ u64 buf(u32 t) const { return base[2 * (size_t)tensors + t]; }
    __device__ u64 copy(u32 t) const { return base[3 * (size_t)tensors + t]; }
    __device__ u64 len(u32 t) const { return base[4 * (size_t)tensors + t]; }
    __device__ u64 flags(u32 t) const { return base[5 * (size_t)tensors + t]; }
    __device__ u64 chunk_begin(u32 t) const { return base[6 * (size_t)tensors + t]; }
    __device__ u64 chunk_tensor(u32 c) const { return base[7 * (size_t)tensors + 1 + c]; }
};

// One element of the update; p, buf and the optional bf16 copy are written.
__device__ __forceinline__ void sgd_momentum_element(float* p, const float* g, float* buf,
                                                     bf16* copy, size_t i, float grad_scale,
                                                     float weight_decay, float lr,
                                                     float momentum, bool first) {
    const float d = (g[i] + weight_decay * p[i]) * grad_scale;
    const float b = first ? d : momentum * buf[i] + d;
    buf[i] = b;
    const float updated = p[i] - lr * b;
    p[i] = updated;
    if (copy != nullptr) copy[i] = __float2bfloat16_rn(updated);
}

// HeadOps::sgd_momentum_step for one tensor; `copy` may be null.
extern "C" __global__ void sgd_momentum_step(float* p, const float* g, float* buf, bf16* copy,
                                             size_t n, float grad_scale, float weight_decay,
                                             float lr, float momentum, int first) {
    GRID_STRIDE(i, n) sgd_momentum_element(p, g, buf, copy, i, grad_scale, weight_decay, lr, momentum, first != 0);
}

// Lars::scaling, operand for operand.
__device__ __forceinline__ void lars_scaling(float param_norm, float grad_norm, bool bias_or_norm,
                                             float trust, float eps, float weight_decay,
                                             int clip, int exclude_bias_and_norm, float lr,
                                             float* grad_scale, float* decay) {
    const bool excluded = exclude_bias_and_norm != 0 && bias_or_norm;
    if (excluded || param_norm == 0.0f || grad_norm == 0.0f) {
        *grad_scale = 1.0f;
        *decay = 0.0f;
        return;
    }
    float rate = trust * param_norm / (grad_norm + param_norm * weight_decay + eps);
    if (clip != 0) rate = fminf(rate / lr, 1.0f);
    *grad_scale = rate;
    *decay = weight_decay;
}

// Pass 1: per-chunk sums of squares, then (last block) per-tensor norms and scalings.
// partials: 2 floats per chunk; scalings: 2 floats per tensor (grad_scale, weight_decay).
extern "C" __global__ void lars_norms(const u64* table, u32 tensors, u64 chunk_len,
                                      float* partials, u32* counter, float* scalings,
                                      float trust, float eps, float weight_decay, int clip,
                                      int exclude_bias_and_norm, float lr) {
    __shared__ float scratch[32];
    const TensorTable tt{table, tensors};
    const u32 chunk = blockIdx.x;
    const u32 t = (u32)tt.chunk_tensor(chunk);
    const size_t begin = (size_t)(chunk - tt.chunk_begin(t)) * chunk_len;
    const size_t end = min((size_t)tt.len(t), begin + (size_t)chunk_len);
    const float* p = reinterpret_cast<const float*>(tt.p(t));
    const float* g = reinterpret_cast<const float*>(tt.g(t));
    float pp = 0.0f, gg = 0.0f;
    for (size_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
        pp += p[i] * p[i];
        gg += g[i] * g[i];
    }
    pp = block_reduce<SumOp>(pp, scratch);
    gg = block_reduce<SumOp>(gg, scratch);
    if (threadIdx.x == 0) {
        partials[2 * (size_t)chunk] = pp;
        partials[2 * (size_t)chunk + 1] = gg;
    }
    if (!arrive_last(counter, gridDim.x)) return;
    for (u32 u = threadIdx.x; u < tensors; u += blockDim.x) {
        float sp = 0.0f, sg = 0.0f;
        for (u64 c = tt.chunk_begin(u); c < tt.chunk_begin(u + 1); ++c) {
            sp += load_fresh(partials, 2 * c);
            sg += load_fresh(partials, 2 * c + 1);
        }
        const bool bias_or_norm = (tt.flags(u) & FLAG_BIAS_OR_NORM) != 0;
        lars_scaling(sqrtf(sp), sqrtf(sg), bias_or_norm, trust, eps, weight_decay, clip,
                     exclude_bias_and_norm, lr, &scalings[2 * u], &scalings[2 * u + 1]);
    }
}

// Pass 2: the update of every chunk with its tensor's scaling.
extern "C" __global__ void lars_update(const u64* table, u32 tensors, u64 chunk_len,
                                       const float* scalings, float lr, float momentum) {
    const TensorTable tt{table, tensors};
    const u32 chunk = blockIdx.x;
    const u32 t = (u32)tt.chunk_tensor(chunk);
    const size_t begin = (size_t)(chunk - tt.chunk_begin(t)) * chunk_len;
    const size_t end = min((size_t)tt.len(t), begin + (size_t)chunk_len);
    float* p = reinterpret_cast<float*>(tt.p(t));
    const float* g = reinterpret_cast<const float*>(tt.g(t));
    float* buf = reinterpret_cast<float*>(tt.buf(t));
    bf16* copy = reinterpret_cast<bf16*>(tt.copy(t));
    const bool first = (tt.flags(t) & FLAG_FIRST_STEP) != 0;
    const float grad_scale = scalings[2 * t];
    const float decay = scalings[2 * t + 1];
    for (size_t i = begin + threadIdx.x; i < end; i += blockDim.x)
        sgd_momentum_element(p, g, buf, copy, i, grad_scale, decay, lr, momentum, first);
}
