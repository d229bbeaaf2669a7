// Epilogues of the linear layers (the products themselves run in cuBLAS): the bias added to
// an f32 product and written in the output's element type, and the bias gradient
// dbias += sum over rows of dy, a deterministic column reduction.

// y[r, c] = product[r, c] + bias[c]; `product` may alias `y` when Y is f32.
template <class Y>
__device__ void add_bias_rows_impl(const float* product, size_t rows, size_t cols,
                                   const float* bias, Y* y) {
    GRID_STRIDE(i, rows * cols) store(y, i, product[i] + bias[i % cols]);
}

template <class DY>
__device__ void column_sums_accumulate_impl(const DY* dy, size_t rows, size_t cols, float* out,
                                            float* partials, u32* counters, u32 chunks,
                                            size_t rows_per_chunk) {
    const size_t col = (size_t)blockIdx.x * COL_TILE + threadIdx.x;
    float v[1] = {0.0f};
    if (col < cols) {
        CHUNK_ROWS(r, rows, rows_per_chunk) v[0] += load(dy, r * cols + col);
    }
    column_block_partials<1, SumOp>(v, partials, cols, chunks);
    if (!arrive_last(counters + blockIdx.x, chunks)) return;
    if (threadIdx.y == 0 && col < cols) out[col] += column_total<SumOp>(partials, 0, cols, chunks, col);
}

#define ADD_BIAS_ROWS(YS, Y)                                                                    \
    extern "C" __global__ void add_bias_rows_##YS(const float* product, size_t rows, size_t cols, \
                                                  const float* bias, Y* y) {                     \
        add_bias_rows_impl(product, rows, cols, bias, y);                                        \
    }
ADD_BIAS_ROWS(f32, float)
ADD_BIAS_ROWS(bf16, bf16)

#define COLUMN_SUMS_ACCUMULATE(DS, DY)                                                          \
    extern "C" __global__ void column_sums_accumulate_##DS(                                      \
        const DY* dy, size_t rows, size_t cols, float* out, float* partials, u32* counters,      \
        u32 chunks, size_t rows_per_chunk) {                                                     \
        column_sums_accumulate_impl(dy, rows, cols, out, partials, counters, chunks,             \
                                    rows_per_chunk);                                             \
    }
COLUMN_SUMS_ACCUMULATE(f32, float)
COLUMN_SUMS_ACCUMULATE(bf16, bf16)
