// Batch normalisation over NHWC activations seen as rows x channels, split as the swav-nn
// Backend trait splits it so that synchronised batch norm only needs an all-reduce between the
// steps:
//
//   bn_stats            stats = [sum x (C), sum x^2 (C), rows]            (local reduction)
//   bn_finalize         saved = [mean (C), 1/sqrt(var + eps) (C), count], running stats updated
//   bn_frozen           saved from the running statistics (evaluation)
//   bn_apply            y = (x - mean) * invstd * weight + bias (+ residual) (ReLU), fused
//   bn_backward_reduce  sums = [sum g, sum g * xhat, 0]; dweight += sum g*xhat; dbias += sum g
//   bn_backward_apply   dx = weight * invstd * (g - sum g / N - xhat * sum g*xhat / N)
//
// with g = dy masked by the forward's ReLU output when it had one. Activations are f32 or bf16
// (any mix; kernel names carry the element types in argument order), statistics and parameters
// are always f32 and every sum runs in f32. The element-wise kernels also come in an 8-wide
// vectorised form ("_v8_") for the all-f32 and all-bf16 cases when channels % 8 == 0.

// ----- statistics -----

template <class X>
__device__ void bn_stats_impl(const X* x, size_t rows, size_t channels, float* stats,
                              float* partials, u32* counters, u32 chunks, size_t rows_per_chunk) {
    const size_t col = (size_t)blockIdx.x * COL_TILE + threadIdx.x;
    float v[2] = {0.0f, 0.0f};
    if (col < channels) {
        CHUNK_ROWS(r, rows, rows_per_chunk) {
            const float a = load(x, r * channels + col);
            v[0] += a;
            v[1] += a * a;
        }
    }
    column_block_partials<2, SumOp>(v, partials, channels, chunks);
    if (!arrive_last(counters + blockIdx.x, chunks)) return;
    if (threadIdx.y == 0 && col < channels) {
        stats[col] = column_total<SumOp>(partials, 0, channels, chunks, col);
        stats[channels + col] = column_total<SumOp>(partials, 1, channels, chunks, col);
    }
    if (blockIdx.x == 0 && threadIdx.x == 0 && threadIdx.y == 0) stats[2 * channels] = (float)rows;
}

// One thread per channel.
extern "C" __global__ void bn_finalize(const float* stats, size_t channels, float eps,
                                       float momentum, float* running_mean, float* running_var,
                                       float* saved) {
    const size_t c = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const float count = stats[2 * channels];
    if (c == 0) saved[2 * channels] = count;
    if (c >= channels) return;
    const float mean = stats[c] / count;
    const float var = fmaxf(stats[channels + c] / count - mean * mean, 0.0f);
    saved[c] = mean;
    saved[channels + c] = 1.0f / sqrtf(var + eps);
    const float unbiased = var * count / (count - 1.0f);
    running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean;
    running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased;
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
            float o = (v[k] - saved[c]) * saved[channels + c] * weight[c] + bias[c];
            if (residual != nullptr) o += r[k];
            if (relu != 0) o = o > 0.0f ? o : 0.0f;
            v[k] = o;
        }
        storev<V>(y, i, v);
    }
}

// ----- backward -----

template <class DY, class X, class M>
__device__ void bn_backward_reduce_impl(const DY* dy, const X* x, const M* relu_output,
                                        size_t rows, size_t channels, const float* saved,
                                        float* sums, float* dweight, float* dbias,
                                        float* partials, u32* counters, u32 chunks,
                                        size_t rows_per_chunk) {
    const size_t col = (size_t)blockIdx.x * COL_TILE + threadIdx.x;
    float v[2] = {0.0f, 0.0f};
    if (col < channels) {
        const float mean = saved[col];
        const float invstd = saved[channels + col];
        CHUNK_ROWS(r, rows, rows_per_chunk) {
            const size_t i = r * channels + col;
            float g = load(dy, i);
            if (relu_output != nullptr && load(relu_output, i) <= 0.0f) g = 0.0f;
            const float xhat = (load(x, i) - mean) * invstd;
            v[0] += g;
            v[1] += g * xhat;
        }
    }
    column_block_partials<2, SumOp>(v, partials, channels, chunks);
    if (!arrive_last(counters + blockIdx.x, chunks)) return;
    if (threadIdx.y == 0 && col < channels) {
        const float sum_g = column_total<SumOp>(partials, 0, channels, chunks, col);
        const float sum_gx = column_total<SumOp>(partials, 1, channels, chunks, col);
        sums[col] = sum_g;
        sums[channels + col] = sum_gx;
        dweight[col] += sum_gx;
        dbias[col] += sum_g;
    }
    if (blockIdx.x == 0 && threadIdx.x == 0 && threadIdx.y == 0) sums[2 * channels] = 0.0f;
}

// `sums` null: frozen statistics, dx = weight * invstd * g.
template <int V, class DY, class X, class M, class DX>
__device__ void bn_backward_apply_impl(const DY* dy, const X* x, const M* relu_output,
                                       size_t rows, size_t channels, const float* saved,
                                       const float* weight, const float* sums, DX* dx) {
    const size_t groups = rows * channels / V;
    const float count = saved[2 * channels];
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
        if (sums != nullptr) loadv<V>(x, i, xv);
#pragma unroll
        for (int k = 0; k < V; ++k) {
            const size_t c = c0 + k;
            const float invstd = saved[channels + c];
            const float scale = weight[c] * invstd;
            if (sums == nullptr) {
                g[k] = scale * g[k];
            } else {
                const float xhat = (xv[k] - saved[c]) * invstd;
                g[k] = scale * (g[k] - sums[c] / count - xhat * sums[channels + c] / count);
            }
        }
        storev<V>(dx, i, g);
    }
}

// ----- instantiations -----

#define BN_STATS(XS, X)                                                                         \
    extern "C" __global__ void bn_stats_##XS(const X* x, size_t rows, size_t channels,           \
                                             float* stats, float* partials, u32* counters,       \
                                             u32 chunks, size_t rows_per_chunk) {                \
        bn_stats_impl(x, rows, channels, stats, partials, counters, chunks, rows_per_chunk);     \
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
                                    float* dweight, float* dbias, float* partials,               \
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
