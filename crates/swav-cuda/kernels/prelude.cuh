// Shared by every swav-cuda kernel module: element types, loads and stores that widen to f32,
// warp and block reductions, and the "last block finishes" pattern that keeps multi-block
// reductions deterministic in a single launch.
//
// The Rust side prepends this file to each .cu module before handing it to NVRTC.

#include <cuda_bf16.h>

typedef __nv_bfloat16 bf16;
typedef unsigned long long u64;
typedef unsigned int u32;

// NVRTC has no <math.h>; its INFINITY is spelled out here.
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// ----- loads and stores: every computation runs in f32 -----

__device__ __forceinline__ float load(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float load(const bf16* p, size_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(bf16* p, size_t i, float v) { p[i] = __float2bfloat16_rn(v); }

// Eight consecutive elements starting at `i` (a multiple of 8; buffers are 256-byte aligned):
// one 16-byte access for bf16, two for f32.
__device__ __forceinline__ void load8(const float* p, size_t i, float v[8]) {
    const float4 a = *reinterpret_cast<const float4*>(p + i);
    const float4 b = *reinterpret_cast<const float4*>(p + i + 4);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}
__device__ __forceinline__ void load8(const bf16* p, size_t i, float v[8]) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p + i);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
        const float2 f = __bfloat1622float2(h[k]);
        v[2 * k] = f.x;
        v[2 * k + 1] = f.y;
    }
}
__device__ __forceinline__ void store8(float* p, size_t i, const float v[8]) {
    *reinterpret_cast<float4*>(p + i) = make_float4(v[0], v[1], v[2], v[3]);
    *reinterpret_cast<float4*>(p + i + 4) = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void store8(bf16* p, size_t i, const float v[8]) {
    uint4 raw;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) h[k] = __floats2bfloat162_rn(v[2 * k], v[2 * k + 1]);
    *reinterpret_cast<uint4*>(p + i) = raw;
}

// V consecutive elements (V = 1 or 8) starting at `i`, a multiple of V.
template <int V, class T>
__device__ __forceinline__ void loadv(const T* p, size_t i, float v[V]) {
    if constexpr (V == 8) {
        load8(p, i, v);
    } else {
#pragma unroll
        for (int k = 0; k < V; ++k) v[k] = load(p, i + k);
    }
}
template <int V, class T>
__device__ __forceinline__ void storev(T* p, size_t i, const float v[V]) {
    if constexpr (V == 8) {
        store8(p, i, v);
    } else {
#pragma unroll
        for (int k = 0; k < V; ++k) store(p, i + k, v[k]);
    }
}

// Loads that bypass L1, for data another block wrote during this launch.
__device__ __forceinline__ float load_fresh(const float* p, size_t i) { return __ldcg(p + i); }
__device__ __forceinline__ double load_fresh(const double* p, size_t i) { return __ldcg(p + i); }

// ----- NaN handling -----

// max that propagates NaN (torch.max): NaN wins over everything.
__device__ __forceinline__ float max_nan(float a, float b) { return (a > b || a != a) ? a : b; }
// min that propagates NaN (torch.min).
__device__ __forceinline__ float min_nan(float a, float b) { return (a < b || a != a) ? a : b; }

// ----- grid-stride loops over 64-bit index ranges -----

#define GRID_STRIDE(i, n)                                                        \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)(n); \
         i += (size_t)blockDim.x * gridDim.x)

// ----- warp and block reductions (butterfly order: deterministic, result in every lane) -----
//
// An operator has `combine` and `identity` for float and double accumulators.

struct SumOp {
    template <class T> __device__ static T combine(T a, T b) { return a + b; }
    template <class T> __device__ static T identity() { return T(0); }
};
struct MaxNanOp {  // torch.max: NaN propagates
    __device__ static float combine(float a, float b) { return max_nan(a, b); }
    template <class T> __device__ static T identity() { return -INFINITY; }
};
struct MinNanOp {  // torch.min: NaN propagates
    __device__ static float combine(float a, float b) { return min_nan(a, b); }
    template <class T> __device__ static T identity() { return INFINITY; }
};
struct FmaxOp {  // f32::max: NaN is ignored
    __device__ static float combine(float a, float b) { return fmaxf(a, b); }
    template <class T> __device__ static T identity() { return -INFINITY; }
};

