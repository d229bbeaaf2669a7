//! Matrix products: strided views over slices, single-threaded sgemm, and a block-parallel
//! product whose split depends only on the shapes.
//!
//! Every product goes through `ndarray::linalg::general_mat_mul`, which hands any strides to
//! matrixmultiply's sgemm (AVX-512/FMA kernels chosen at run time). matrixmultiply's own
//! threading is off: parallelism comes from rayon over blocks of the output, and each block is
//! one single-threaded sgemm. Splitting the output never changes an element's result (its sum
//! over `k` runs in the same order in every block), so a blocked product is bit-identical to
//! the whole one and to itself on any number of threads.

use core::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, Axis, ShapeBuilder};
use rayon::prelude::*;

use crate::partition::{TASKS, split_even};

/// The row and column count a micro-kernel covers; block edges are aligned to it.
const KERNEL_ALIGN: usize = 16;

/// The smallest block side worth a task of its own.
const MIN_BLOCK: usize = 32;

/// A `rows × cols` view of `data` with element strides `row_stride` and `col_stride`.
pub(crate) fn view(
    data: &[f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> ArrayView2<'_, f32> {
    let extent = extent(rows, cols, row_stride, col_stride);
    ArrayView2::from_shape(
        (rows, cols).strides((row_stride, col_stride)),
        &data[..extent],
    )
    .expect("matrix view within its slice")
}

/// The mutable counterpart of [`view`].
pub(crate) fn view_mut(
    data: &mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> ArrayViewMut2<'_, f32> {
    let extent = extent(rows, cols, row_stride, col_stride);
    ArrayViewMut2::from_shape(
        (rows, cols).strides((row_stride, col_stride)),
        &mut data[..extent],
    )
    .expect("matrix view within its slice")
}

/// A row-major `rows × cols` view.
pub(crate) fn rows(data: &[f32], rows: usize, cols: usize) -> ArrayView2<'_, f32> {
    view(data, rows, cols, cols, 1)
}

/// A mutable row-major `rows × cols` view.
pub(crate) fn rows_mut(data: &mut [f32], rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
    view_mut(data, rows, cols, cols, 1)
}

fn extent(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * row_stride + (cols - 1) * col_stride + 1
    }
}

/// `c = alpha·a·b + beta·c`, single-threaded. With `beta == 0`, `c` is not read.
pub(crate) fn gemm(
    alpha: f32,
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    general_mat_mul(alpha, a, b, beta, c);
}

/// Splits `c` into the blocks `row_parts × col_parts` (row-major block order).
pub(crate) fn blocks<'a>(
    c: ArrayViewMut2<'a, f32>,
    row_parts: &[Range<usize>],
    col_parts: &[Range<usize>],
) -> Vec<ArrayViewMut2<'a, f32>> {
    let mut out = Vec::with_capacity(row_parts.len() * col_parts.len());
    for band in split_axis(c, Axis(0), row_parts) {
        out.extend(split_axis(band, Axis(1), col_parts));
    }
    out
}

/// Splits `v` along `axis` at the ends of `parts` (contiguous, starting at 0).
pub(crate) fn split_axis<'a>(
    v: ArrayViewMut2<'a, f32>,
    axis: Axis,
    parts: &[Range<usize>],
) -> Vec<ArrayViewMut2<'a, f32>> {
    let mut out = Vec::with_capacity(parts.len());
    let mut rest = v;
    let mut start = 0;
    for (i, part) in parts.iter().enumerate() {
        debug_assert_eq!(part.start, start);
        if i + 1 == parts.len() {
            out.push(rest);
            break;
        }
        let (head, tail) = rest.split_at(axis, part.end - start);
        out.push(head);
        rest = tail;
        start = part.end;
    }
    out
}

/// The block grid for an `m × n` output: the longer side is halved until there are
/// [`TASKS`] blocks or blocks reach [`MIN_BLOCK`].
pub(crate) fn grid(m: usize, n: usize) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    let (mut mb, mut nb) = (1, 1);
    while mb * nb < TASKS {
        let (rows, cols) = (m / mb, n / nb);
        if rows >= cols && rows >= 2 * MIN_BLOCK {
            mb *= 2;
        } else if cols >= 2 * MIN_BLOCK {
            nb *= 2;
        } else if rows >= 2 * MIN_BLOCK {
            mb *= 2;
        } else {
            break;
        }
    }
    (
        split_even(m, mb, KERNEL_ALIGN),
        split_even(n, nb, KERNEL_ALIGN),
    )
}

/// `c = alpha·a·b + beta·c` in parallel over a shape-determined grid of output blocks.
pub(crate) fn par_gemm(
    alpha: f32,
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    beta: f32,
    c: ArrayViewMut2<'_, f32>,
) {
    let (m, n) = c.dim();
    if m == 0 || n == 0 {
        return;
    }
    let (row_parts, col_parts) = grid(m, n);
    let tasks: Vec<_> = blocks(c, &row_parts, &col_parts)
        .into_iter()
        .enumerate()
        .map(|(i, block)| {
            let rows = row_parts[i / col_parts.len()].clone();
            let cols = col_parts[i % col_parts.len()].clone();
            (rows, cols, block)
        })
        .collect();
    tasks.into_par_iter().for_each(|(rows, cols, mut block)| {
        let a = a.slice(ndarray::s![rows, ..]);
        let b = b.slice(ndarray::s![.., cols]);
        gemm(alpha, &a, &b, beta, &mut block);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn parallel_product_matches_the_naive_one_and_the_single_call_bitwise() {
        let (m, k, n) = (150, 70, 90);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let mut c_par = vec![1.0f32; m * n];
        par_gemm(
            1.0,
            &rows(&a, m, k),
            &rows(&b, k, n),
            0.0,
            rows_mut(&mut c_par, m, n),
        );
        let mut c_one = vec![0.0f32; m * n];
        gemm(
            1.0,
            &rows(&a, m, k),
            &rows(&b, k, n),
            0.0,
            &mut rows_mut(&mut c_one, m, n),
        );
        assert_eq!(c_par, c_one);
        let expected = naive(&a, &b, m, k, n);
        for (x, y) in c_par.iter().zip(&expected) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn grid_is_bounded_by_the_task_count_and_covers_the_output() {
        let (r, c) = grid(1000, 64);
        assert!(r.len() * c.len() <= TASKS);
        assert_eq!(r.last().unwrap().end, 1000);
        assert_eq!(c.last().unwrap().end, 64);
        let (r, c) = grid(10, 10);
        assert_eq!((r.len(), c.len()), (1, 1));
    }
}
