// Whole-buffer reductions in one launch each: sum, max, min (NaN-propagating, like torch),
// sum of squares, the count of non-finite elements and an accumulated dot product.
//
// Every block reduces a grid-stride share of the buffer and publishes one partial; the last
// block to finish adds the partials in block order. The grid size is chosen from the length
// alone (on the host), so the result is bit-for-bit reproducible. Blocks are 256 threads.

#define REDUCE_THREADS 256

struct Identity { __device__ static float map(float v) { return v; } };
struct Square { __device__ static float map(float v) { return v * v; } };

template <class Op, class Map, class T>
__device__ void reduce_impl(const T* x, size_t n, float* partials, u32* counter, float* out) {
    __shared__ float scratch[32];
    float acc = Op::template identity<float>();
    GRID_STRIDE(i, n) acc = Op::combine(acc, Map::map(load(x, i)));
    acc = block_reduce<Op>(acc, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
    if (!arrive_last(counter, gridDim.x)) return;
    float total = Op::template identity<float>();
    for (u32 b = threadIdx.x; b < gridDim.x; b += blockDim.x) total = Op::combine(total, load_fresh(partials, b));
    total = block_reduce<Op>(total, scratch);
    if (threadIdx.x == 0) out[0] = total;
}

// out[0] = the number of NaN or infinite elements (exact; partial counts travel as bits).
template <class T>
__device__ void count_non_finite_impl(const T* x, size_t n, float* partials, u32* counter,
                                      u64* out) {
    __shared__ u32 counts[REDUCE_THREADS];
    u32 count = 0;
    GRID_STRIDE(i, n) count += isfinite(load(x, i)) ? 0u : 1u;
    counts[threadIdx.x] = count;
    __syncthreads();
    if (threadIdx.x == 0) {
        u32 block_count = 0;
        for (u32 t = 0; t < blockDim.x; ++t) block_count += counts[t];
        partials[blockIdx.x] = __uint_as_float(block_count);
    }
    if (!arrive_last(counter, gridDim.x)) return;
    if (threadIdx.x == 0) {
        u64 total = 0;
        for (u32 b = 0; b < gridDim.x; ++b) total += __float_as_uint(load_fresh(partials, b));
        out[0] = total;
    }
}

// acc[0] += alpha * sum_i a[a_offset + i] * b[b_offset + i]
template <class A, class B>
__device__ void dot_accumulate_impl(const A* a, size_t a_offset, const B* b, size_t b_offset,
                                    size_t n, float alpha, float* partials, u32* counter,
                                    float* acc) {
    __shared__ float scratch[32];
    float s = 0.0f;
    GRID_STRIDE(i, n) s += load(a, a_offset + i) * load(b, b_offset + i);
    s = block_reduce<SumOp>(s, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
    if (!arrive_last(counter, gridDim.x)) return;
    float total = 0.0f;
    for (u32 blk = threadIdx.x; blk < gridDim.x; blk += blockDim.x) total += load_fresh(partials, blk);
    total = block_reduce<SumOp>(total, scratch);
    if (threadIdx.x == 0) acc[0] = acc[0] + alpha * total;
}

// The kernel NAME_SUF: x reduced by OP after MAP.
#define REDUCE(NAME, SUF, T, OP, MAP)                                                            \
    extern "C" __global__ void NAME##_##SUF(const T* x, size_t n, float* partials, u32* counter, \
                                          float* out) {                                          \
        reduce_impl<OP, MAP>(x, n, partials, counter, out);                                      \
    }
#define REDUCTIONS(SUF, T)                                                                       \
    REDUCE(reduce_sum, SUF, T, SumOp, Identity)                                                  \
    REDUCE(reduce_max, SUF, T, MaxNanOp, Identity)                                               \
    REDUCE(reduce_min, SUF, T, MinNanOp, Identity)                                               \
    REDUCE(reduce_sum_squares, SUF, T, SumOp, Square)                                            \
    extern "C" __global__ void count_non_finite_##SUF(const T* x, size_t n, float* partials,     \
                                                      u32* counter, u64* out) {                  \
        count_non_finite_impl(x, n, partials, counter, out);                                     \
    }
REDUCTIONS(f32, float)
REDUCTIONS(bf16, bf16)

#define DOT(AS, A, BS, B)                                                                       \
    extern "C" __global__ void dot_accumulate_##AS##_##BS(                                       \
        const A* a, size_t a_offset, const B* b, size_t b_offset, size_t n, float alpha,         \
        float* partials, u32* counter, float* acc) {                                             \
        dot_accumulate_impl(a, a_offset, b, b_offset, n, alpha, partials, counter, acc);         \
    }
DOT(f32, float, f32, float)
DOT(f32, float, bf16, bf16)
DOT(bf16, bf16, f32, float)
DOT(bf16, bf16, bf16, bf16)
