// Element-wise memory operations on buffers of either element type (f32 or bf16): fill,
// conversion between types (also a plain copy with offsets), scaling, axpy, the ReLU mask, and
// widening rows with zero columns and adding back their leading columns (the padded stem).
// Kernel names end in the element types of their buffer arguments, in argument order.

template <class T>
__device__ void fill_impl(T* out, size_t n, float value) {
    GRID_STRIDE(i, n) store(out, i, value);
}

template <class S, class D>
__device__ void convert_impl(const S* src, size_t src_offset, D* dst, size_t dst_offset, size_t n) {
    GRID_STRIDE(i, n) store(dst, dst_offset + i, load(src, src_offset + i));
}

template <class T>
__device__ void scale_impl(T* x, size_t n, float s) {
    GRID_STRIDE(i, n) store(x, i, load(x, i) * s);
}

// y[y_offset + i] += alpha * x[x_offset + i]
template <class X, class Y>
__device__ void axpy_impl(float alpha, const X* x, size_t x_offset, Y* y, size_t y_offset, size_t n) {
    GRID_STRIDE(i, n) {
        const float prod = alpha * load(x, x_offset + i);
        store(y, y_offset + i, load(y, y_offset + i) + prod);
    }
}

// dy[i] = 0 where relu_output[i] <= 0
template <class D, class M>
__device__ void relu_backward_impl(D* dy, const M* relu_output, size_t n) {
    GRID_STRIDE(i, n) {
        if (load(relu_output, i) <= 0.0f) store(dy, i, 0.0f);
    }
}

// Rows of `src_cols` values widened to `dst_cols` (>= src_cols) with zeros:
// dst[r, c] = c < src_cols ? src[r, c] : 0
template <class S, class D>
__device__ void pad_columns_impl(const S* src, size_t src_cols, D* dst, size_t dst_cols, size_t rows) {
    GRID_STRIDE(i, rows * dst_cols) {
        const size_t r = i / dst_cols, c = i % dst_cols;
        store(dst, i, c < src_cols ? load(src, r * src_cols + c) : 0.0f);
    }
}

// The leading `dst_cols` columns of rows of `src_cols` (>= dst_cols) values, added:
// dst[r, c] += src[r, c]
template <class S, class D>
__device__ void add_columns_impl(const S* src, size_t src_cols, D* dst, size_t dst_cols, size_t rows) {
    GRID_STRIDE(i, rows * dst_cols) {
        const size_t r = i / dst_cols, c = i % dst_cols;
        store(dst, i, load(dst, i) + load(src, r * src_cols + c));
    }
}

#define FOR_EACH_TYPE(M) M(f32, float) M(bf16, bf16)

#define FILL(SUF, T) \
    extern "C" __global__ void fill_##SUF(T* out, size_t n, float value) { fill_impl(out, n, value); }
FOR_EACH_TYPE(FILL)

#define SCALE(SUF, T) \
    extern "C" __global__ void scale_##SUF(T* x, size_t n, float s) { scale_impl(x, n, s); }
FOR_EACH_TYPE(SCALE)

#define CONVERT(SS, S, DS, D)                                                                   \
    extern "C" __global__ void convert_##SS##_##DS(const S* src, size_t src_offset, D* dst,       \
                                                   size_t dst_offset, size_t n) {                \
        convert_impl(src, src_offset, dst, dst_offset, n);                                       \
    }
CONVERT(f32, float, f32, float)
CONVERT(f32, float, bf16, bf16)
CONVERT(bf16, bf16, f32, float)
CONVERT(bf16, bf16, bf16, bf16)

#define AXPY(XS, X, YS, Y)                                                                      \
    extern "C" __global__ void axpy_##XS##_##YS(float alpha, const X* x, size_t x_offset, Y* y,  \
                                                size_t y_offset, size_t n) {                     \
        axpy_impl(alpha, x, x_offset, y, y_offset, n);                                           \
    }
AXPY(f32, float, f32, float)
AXPY(f32, float, bf16, bf16)
AXPY(bf16, bf16, f32, float)
AXPY(bf16, bf16, bf16, bf16)

#define RELU_BACKWARD(DS, D, MS, M)                                                             \
    extern "C" __global__ void relu_backward_##DS##_##MS(D* dy, const M* relu_output, size_t n) { \
        relu_backward_impl(dy, relu_output, n);                                                  \
    }
RELU_BACKWARD(f32, float, f32, float)
RELU_BACKWARD(f32, float, bf16, bf16)
RELU_BACKWARD(bf16, bf16, f32, float)
RELU_BACKWARD(bf16, bf16, bf16, bf16)

extern "C" __global__ void pad_columns_bf16_bf16(const bf16* src, size_t src_cols, bf16* dst,
                                                 size_t dst_cols, size_t rows) {
    pad_columns_impl(src, src_cols, dst, dst_cols, rows);
}

extern "C" __global__ void add_columns_bf16_f32(const bf16* src, size_t src_cols, float* dst,
                                                size_t dst_cols, size_t rows) {
    add_columns_impl(src, src_cols, dst, dst_cols, rows);
}
