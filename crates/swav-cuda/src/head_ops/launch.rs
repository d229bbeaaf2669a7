//! The one launch path of the head kernels: a kernel is its name, its grid and its
//! parameters in the kernel's order, and [`CudaBackend::head_kernel`] does the rest (times
//! it, checks each buffer's element type and length, names the kernel after the element
//! types it is instantiated for, sets up the reduction scratch, launches).

use crate::kernels::{KernelArg, THREADS_1D, grid_1d, threads_per_row};
use crate::profile::OpCategory;
use crate::reduction::{REDUCE_THREADS, reduce_blocks};
use crate::{CudaBackend, CudaBuffer, CudaError, DType};

/// Panics unless `buf` holds f32 (the head operations' contract).
pub(super) fn expect_f32(buf: &CudaBuffer, operation: &str) {
    assert_eq!(
        buf.dtype(),
        DType::F32,
        "{operation} works on f32 buffers (allocate them with zeros())"
    );
}

/// A head operation's kernel: the name the operation is timed under, the kernel's name
/// (before the element-type suffixes of its [`Arg::AnyIn`]/[`Arg::AnyOut`] buffers) and the
/// time category.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeadKernel {
    op: &'static str,
    name: &'static str,
    category: OpCategory,
}

impl HeadKernel {
    /// Operation `op`, in the head's time category, running the kernel of the same name.
    pub(super) const fn op(op: &'static str) -> Self {
        Self {
            op,
            name: op,
            category: OpCategory::Head,
        }
    }

    /// The same operation running kernel `name`.
    pub(super) const fn kernel(self, name: &'static str) -> Self {
        Self { name, ..self }
    }

    /// The same operation timed in `category`.
    pub(super) const fn category(self, category: OpCategory) -> Self {
        Self { category, ..self }
    }
}

/// How a kernel's threads cover its work.
#[derive(Debug, Clone, Copy)]
pub(super) enum Grid {
    /// A grid-stride loop over `n` elements.
    Elements(usize),
    /// One block per row of a `rows × cols` matrix; nothing is launched without rows.
    Rows { rows: usize, cols: usize },
    /// The deterministic column reduction of a `rows × cols` matrix: [`Arg::Scratch`] is
    /// its partials, counters, number of row chunks and rows per chunk.
    Columns { rows: usize, cols: usize },
    /// A whole-buffer reduction of `n` elements: [`Arg::Scratch`] is its partials and
    /// counters.
    Reduce(usize),
}

/// One parameter of a kernel, in the kernel's order. A buffer comes with the number of
/// elements the kernel touches, which it must hold.
pub(super) enum Arg<'a> {
    /// An f32 buffer the kernel reads.
    In(&'a CudaBuffer, usize),
    /// An f32 buffer the kernel writes.
    Out(&'a mut CudaBuffer, usize),
    /// An f32 buffer the kernel reads if present, else a null pointer.
    Maybe(Option<&'a CudaBuffer>),
    /// A buffer of either element type that the kernel reads (its suffix joins the name).
    AnyIn(&'a CudaBuffer, usize),
    /// A buffer of either element type that the kernel writes (its suffix joins the name).
    AnyOut(&'a mut CudaBuffer, usize),
    /// A `size_t`.
    Size(usize),
    /// A `float`.
    F32(f32),
    /// An `int`.
    I32(i32),
    /// A device address the caller has checked.
    Ptr(u64),
    /// The grid's reduction scratch (see [`Grid`]).
    Scratch,
}

/// A kernel parameter's value, kept alive for the launch.
#[derive(Debug, Clone, Copy)]
enum Param {
    U64(u64),
    U32(u32),
    I32(i32),
    F32(f32),
}

impl KernelArg for Param {
    fn param(&self) -> *mut std::ffi::c_void {
        match self {
            Param::U64(v) => v.param(),
            Param::U32(v) => v.param(),
            Param::I32(v) => v.param(),
            Param::F32(v) => v.param(),
        }
    }
}

impl CudaBackend {
    /// Runs one head kernel: times it as its operation, then
    /// [`launch_checked`](Self::launch_checked).
    pub(super) fn head_kernel(
        &mut self,
        kernel: HeadKernel,
        grid: Grid,
        args: &mut [Arg<'_>],
    ) -> Result<(), CudaError> {
        let _op = self.profile_op(kernel.op, kernel.category);
        self.launch_checked(kernel, grid, args)
    }

    /// Checks every buffer of `args` (element type, length), then launches the kernel over
    /// `grid`; for an operation that times more than its kernel.
    pub(super) fn launch_checked(
        &mut self,
        kernel: HeadKernel,
        grid: Grid,
        args: &mut [Arg<'_>],
    ) -> Result<(), CudaError> {
        let mut name = String::from(kernel.name);
        for arg in args.iter() {
            let (buf, len, any) = match arg {
                Arg::In(buf, len) => (&**buf, *len, false),
                Arg::Out(buf, len) => (&**buf, *len, false),
                Arg::Maybe(Some(buf)) => (*buf, 0, false),
                Arg::AnyIn(buf, len) => (&**buf, *len, true),
                Arg::AnyOut(buf, len) => (&**buf, *len, true),
                _ => continue,
            };
            assert!(buf.len() >= len, "{} out of bounds", kernel.op);
            if any {
                name.push('_');
                name.push_str(buf.dtype().suffix());
            } else {
                expect_f32(buf, kernel.op);
            }
        }
        let (grid_dim, block, scratch) = match grid {
            Grid::Elements(n) => ((grid_1d(n), 1, 1), (THREADS_1D, 1, 1), Vec::new()),
            Grid::Rows { rows: 0, .. } => return Ok(()),
            Grid::Rows { rows, cols } => (
                (rows as u32, 1, 1),
                (threads_per_row(cols), 1, 1),
                Vec::new(),
            ),
            Grid::Columns { rows, cols } => {
                let (plan, partials, counters) = self.column_scratch(rows, cols, 1)?;
                let (grid_dim, block) = plan.grid();
                let scratch = vec![
                    Param::U64(partials),
                    Param::U64(counters),
                    Param::U32(plan.chunks),
                    Param::U64(plan.rows_per_chunk),
                ];
                (grid_dim, block, scratch)
            }
            Grid::Reduce(n) => {
                let blocks = reduce_blocks(n);
                let (partials, counters) =
                    self.reduction
                        .ensure(&self.device.stream, blocks as usize, 1)?;
                let scratch = vec![Param::U64(partials), Param::U64(counters)];
                ((blocks, 1, 1), (REDUCE_THREADS, 1, 1), scratch)
            }
        };
        let mut params = Vec::with_capacity(args.len() + scratch.len());
        for arg in args.iter_mut() {
            match arg {
                Arg::In(buf, _) | Arg::AnyIn(buf, _) => params.push(Param::U64(buf.ptr())),
                Arg::Out(buf, _) | Arg::AnyOut(buf, _) => params.push(Param::U64(buf.ptr_mut())),
                Arg::Maybe(buf) => params.push(Param::U64(buf.map_or(0, CudaBuffer::ptr))),
                Arg::Size(n) => params.push(Param::U64(*n as u64)),
                Arg::F32(v) => params.push(Param::F32(*v)),
                Arg::I32(v) => params.push(Param::I32(*v)),
                Arg::Ptr(ptr) => params.push(Param::U64(*ptr)),
                Arg::Scratch => params.extend_from_slice(&scratch),
            }
        }
        let params: Vec<&dyn KernelArg> = params.iter().map(|p| p as &dyn KernelArg).collect();
        self.launch(&name, grid_dim, block, &params)
    }
}
