// The SwAV head operations on f32 buffers (swav_core::HeadOps): Sinkhorn's exponentials, row
// and column sums and divisions, the stable log-softmax of the loss, row L2 normalisation and
// the log-domain Sinkhorn primitives. Each kernel mirrors swav_core::SliceOps operation by
// operation (same operand order, two divisions where it divides twice, no fused multiply-add:
// this module is compiled with --fmad=false), so only reduction order and the last ulp of
// exp/log differ from the reference.
//
// Row kernels run one block per row; column kernels use the deterministic column reduction of
// the prelude (partials + last block), with the chunking chosen on the host from the shape.

// x[i] /= s[0]
extern "C" __global__ void div_by_scalar(float* x, size_t n, const float* s) {
    const float d = s[0];
    GRID_STRIDE(i, n) x[i] = x[i] / d;
}

// out[i] = exp(x[i] / eps - shift[0] / eps), or exp(x[i] / eps) when shift is null
extern "C" __global__ void exp_div(const float* x, size_t n, float eps, const float* shift, float* out) {
    if (shift == nullptr) {
        GRID_STRIDE(i, n) out[i] = expf(x[i] / eps);
    } else {
        const float m = shift[0] / eps;
        GRID_STRIDE(i, n) out[i] = expf(x[i] / eps - m);
    }
}

// out[r] = sum_c m[r, c]   (one block per row)
extern "C" __global__ void row_sums(const float* m, size_t cols, float* out) {
    __shared__ float scratch[32];
    const float* row = m + (size_t)blockIdx.x * cols;
    float s = 0.0f;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) s += row[c];
    s = block_reduce<SumOp>(s, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// out[c] = sum_r m[r, c]
extern "C" __global__ void col_sums(const float* m, size_t rows, size_t cols, float* out,
                                    float* partials, u32* counters, u32 chunks,
                                    size_t rows_per_chunk) {
    const size_t col = (size_t)blockIdx.x * COL_TILE + threadIdx.x;
    float v[1] = {0.0f};
    if (col < cols) {
        CHUNK_ROWS(r, rows, rows_per_chunk) v[0] += m[r * cols + col];
    }
    column_block_partials<1, SumOp>(v, partials, cols, chunks);
    if (!arrive_last(counters + blockIdx.x, chunks)) return;
    if (threadIdx.y == 0 && col < cols) out[col] = column_total<SumOp>(partials, 0, cols, chunks, col);
}

// m[r, c] = m[r, c] / d[r] / k
extern "C" __global__ void div_rows(float* m, size_t rows, size_t cols, const float* d, float k) {
    GRID_STRIDE(i, rows * cols) m[i] = m[i] / d[i / cols] / k;
}

// m[r, c] = m[r, c] / d[c] / k
extern "C" __global__ void div_cols(float* m, size_t rows, size_t cols, const float* d, float k) {
    GRID_STRIDE(i, rows * cols) m[i] = m[i] / d[i % cols] / k;
}

// m[r, :] /= max(||m[r, :]||_2, eps)   (one block per row; max ignores NaN like f32::max)
extern "C" __global__ void normalize_rows(float* m, size_t cols, float eps) {
    __shared__ float scratch[32];
    float* row = m + (size_t)blockIdx.x * cols;
    float s = 0.0f;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) s += row[c] * row[c];
    s = block_reduce<SumOp>(s, scratch);
    const float norm = fmaxf(sqrtf(s), eps);
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) row[c] = row[c] / norm;
}

// out[r, :] = log_softmax(x[r, :] / tau), max-shifted (one block per row)
extern "C" __global__ void log_softmax_rows(const float* x, size_t cols, float tau, float* out) {
    __shared__ float scratch[32];
    const float* row = x + (size_t)blockIdx.x * cols;
    float* o = out + (size_t)blockIdx.x * cols;
    float m = -INFINITY;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) m = max_nan(m, row[c] / tau);
    m = block_reduce<MaxNanOp>(m, scratch);
    float s = 0.0f;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(row[c] / tau - m);
    s = block_reduce<SumOp>(s, scratch);
    const float lse = m + logf(s);
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) o[c] = row[c] / tau - lse;
}

