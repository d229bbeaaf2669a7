// Batch normalisation over NHWC activations seen as rows x channels, split as the swav-nn
// Backend trait splits it so that synchronised batch norm only needs an all-reduce between the
// steps:
//
//   bn_stats            stats = [sum (x-k) (C), sum (x-k)^2 (C), rows]    (local reduction,
//                       shifted by k = the running mean, which every rank holds identically)
//   bn_finalize         saved = [mean (C), 1/sqrt(var + eps) (C), count], running stats updated
//   bn_frozen           saved from the running statistics (evaluation)
//   bn_apply            y = (x - mean) * invstd * weight + bias (+ residual) (ReLU), fused
//   bn_backward_reduce  sums = [sum g, sum g * xhat, 0]; dweight += sum g*xhat; dbias += sum g
//   bn_backward_apply   dx = weight * invstd * (g - sum g / N - xhat * sum g*xhat / N)
//
// with g = dy masked by the forward's ReLU output when it had one. Activations are f32 or bf16
// (any mix; kernel names carry the element types in argument order), statistics and parameters
// are always f32. The per-channel sums accumulate in f64 (E[x^2] - E[x]^2 loses too much in
// f32 over a million rows), and the expressions follow swav-cpu's so that the f32
// configuration agrees with it to rounding. The element-wise kernels also come in an 8-wide
// vectorised form ("_v8_") for the all-f32 and all-bf16 cases when channels % 8 == 0.

// ----- statistics -----

template <class X>
__device__ void bn_stats_impl(const X* x, size_t rows, size_t channels, const float* shift,
                              float* stats, double* partials, u32* counters, u32 chunks,
                              size_t rows_per_chunk) {
    const size_t col = (size_t)blockIdx.x * COL_TILE + threadIdx.x;
    double v[2] = {0.0, 0.0};
    if (col < channels) {
        const double k = shift[col];
        CHUNK_ROWS(r, rows, rows_per_chunk) {
            const double d = (double)load(x, r * channels + col) - k;
            v[0] += d;
            v[1] += d * d;
        }
    }
    column_block_partials<2, SumOp>(v, partials, channels, chunks);
    if (!arrive_last(counters + blockIdx.x, chunks)) return;
    if (threadIdx.y == 0 && col < channels) {
        stats[col] = (float)column_total<SumOp>(partials, 0, channels, chunks, col);
        stats[channels + col] = (float)column_total<SumOp>(partials, 1, channels, chunks, col);
    }
    if (blockIdx.x == 0 && threadIdx.x == 0 && threadIdx.y == 0) stats[2 * channels] = (float)rows;
}

// One thread per channel, in f64 like swav-cpu; `stats` are shifted by the running mean; the
// unbiased correction is 1 for a count of 1.
extern "C" __global__ void bn_finalize(const float* stats, size_t channels, float eps,
                                       float momentum, float* running_mean, float* running_var,
                                       float* saved) {
    const size_t c = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const double count = stats[2 * channels];
    if (c == 0) saved[2 * channels] = (float)count;
    if (c >= channels) return;
    const double correction = count > 1.0 ? count / (count - 1.0) : 1.0;
    const double shifted = (double)stats[c] / count;
    const double var = fmax((double)stats[channels + c] / count - shifted * shifted, 0.0);
    const double mean = (double)running_mean[c] + shifted;
    saved[c] = (float)mean;
    saved[channels + c] = (float)(1.0 / sqrt(var + (double)eps));
    running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * (float)mean;
    running_var[c] = (1.0f - momentum) * running_var[c] + momentum * (float)(var * correction);
}

extern "C" __global__ void bn_frozen(const float* running_mean, const float* running_var,
                                     size_t channels, float eps, float* saved) {
    const size_t c = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c == 0) saved[2 * channels] = 0.0f;
    if (c >= channels) return;
    saved[c] = running_mean[c];
    saved[channels + c] = 1.0f / sqrtf(running_var[c] + eps);
}

// ----- forward application -----

// y = x * scale + shift with scale = weight * invstd, shift = bias - mean * scale (+ residual),
// then ReLU (NaN passes through, as in swav-cpu).
template <int V, class X, class R, class Y>
__device__ void bn_apply_impl(const X* x, size_t rows, size_t channels, const float* saved,
                              const float* weight, const float* bias, const R* residual,
                              int relu, Y* y) {
    const size_t groups = rows * channels / V;
    GRID_STRIDE(grp, groups) {
        const size_t i = grp * V;
        const size_t c0 = i % channels;
        float v[V];
        loadv<V>(x, i, v);
        float r[V];
        if (residual != nullptr) loadv<V>(residual, i, r);
#pragma unroll
        for (int k = 0; k < V; ++k) {
            const size_t c = c0 + k;
            const float scale = weight[c] * saved[channels + c];
            const float shift = bias[c] - saved[c] * scale;
            float o = v[k] * scale + shift;
            if (residual != nullptr) o += r[k];
            if (relu != 0 && o < 0.0f) o = 0.0f;
            v[k] = o;
        }
        storev<V>(y, i, v);
    }
}

