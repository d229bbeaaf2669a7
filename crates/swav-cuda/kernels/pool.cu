// Pooling over NHWC activations (f32 or bf16 in any mix; names carry the element types in
// argument order).
//
// Max pooling: windows that overlap the padding only see their valid pixels; the first maximum
// in window order wins ties and a NaN wins over everything (the last NaN in window order, as
// in swav-cpu; the value propagates). The
// backward pass is deterministic without atomics: max_pool_argmax records, per output, the
// window position of its maximum (one byte), then max_pool_backward gathers, for each input
// pixel, the gradients of the (at most ceil(k/s)^2) windows whose maximum it is, in window
// order.
//
// Global average pooling: y[n, c] = sum_p x[n, p, c] / pixels and its transpose.

struct PoolGeometry {
    size_t batch, in_h, in_w, channels, out_h, out_w;
    int kernel, stride, padding;
};

// The window position (kh * kernel + kw) of the maximum of one output, and the maximum.
template <class X>
__device__ __forceinline__ int window_argmax(const X* x, const PoolGeometry& g, size_t n,
                                             size_t oh, size_t ow, size_t c, float* best) {
    int arg = -1;
    float m = -INFINITY;
    for (int kh = 0; kh < g.kernel; ++kh) {
        const long long ih = (long long)(oh * g.stride) - g.padding + kh;
        if (ih < 0 || ih >= (long long)g.in_h) continue;
        for (int kw = 0; kw < g.kernel; ++kw) {
            const long long iw = (long long)(ow * g.stride) - g.padding + kw;
            if (iw < 0 || iw >= (long long)g.in_w) continue;
            const float v = load(x, ((n * g.in_h + ih) * g.in_w + iw) * g.channels + c);
            if (arg < 0 || v > m || v != v) {
                m = v;
                arg = kh * g.kernel + kw;
            }
        }
    }
    *best = m;
    return arg;
}

__device__ __forceinline__ void decode_output(size_t i, const PoolGeometry& g, size_t* n,
                                              size_t* oh, size_t* ow, size_t* c) {
    *c = i % g.channels;
    size_t rest = i / g.channels;
    *ow = rest % g.out_w;
    rest /= g.out_w;
    *oh = rest % g.out_h;
    *n = rest / g.out_h;
}

template <class X, class Y>
__device__ void max_pool_forward_impl(const X* x, PoolGeometry g, Y* y) {
    GRID_STRIDE(i, g.batch * g.out_h * g.out_w * g.channels) {
        size_t n, oh, ow, c;
        decode_output(i, g, &n, &oh, &ow, &c);
        float m;
        window_argmax(x, g, n, oh, ow, c, &m);
        store(y, i, m);
    }
}

template <class X>
__device__ void max_pool_argmax_impl(const X* x, PoolGeometry g, unsigned char* argmax) {
    GRID_STRIDE(i, g.batch * g.out_h * g.out_w * g.channels) {
        size_t n, oh, ow, c;
        decode_output(i, g, &n, &oh, &ow, &c);
        float m;
        argmax[i] = (unsigned char)window_argmax(x, g, n, oh, ow, c, &m);
    }
}

// dx[n, h, w, c] = sum of dy over the windows whose maximum is (h, w), in window order.
template <class DY, class DX>
__device__ void max_pool_backward_impl(const DY* dy, const unsigned char* argmax, PoolGeometry g,
                                       DX* dx) {
    GRID_STRIDE(i, g.batch * g.in_h * g.in_w * g.channels) {
        const size_t c = i % g.channels;
        size_t rest = i / g.channels;
        const long long w = rest % g.in_w;
        rest /= g.in_w;
        const long long h = rest % g.in_h;
        const size_t n = rest / g.in_h;
        // Outputs whose window [o * s - p, o * s - p + k) contains h: o in [lo, hi].
        const long long ph = h + g.padding, pw = w + g.padding;
        const long long oh_lo = ph - g.kernel + 1 > 0 ? (ph - g.kernel + 1 + g.stride - 1) / g.stride : 0;
        const long long oh_hi = min(ph / g.stride, (long long)g.out_h - 1);
        const long long ow_lo = pw - g.kernel + 1 > 0 ? (pw - g.kernel + 1 + g.stride - 1) / g.stride : 0;
        const long long ow_hi = min(pw / g.stride, (long long)g.out_w - 1);
        float acc = 0.0f;
        for (long long oh = oh_lo; oh <= oh_hi; ++oh) {
            for (long long ow = ow_lo; ow <= ow_hi; ++ow) {
                const int position = (int)((ph - oh * g.stride) * g.kernel + (pw - ow * g.stride));
                const size_t o = ((n * g.out_h + oh) * g.out_w + ow) * g.channels + c;
                if (argmax[o] == position) acc += load(dy, o);
            }
        }
        store(dx, i, acc);
    }
}

