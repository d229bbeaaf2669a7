//! Deterministic reductions: how a reduction is split over blocks, and the scratch memory
//! the blocks share.
//!
//! The kernels reduce in one launch: blocks write partial results, and the last block to
//! finish (counted with an atomic counter it then resets) combines them in a fixed order.
//! The split depends only on the shape, never on the device, so results are bit-for-bit
//! reproducible from run to run and from one GPU model to another.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, DevicePtr};

use crate::{CudaBackend, CudaError};

/// Threads per block of the whole-buffer reductions (`reduction.cu`).
pub(crate) const REDUCE_THREADS: u32 = 256;
/// The most blocks a whole-buffer reduction uses.
const MAX_REDUCE_BLOCKS: usize = 1024;
/// Elements each thread of a whole-buffer reduction handles at least.
const ELEMENTS_PER_THREAD: usize = 8;

/// Columns per block of a column reduction (`COL_TILE` in `prelude.cuh`).
pub(crate) const COL_TILE: u32 = 32;
/// Row lanes per block of a column reduction (`COL_LANES` in `prelude.cuh`).
pub(crate) const COL_LANES: u32 = 8;
/// The number of blocks a column reduction aims for (enough to fill a large GPU).
const COLUMN_TARGET_BLOCKS: usize = 1024;
/// The fewest rows a chunk of a column reduction holds.
const MIN_ROWS_PER_CHUNK: usize = 64;

/// The number of blocks of a whole-buffer reduction over `n` elements.
pub(crate) fn reduce_blocks(n: usize) -> u32 {
    let per_block = REDUCE_THREADS as usize * ELEMENTS_PER_THREAD;
    n.div_ceil(per_block).clamp(1, MAX_REDUCE_BLOCKS) as u32
}

/// The split of a column reduction over a `rows × cols` matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ColumnPlan {
    /// Blocks along the columns: `ceil(cols / 32)`.
    pub col_blocks: u32,
    /// Chunks of rows (blocks along y).
    pub chunks: u32,
    /// Rows per chunk (the last chunk may hold fewer).
    pub rows_per_chunk: u64,
}

impl ColumnPlan {
    /// The plan for `rows × cols`.
    pub(crate) fn new(rows: usize, cols: usize) -> Self {
        let col_blocks = cols.div_ceil(COL_TILE as usize).max(1);
        let wanted = COLUMN_TARGET_BLOCKS.div_ceil(col_blocks);
        let allowed = rows.div_ceil(MIN_ROWS_PER_CHUNK).max(1);
        let chunks = wanted.min(allowed).clamp(1, u16::MAX as usize);
        let rows_per_chunk = rows.div_ceil(chunks).max(1);
        let chunks = rows.div_ceil(rows_per_chunk).max(1);
        Self {
            col_blocks: col_blocks as u32,
            chunks: chunks as u32,
            rows_per_chunk: rows_per_chunk as u64,
        }
    }

    /// Partial results needed for `quantities` sums per column.
    pub(crate) fn partials(&self, cols: usize, quantities: usize) -> usize {
        quantities * self.chunks as usize * cols
    }

    /// The launch grid and block.
    pub(crate) fn grid(&self) -> ((u32, u32, u32), (u32, u32, u32)) {
        ((self.col_blocks, self.chunks, 1), (COL_TILE, COL_LANES, 1))
    }
}

/// Partial results and arrival counters shared by every reduction kernel. Kernels on the
/// one compute stream run one after another, and each leaves its counters at zero.
#[derive(Debug)]
pub(crate) struct ReductionScratch {
    partials: CudaSlice<f32>,
    counters: CudaSlice<u32>,
}

impl ReductionScratch {
    pub(crate) fn new(stream: &Arc<CudaStream>) -> Result<Self, CudaError> {
        Ok(Self {
            partials: stream.alloc_zeros(1 << 16)?,
            counters: stream.alloc_zeros(1 << 10)?,
        })
    }

    /// Addresses of at least `partials` floats and `counters` zeroed counters, growing the
    /// scratch (in stream order) when it is too small.
    pub(crate) fn ensure(
        &mut self,
        stream: &Arc<CudaStream>,
        partials: usize,
        counters: usize,
    ) -> Result<(u64, u64), CudaError> {
        if self.partials.len() < partials {
            self.partials = stream.alloc_zeros(partials.next_power_of_two())?;
        }
        if self.counters.len() < counters {
            self.counters = stream.alloc_zeros(counters.next_power_of_two())?;
        }
        Ok((
            self.partials.device_ptr(stream).0,
            self.counters.device_ptr(stream).0,
        ))
    }
}

impl CudaBackend {
    /// Scratch for a column reduction of `rows × cols` with `quantities` f32 sums per column.
    pub(crate) fn column_scratch(
        &mut self,
        rows: usize,
        cols: usize,
        quantities: usize,
    ) -> Result<(ColumnPlan, u64, u64), CudaError> {
        self.column_scratch_of(rows, cols, quantities, 1)
    }

    /// Scratch for a column reduction with `quantities` f64 sums per column.
    pub(crate) fn column_scratch_f64(
        &mut self,
        rows: usize,
        cols: usize,
        quantities: usize,
    ) -> Result<(ColumnPlan, u64, u64), CudaError> {
        self.column_scratch_of(rows, cols, quantities, 2)
    }

    /// Scratch for a column reduction whose partials are `floats_per_partial` f32 each.
    fn column_scratch_of(
        &mut self,
        rows: usize,
        cols: usize,
        quantities: usize,
        floats_per_partial: usize,
    ) -> Result<(ColumnPlan, u64, u64), CudaError> {
        let plan = ColumnPlan::new(rows, cols);
        let (partials, counters) = self.reduction.ensure(
            &self.device.stream,
            plan.partials(cols, quantities) * floats_per_partial,
            plan.col_blocks as usize,
        )?;
        Ok((plan, partials, counters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_plans_cover_every_row_once() {
        for &(rows, cols) in &[
            (1, 1),
            (7, 3000),
            (4096, 3000),
            (1_605_632, 64),
            (512, 2048),
        ] {
            let plan = ColumnPlan::new(rows, cols);
            let covered = plan.chunks as u64 * plan.rows_per_chunk;
            assert!(covered >= rows as u64, "{rows}x{cols}: {plan:?}");
            assert!(
                covered - (rows as u64) < plan.rows_per_chunk,
                "{rows}x{cols}: empty chunk"
            );
            assert_eq!(plan.col_blocks as usize, cols.div_ceil(32));
        }
    }

    #[test]
    fn reduce_grid_depends_on_length_only() {
        assert_eq!(reduce_blocks(0), 1);
        assert_eq!(reduce_blocks(2048), 1);
        assert_eq!(reduce_blocks(2049), 2);
        assert_eq!(reduce_blocks(usize::MAX / 2), 1024);
    }
}