// ----- backward -----

// sum g and sum g * (x - mean) accumulate in f64; the latter is scaled by invstd at the end.
template <class DY, class X, class M>
__device__ void bn_backward_reduce_impl(const DY* dy, const X* x, const M* relu_output,
                                        size_t rows, size_t channels, const float* saved,
                                        float* sums, float* dweight, float* dbias,
                                        double* partials, u32* counters, u32 chunks,
                                        size_t rows_per_chunk) {
    const size_t col = (size_t)blockIdx.x * COL_TILE + threadIdx.x;
    double v[2] = {0.0, 0.0};
    if (col < channels) {
        const float mean = saved[col];
        CHUNK_ROWS(r, rows, rows_per_chunk) {
            const size_t i = r * channels + col;
            float g = load(dy, i);
            if (relu_output != nullptr && load(relu_output, i) <= 0.0f) g = 0.0f;
            v[0] += (double)g;
            v[1] += (double)g * (double)(load(x, i) - mean);
        }
    }
    column_block_partials<2, SumOp>(v, partials, channels, chunks);
    if (!arrive_last(counters + blockIdx.x, chunks)) return;
    if (threadIdx.y == 0 && col < channels) {
        const float sum_g = (float)column_total<SumOp>(partials, 0, channels, chunks, col);
        const float sum_gx = (float)(column_total<SumOp>(partials, 1, channels, chunks, col) *
                                     (double)saved[channels + col]);
        sums[col] = sum_g;
        sums[channels + col] = sum_gx;
        dbias[col] += sum_g;
        dweight[col] += sum_gx;
    }
    if (blockIdx.x == 0 && threadIdx.x == 0 && threadIdx.y == 0) sums[2 * channels] = 0.0f;
}

// dx = a * (g - mean(g) - (x - mean) * mean(g * xhat) * invstd) with a = weight * invstd;
// `sums` null (frozen statistics): dx = a * g.
template <int V, class DY, class X, class M, class DX>
__device__ void bn_backward_apply_impl(const DY* dy, const X* x, const M* relu_output,
                                       size_t rows, size_t channels, const float* saved,
                                       const float* weight, const float* sums, DX* dx) {
    const size_t groups = rows * channels / V;
    // One division per thread: the element loop multiplies by the reciprocal of the count.
    const float inv_count = 1.0f / saved[2 * channels];
    GRID_STRIDE(grp, groups) {
        const size_t i = grp * V;
        const size_t c0 = i % channels;
        float g[V];
        loadv<V>(dy, i, g);
        if (relu_output != nullptr) {
            float m[V];
            loadv<V>(relu_output, i, m);
#pragma unroll
            for (int k = 0; k < V; ++k)
                if (m[k] <= 0.0f) g[k] = 0.0f;
        }
        float xv[V];
        loadv<V>(x, i, xv);
#pragma unroll
        for (int k = 0; k < V; ++k) {
            const size_t c = c0 + k;
            const float invstd = saved[channels + c];
            const float a = weight[c] * invstd;
            const float mean_g = sums != nullptr ? sums[c] * inv_count : 0.0f;
            const float mean_gx = sums != nullptr ? sums[channels + c] * inv_count * invstd : 0.0f;
            g[k] = a * (g[k] - mean_g - (xv[k] - saved[c]) * mean_gx);
        }
        storev<V>(dx, i, g);
    }
}

// ----- instantiations -----

#define BN_STATS(XS, X)                                                                         \
    extern "C" __global__ void bn_stats_##XS(const X* x, size_t rows, size_t channels,           \
                                             const float* shift, float* stats, double* partials, \
                                             u32* counters, u32 chunks, size_t rows_per_chunk) { \
        bn_stats_impl(x, rows, channels, shift, stats, partials, counters, chunks,              \
                      rows_per_chunk);                                                           \
    }
BN_STATS(f32, float)
BN_STATS(bf16, bf16)

#define BN_APPLY(NAME, V, X, R, Y)                                                              \
    extern "C" __global__ void NAME(const X* x, size_t rows, size_t channels, const float* saved, \
                                    const float* weight, const float* bias, const R* residual,   \
                                    int relu, Y* y) {                                            \
        bn_apply_impl<V>(x, rows, channels, saved, weight, bias, residual, relu, y);            \
    }
