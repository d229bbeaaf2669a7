//! Fixed partitions of work: the seam that keeps results independent of the thread count.
//!
//! Every parallel operation in this crate splits its work with the functions below, which
//! depend only on the problem's shape and on [`TASKS`], never on how many threads rayon
//! has. Each piece is computed by one task in a fixed order, and partial sums are combined
//! in piece order, so a result is bit-identical on 1, 2 or 64 threads.

use core::ops::Range;

/// The number of pieces an operation aims to split into when its shape allows.
pub(crate) const TASKS: usize = 8;

/// `parts` contiguous ranges covering `0..len`, as equal as `align` allows: every range
/// but the last has a length that is a multiple of `align`. Fewer ranges are returned when
/// `len` is too short; none when `len` is 0.
pub(crate) fn split_even(len: usize, parts: usize, align: usize) -> Vec<Range<usize>> {
    if len == 0 {
        return Vec::new();
    }
    let parts = parts.clamp(1, len.div_ceil(align));
    let size = len.div_ceil(parts).div_ceil(align) * align;
    split_fixed(len, size)
}

/// Contiguous ranges of `size` (the last one shorter) covering `0..len`.
pub(crate) fn split_fixed(len: usize, size: usize) -> Vec<Range<usize>> {
    let size = size.max(1);
    (0..len.div_ceil(size))
        .map(|i| i * size..((i + 1) * size).min(len))
        .collect()
}

/// How many pieces to cut `rows` rows into for a row-parallel pass, each at least
/// `min_rows` long and at most [`TASKS`] of them.
pub(crate) fn row_parts(rows: usize, min_rows: usize) -> usize {
    rows.div_ceil(min_rows.max(1)).clamp(1, TASKS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_split_covers_the_range_with_aligned_pieces() {
        let r = split_even(100, 3, 16);
        assert_eq!(r, vec![0..48, 48..96, 96..100]);
        let r = split_even(10, 8, 4);
        assert_eq!(r, vec![0..4, 4..8, 8..10]);
        assert!(split_even(0, 4, 1).is_empty());
        assert_eq!(split_even(5, 1, 1), vec![0..5]);
    }

    #[test]
    fn fixed_split_has_a_short_tail() {
        assert_eq!(split_fixed(7, 3), vec![0..3, 3..6, 6..7]);
        assert_eq!(row_parts(1000, 64), TASKS);
        assert_eq!(row_parts(100, 64), 2);
    }
}