// out[r, c] += exp(logp[r, c]) * w[r]
extern "C" __global__ void add_exp_weighted_rows(const float* logp, size_t rows, size_t cols,
                                                 const float* w, float* out) {
    GRID_STRIDE(i, rows * cols) out[i] = out[i] + expf(logp[i]) * w[i / cols];
}

// out[c] = max_r (x[r, c] / eps + b[r])   (max ignores NaN like f32::max)
extern "C" __global__ void col_max_biased(const float* x, size_t rows, size_t cols, float eps,
                                          const float* b, float* out, float* partials,
                                          u32* counters, u32 chunks, size_t rows_per_chunk) {
    const size_t col = (size_t)blockIdx.x * COL_TILE + threadIdx.x;
    float v[1] = {-INFINITY};
    if (col < cols) {
        CHUNK_ROWS(r, rows, rows_per_chunk) v[0] = fmaxf(v[0], x[r * cols + col] / eps + b[r]);
    }
    column_block_partials<1, FmaxOp>(v, partials, cols, chunks);
    if (!arrive_last(counters + blockIdx.x, chunks)) return;
    if (threadIdx.y == 0 && col < cols) out[col] = column_total<FmaxOp>(partials, 0, cols, chunks, col);
}

// out[c] = sum_r exp(x[r, c] / eps + b[r] - m[c])
extern "C" __global__ void col_sum_exp_biased(const float* x, size_t rows, size_t cols, float eps,
                                              const float* b, const float* m, float* out,
                                              float* partials, u32* counters, u32 chunks,
                                              size_t rows_per_chunk) {
    const size_t col = (size_t)blockIdx.x * COL_TILE + threadIdx.x;
    float v[1] = {0.0f};
    if (col < cols) {
        const float mc = m[col];
        CHUNK_ROWS(r, rows, rows_per_chunk) v[0] += expf(x[r * cols + col] / eps + b[r] - mc);
    }
    column_block_partials<1, SumOp>(v, partials, cols, chunks);
    if (!arrive_last(counters + blockIdx.x, chunks)) return;
    if (threadIdx.y == 0 && col < cols) out[col] = column_total<SumOp>(partials, 0, cols, chunks, col);
}

// out[r] = log sum_c exp(x[r, c] / eps + a[c]), max-shifted (one block per row)
extern "C" __global__ void row_logsumexp_biased(const float* x, size_t cols, float eps,
                                                const float* a, float* out) {
    __shared__ float scratch[32];
    const float* row = x + (size_t)blockIdx.x * cols;
    float m = -INFINITY;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, row[c] / eps + a[c]);
    m = block_reduce<FmaxOp>(m, scratch);
    float s = 0.0f;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(row[c] / eps + a[c] - m);
    s = block_reduce<SumOp>(s, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = m + logf(s);
}

// out[r, c] = exp(x[r, c] / eps + b[r] + a[c])
extern "C" __global__ void exp_biased(const float* x, size_t rows, size_t cols, float eps,
                                      const float* b, const float* a, float* out) {
    GRID_STRIDE(i, rows * cols) out[i] = expf(x[i] / eps + b[i / cols] + a[i % cols]);
}

// v[i] = -(m[i] + ln s[i]) - ln_k
extern "C" __global__ void neg_log_sum_shifted(const float* m, const float* s, size_t n,
                                               float ln_k, float* v) {
    GRID_STRIDE(i, n) v[i] = -(m[i] + logf(s[i])) - ln_k;
}

// x[i] = -x[i] - c
extern "C" __global__ void negate_minus(float* x, size_t n, float c) {
    GRID_STRIDE(i, n) x[i] = -x[i] - c;
}