BN_APPLY(bn_apply_f32_f32_f32, 1, float, float, float)
BN_APPLY(bn_apply_f32_f32_bf16, 1, float, float, bf16)
BN_APPLY(bn_apply_f32_bf16_f32, 1, float, bf16, float)
BN_APPLY(bn_apply_f32_bf16_bf16, 1, float, bf16, bf16)
BN_APPLY(bn_apply_bf16_f32_f32, 1, bf16, float, float)
BN_APPLY(bn_apply_bf16_f32_bf16, 1, bf16, float, bf16)
BN_APPLY(bn_apply_bf16_bf16_f32, 1, bf16, bf16, float)
BN_APPLY(bn_apply_bf16_bf16_bf16, 1, bf16, bf16, bf16)
BN_APPLY(bn_apply_v8_f32, 8, float, float, float)
BN_APPLY(bn_apply_v8_bf16, 8, bf16, bf16, bf16)

#define BN_BACKWARD_REDUCE(NAME, DY, X, M)                                                      \
    extern "C" __global__ void NAME(const DY* dy, const X* x, const M* relu_output, size_t rows,  \
                                    size_t channels, const float* saved, float* sums,            \
                                    float* dweight, float* dbias, double* partials,              \
                                    u32* counters, u32 chunks, size_t rows_per_chunk) {          \
        bn_backward_reduce_impl(dy, x, relu_output, rows, channels, saved, sums, dweight, dbias, \
                                partials, counters, chunks, rows_per_chunk);                    \
    }
BN_BACKWARD_REDUCE(bn_backward_reduce_f32_f32_f32, float, float, float)
BN_BACKWARD_REDUCE(bn_backward_reduce_f32_f32_bf16, float, float, bf16)
BN_BACKWARD_REDUCE(bn_backward_reduce_f32_bf16_f32, float, bf16, float)
BN_BACKWARD_REDUCE(bn_backward_reduce_f32_bf16_bf16, float, bf16, bf16)
BN_BACKWARD_REDUCE(bn_backward_reduce_bf16_f32_f32, bf16, float, float)
BN_BACKWARD_REDUCE(bn_backward_reduce_bf16_f32_bf16, bf16, float, bf16)
BN_BACKWARD_REDUCE(bn_backward_reduce_bf16_bf16_f32, bf16, bf16, float)
BN_BACKWARD_REDUCE(bn_backward_reduce_bf16_bf16_bf16, bf16, bf16, bf16)

#define BN_BACKWARD_APPLY(NAME, V, DY, X, M, DX)                                                \
    extern "C" __global__ void NAME(const DY* dy, const X* x, const M* relu_output, size_t rows,  \
                                    size_t channels, const float* saved, const float* weight,    \
                                    const float* sums, DX* dx) {                                 \
        bn_backward_apply_impl<V>(dy, x, relu_output, rows, channels, saved, weight, sums, dx);  \
    }
BN_BACKWARD_APPLY(bn_backward_apply_f32_f32_f32_f32, 1, float, float, float, float)
BN_BACKWARD_APPLY(bn_backward_apply_f32_f32_f32_bf16, 1, float, float, float, bf16)
BN_BACKWARD_APPLY(bn_backward_apply_f32_f32_bf16_f32, 1, float, float, bf16, float)
BN_BACKWARD_APPLY(bn_backward_apply_f32_f32_bf16_bf16, 1, float, float, bf16, bf16)
BN_BACKWARD_APPLY(bn_backward_apply_f32_bf16_f32_f32, 1, float, bf16, float, float)
BN_BACKWARD_APPLY(bn_backward_apply_f32_bf16_f32_bf16, 1, float, bf16, float, bf16)
BN_BACKWARD_APPLY(bn_backward_apply_f32_bf16_bf16_f32, 1, float, bf16, bf16, float)
BN_BACKWARD_APPLY(bn_backward_apply_f32_bf16_bf16_bf16, 1, float, bf16, bf16, bf16)
BN_BACKWARD_APPLY(bn_backward_apply_bf16_f32_f32_f32, 1, bf16, float, float, float)
BN_BACKWARD_APPLY(bn_backward_apply_bf16_f32_f32_bf16, 1, bf16, float, float, bf16)
BN_BACKWARD_APPLY(bn_backward_apply_bf16_f32_bf16_f32, 1, bf16, float, bf16, float)
BN_BACKWARD_APPLY(bn_backward_apply_bf16_f32_bf16_bf16, 1, bf16, float, bf16, bf16)
BN_BACKWARD_APPLY(bn_backward_apply_bf16_bf16_f32_f32, 1, bf16, bf16, float, float)
BN_BACKWARD_APPLY(bn_backward_apply_bf16_bf16_f32_bf16, 1, bf16, bf16, float, bf16)
BN_BACKWARD_APPLY(bn_backward_apply_bf16_bf16_bf16_f32, 1, bf16, bf16, bf16, float)
BN_BACKWARD_APPLY(bn_backward_apply_bf16_bf16_bf16_bf16, 1, bf16, bf16, bf16, bf16)
BN_BACKWARD_APPLY(bn_backward_apply_v8_f32, 8, float, float, float, float)
BN_BACKWARD_APPLY(bn_backward_apply_v8_bf16, 8, bf16, bf16, bf16, bf16)