template <class Op, class T>
__device__ __forceinline__ T warp_reduce(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = Op::combine(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Reduces one value per thread over a 1-D block (blockDim.x a multiple of 32, at most 1024);
// every thread gets the result. `scratch` holds at least 32 values and may be reused.
template <class Op, class T>
__device__ __forceinline__ T block_reduce(T v, T* scratch) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    v = warp_reduce<Op>(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : Op::template identity<T>();
    return warp_reduce<Op>(v);
}

// The "last block" pattern: each block publishes its partial results, then the block that
// arrives last (counted with one atomic per group of blocks) combines every partial in a fixed
// order and resets the counter to 0 for the next launch. Returns true in the last block.
__device__ __forceinline__ bool arrive_last(u32* counter, u32 blocks_in_group) {
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0 && threadIdx.y == 0) {
        const u32 previous = atomicAdd(counter, 1u);
        last = previous == blocks_in_group - 1;
        if (last) *counter = 0u;
    }
    __syncthreads();
    if (last) __threadfence();
    return last;
}

// ----- column reductions of a rows x cols row-major matrix -----
//
// A block is 32 columns x 8 row lanes; the grid is (ceil(cols / 32), chunks) and chunk `y`
// covers rows [y * rows_per_chunk, (y + 1) * rows_per_chunk). Each of the Q quantities a
// thread accumulates is combined over the 8 lanes and written to
// partials[(q * chunks + chunk) * cols + column]; the last block of each column group then
// combines the chunks in order, so the result only depends on the shape.

#define COL_TILE 32
#define COL_LANES 8

// Combines `values[q]` (q < Q) over the 8 row lanes of the block and writes the block's
// partials. Call arrive_last next.
template <int Q, class Op, class Acc>
__device__ __forceinline__ void column_block_partials(const Acc values[Q], Acc* partials,
                                                      size_t cols, u32 chunks) {
    __shared__ Acc tile[Q][COL_LANES][COL_TILE];
#pragma unroll
    for (int q = 0; q < Q; ++q) tile[q][threadIdx.y][threadIdx.x] = values[q];
    __syncthreads();
    const size_t col = (size_t)blockIdx.x * COL_TILE + threadIdx.x;
    if (threadIdx.y == 0 && col < cols) {
#pragma unroll
        for (int q = 0; q < Q; ++q) {
            Acc s = tile[q][0][threadIdx.x];
#pragma unroll
            for (int l = 1; l < COL_LANES; ++l) s = Op::combine(s, tile[q][l][threadIdx.x]);
            partials[((size_t)q * chunks + blockIdx.y) * cols + col] = s;
        }
    }
}

// In the last block: quantity q combined over every chunk, for one column.
template <class Op, class Acc>
__device__ __forceinline__ Acc column_total(const Acc* partials, int q, size_t cols,
                                            u32 chunks, size_t col) {
    Acc s = load_fresh(partials, (size_t)q * chunks * cols + col);
    for (u32 c = 1; c < chunks; ++c) s = Op::combine(s, load_fresh(partials, ((size_t)q * chunks + c) * cols + col));
    return s;
}

// The rows of this thread's chunk and lane: for (size_t r = ...; r < end; r += COL_LANES).
#define CHUNK_ROWS(r, rows, rows_per_chunk)                                                     \
    for (size_t r = (size_t)blockIdx.y * (rows_per_chunk) + threadIdx.y,                        \
                r##_end = min((size_t)(rows), ((size_t)blockIdx.y + 1) * (rows_per_chunk));     \
         r < r##_end; r += COL_LANES)