// y[n, c] = sum_p x[n, p, c] / pixels   (one thread per (n, c), pixels in order)
template <class X, class Y>
__device__ void global_avg_pool_forward_impl(const X* x, size_t batch, size_t pixels,
                                             size_t channels, Y* y) {
    GRID_STRIDE(i, batch * channels) {
        const size_t n = i / channels, c = i % channels;
        const X* base = x + n * pixels * channels + c;
        float s = 0.0f;
        for (size_t p = 0; p < pixels; ++p) s += load(base, p * channels);
        store(y, i, s / (float)pixels);
    }
}

// dx[n, p, c] = dy[n, c] / pixels
template <class DY, class DX>
__device__ void global_avg_pool_backward_impl(const DY* dy, size_t batch, size_t pixels,
                                              size_t channels, DX* dx) {
    GRID_STRIDE(i, batch * pixels * channels) {
        const size_t c = i % channels;
        const size_t n = i / (pixels * channels);
        store(dx, i, load(dy, n * channels + c) / (float)pixels);
    }
}

#define POOL_PAIR(M) M(f32, float, f32, float) M(f32, float, bf16, bf16) \
                     M(bf16, bf16, f32, float) M(bf16, bf16, bf16, bf16)

#define MAX_POOL_FORWARD(XS, X, YS, Y)                                                          \
    extern "C" __global__ void max_pool_forward_##XS##_##YS(const X* x, PoolGeometry g, Y* y) {   \
        max_pool_forward_impl(x, g, y);                                                          \
    }
POOL_PAIR(MAX_POOL_FORWARD)

#define MAX_POOL_BACKWARD(DS, DY, XS, DX)                                                       \
    extern "C" __global__ void max_pool_backward_##DS##_##XS(const DY* dy,                       \
                                                             const unsigned char* argmax,        \
                                                             PoolGeometry g, DX* dx) {           \
        max_pool_backward_impl(dy, argmax, g, dx);                                               \
    }
POOL_PAIR(MAX_POOL_BACKWARD)

#define MAX_POOL_ARGMAX(XS, X)                                                                  \
    extern "C" __global__ void max_pool_argmax_##XS(const X* x, PoolGeometry g,                  \
                                                    unsigned char* argmax) {                     \
        max_pool_argmax_impl(x, g, argmax);                                                      \
    }
MAX_POOL_ARGMAX(f32, float)
MAX_POOL_ARGMAX(bf16, bf16)

#define GAP_FORWARD(XS, X, YS, Y)                                                               \
    extern "C" __global__ void global_avg_pool_forward_##XS##_##YS(                              \
        const X* x, size_t batch, size_t pixels, size_t channels, Y* y) {                        \
        global_avg_pool_forward_impl(x, batch, pixels, channels, y);                             \
    }
POOL_PAIR(GAP_FORWARD)

#define GAP_BACKWARD(DS, DY, XS, DX)                                                            \
    extern "C" __global__ void global_avg_pool_backward_##DS##_##XS(                             \
        const DY* dy, size_t batch, size_t pixels, size_t channels, DX* dx) {                    \
        global_avg_pool_backward_impl(dy, batch, pixels, channels, dx);                          \
    }
POOL_PAIR(GAP_BACKWARD)
