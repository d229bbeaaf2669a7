//! [`MpiCollective`]: all-reduce between processes started by Open MPI's `mpirun`, for
//! multi-process CPU training.
//!
//! The MPI library is loaded at run time (`libmpi.so.40`, Open MPI 4 and 5), so building
//! `swav` needs no MPI headers and a machine without MPI runs single-process jobs as usual.
//! Open MPI exposes its predefined handles (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`, ...)
//! as the addresses of exported objects, which is what this module looks up. If any rank
//! dies, `mpirun` aborts the job, so the others stop instead of hanging.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use swav_core::Collective;

/// The library names tried, in order.
const LIBRARY_NAMES: [&str; 2] = ["libmpi.so.40", "libmpi.so"];

/// MPI_THREAD_FUNNELED: only the thread that initialised MPI calls it.
const MPI_THREAD_FUNNELED: c_int = 1;
/// MPI_SUCCESS.
const MPI_SUCCESS: c_int = 0;

type Handle = *mut c_void;
type InitThreadFn = unsafe extern "C" fn(*mut c_int, *mut *mut *mut i8, c_int, *mut c_int) -> c_int;
type InitializedFn = unsafe extern "C" fn(*mut c_int) -> c_int;
type FinalizeFn = unsafe extern "C" fn() -> c_int;
type CommRankFn = unsafe extern "C" fn(Handle, *mut c_int) -> c_int;
type CommSplitFn = unsafe extern "C" fn(Handle, c_int, c_int, *mut Handle) -> c_int;
type AllreduceFn =
    unsafe extern "C" fn(*const c_void, *mut c_void, c_int, Handle, Handle, Handle) -> c_int;
type AbortFn = unsafe extern "C" fn(Handle, c_int) -> c_int;
type BcastFn = unsafe extern "C" fn(*mut c_void, c_int, Handle, c_int, Handle) -> c_int;

/// MPI could not be loaded or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MpiError {
    /// No Open MPI library was found.
    #[error(
        "multi-process CPU training needs Open MPI (libmpi.so.40), which could not be loaded: {0}; install it (e.g. `apt-get install openmpi-bin`) and launch with mpirun"
    )]
    NotFound(String),
    /// A symbol is missing: not Open MPI, or an incompatible version.
    #[error("{library} is not a supported Open MPI library: missing symbol {symbol}")]
    MissingSymbol {
        /// The library file.
        library: String,
        /// The symbol.
        symbol: &'static str,
    },
    /// An MPI call returned an error code.
    #[error("rank {rank}: {call} failed with MPI error code {code}")]
    Call {
        /// This process's rank.
        rank: usize,
        /// The failing call.
        call: &'static str,
        /// MPI's return code.
        code: i32,
    },
    /// A buffer is longer than MPI's `int` count allows.
    #[error("rank {rank}: buffer of {len} elements is too long for one MPI call")]
    TooLong {
        /// This process's rank.
        rank: usize,
        /// Its length.
        len: usize,
    },
}

/// The loaded library and its entry points; finalises MPI when dropped.
struct MpiLibrary {
    _library: libloading::Library,
    finalize: FinalizeFn,
    comm_rank: CommRankFn,
    comm_size: CommRankFn,
    comm_split: CommSplitFn,
    allreduce: AllreduceFn,
    abort: AbortFn,
    bcast: BcastFn,
    comm_world: Handle,
    byte: Handle,
    float: Handle,
    double: Handle,
    op_sum: Handle,
    op_max: Handle,
}

// SAFETY: the handles are addresses of Open MPI's immutable predefined objects, and the
// function pointers are plain C entry points; MPI itself is only entered from the thread
// that initialised it (MPI_THREAD_FUNNELED), which callers of `MpiCollective` guarantee by
// not sharing it across threads for concurrent calls (its methods take `&self` but the
// trainer drives it from one thread).
unsafe impl Send for MpiLibrary {}
unsafe impl Sync for MpiLibrary {}

impl Drop for MpiLibrary {
    fn drop(&mut self) {
        // SAFETY: MPI was initialised by `MpiCollective::init`; finalising once at the end.
        unsafe {
            (self.finalize)();
        }
    }
}

/// A communicator of processes launched by `mpirun`, usable as a swav-core [`Collective`].
#[derive(Clone)]
pub struct MpiCollective {
    library: Arc<MpiLibrary>,
    comm: Handle,
    rank: usize,
    size: usize,
}

// SAFETY: see `MpiLibrary`; a communicator handle is an opaque pointer owned by MPI.
unsafe impl Send for MpiCollective {}
unsafe impl Sync for MpiCollective {}

impl std::fmt::Debug for MpiCollective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiCollective")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .finish()
    }
}

fn symbol<T: Copy>(
    lib: &libloading::Library,
    name: &'static str,
    path: &str,
) -> Result<T, MpiError> {
    // SAFETY: the symbol's type is the one Open MPI's mpi.h declares for it.
    unsafe {
        lib.get::<T>(name.as_bytes())
            .map(|s| *s)
            .map_err(|_| MpiError::MissingSymbol {
                library: path.to_string(),
                symbol: name,
            })
    }
}

fn object(lib: &libloading::Library, name: &'static str, path: &str) -> Result<Handle, MpiError> {
    // SAFETY: looking up the address of an exported data object; it is never dereferenced
    // here, only passed back to MPI as the handle Open MPI's macros would produce.
    unsafe {
        lib.get::<*mut c_void>(name.as_bytes())
            .map(|s| *s)
            .map_err(|_| MpiError::MissingSymbol {
                library: path.to_string(),
                symbol: name,
            })
    }
}

impl MpiCollective {
    /// Loads Open MPI, initialises it, and returns `MPI_COMM_WORLD`.
    pub fn init() -> Result<Self, MpiError> {
        let mut errors = Vec::new();
        let (library, path) = LIBRARY_NAMES
            .iter()
            .find_map(|name| {
                // SAFETY: loading Open MPI runs its library constructors, which are safe.
                match unsafe { libloading::Library::new(*name) } {
                    Ok(lib) => Some((lib, name.to_string())),
                    Err(e) => {
                        errors.push(e.to_string());
                        None
                    }
                }
            })
            .ok_or_else(|| MpiError::NotFound(errors.join("; ")))?;
        let init_thread: InitThreadFn = symbol(&library, "MPI_Init_thread", &path)?;
        let initialized: InitializedFn = symbol(&library, "MPI_Initialized", &path)?;
        let lib = MpiLibrary {
            finalize: symbol(&library, "MPI_Finalize", &path)?,
            comm_rank: symbol(&library, "MPI_Comm_rank", &path)?,
            comm_size: symbol(&library, "MPI_Comm_size", &path)?,
            comm_split: symbol(&library, "MPI_Comm_split", &path)?,
            allreduce: symbol(&library, "MPI_Allreduce", &path)?,
            abort: symbol(&library, "MPI_Abort", &path)?,
            bcast: symbol(&library, "MPI_Bcast", &path)?,
            comm_world: object(&library, "ompi_mpi_comm_world", &path)?,
            byte: object(&library, "ompi_mpi_byte", &path)?,
            float: object(&library, "ompi_mpi_float", &path)?,
            double: object(&library, "ompi_mpi_double", &path)?,
            op_sum: object(&library, "ompi_mpi_op_sum", &path)?,
            op_max: object(&library, "ompi_mpi_op_max", &path)?,
            _library: library,
        };
        let mut already = 0;
        // SAFETY: MPI_Initialized may be called at any time; MPI_Init_thread accepts null
        // argc/argv.
        unsafe {
            initialized(&mut already);
            if already == 0 {
                let mut provided = 0;
                let code = init_thread(
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    MPI_THREAD_FUNNELED,
                    &mut provided,
                );
                if code != MPI_SUCCESS {
                    return Err(MpiError::Call {
                        rank: 0,
                        call: "MPI_Init_thread",
                        code,
                    });
                }
            }
        }
        let comm = lib.comm_world;
        Self::wrap(Arc::new(lib), comm)
    }

    fn wrap(library: Arc<MpiLibrary>, comm: Handle) -> Result<Self, MpiError> {
        let (mut rank, mut size) = (0, 0);
        // SAFETY: `comm` is a valid communicator of this library.
        unsafe {
            let code = (library.comm_rank)(comm, &mut rank);
            if code != MPI_SUCCESS {
                return Err(MpiError::Call {
                    rank: 0,
                    call: "MPI_Comm_rank",
                    code,
                });
            }
            let code = (library.comm_size)(comm, &mut size);
            if code != MPI_SUCCESS {
                return Err(MpiError::Call {
                    rank: rank as usize,
                    call: "MPI_Comm_size",
                    code,
                });
            }
        }
        Ok(Self {
            library,
            comm,
            rank: rank as usize,
            size: size as usize,
        })
    }

    /// Splits the communicator into groups of consecutive ranks of size `group` (the last
    /// one may be smaller): SyncBN process groups.
    pub fn split_groups(&self, group: usize) -> Result<Self, MpiError> {
        let color = (self.rank / group.max(1)) as c_int;
        let mut out: Handle = std::ptr::null_mut();
        // SAFETY: every rank calls this collectively on a valid communicator.
        let code =
            unsafe { (self.library.comm_split)(self.comm, color, self.rank as c_int, &mut out) };
        if code != MPI_SUCCESS {
            return Err(MpiError::Call {
                rank: self.rank,
                call: "MPI_Comm_split",
                code,
            });
        }
        Self::wrap(Arc::clone(&self.library), out)
    }

    /// Aborts every rank of the job (after an unrecoverable error on this one).
    pub fn abort(&self, code: i32) {
        // SAFETY: valid communicator; MPI_Abort does not return on success.
        unsafe {
            (self.library.abort)(self.library.comm_world, code);
        }
    }

    /// Rank 0's `bytes`, on every rank (the others' `bytes` are ignored): its length, then
    /// its contents, each in one `MPI_Bcast`.
    pub fn broadcast_bytes(&self, bytes: &[u8]) -> Result<Vec<u8>, MpiError> {
        let mut len = (bytes.len() as u64).to_le_bytes();
        self.bcast(&mut len)?;
        let len = u64::from_le_bytes(len) as usize;
        let mut out = if self.rank == 0 {
            bytes.to_vec()
        } else {
            vec![0; len]
        };
        self.bcast(&mut out)?;
        Ok(out)
    }

    fn bcast(&self, data: &mut [u8]) -> Result<(), MpiError> {
        let count = c_int::try_from(data.len()).map_err(|_| MpiError::TooLong {
            rank: self.rank,
            len: data.len(),
        })?;
        // SAFETY: `data` is a valid buffer of `count` bytes; every rank calls this
        // collectively with the same count, rank 0 as the root.
        let code = unsafe {
            (self.library.bcast)(
                data.as_mut_ptr().cast(),
                count,
                self.library.byte,
                0,
                self.comm,
            )
        };
        if code != MPI_SUCCESS {
            return Err(MpiError::Call {
                rank: self.rank,
                call: "MPI_Bcast",
                code,
            });
        }
        Ok(())
    }

    fn reduce<T>(&self, data: &mut [T], datatype: Handle, op: Handle) -> Result<(), MpiError> {
        let count = c_int::try_from(data.len()).map_err(|_| MpiError::TooLong {
            rank: self.rank,
            len: data.len(),
        })?;
        // MPI_IN_PLACE in Open MPI is the address 1.
        let in_place = std::ptr::without_provenance::<c_void>(1);
        // SAFETY: `data` is a valid buffer of `count` elements of `datatype`, reduced in place.
        let code = unsafe {
            (self.library.allreduce)(
                in_place,
                data.as_mut_ptr().cast(),
                count,
                datatype,
                op,
                self.comm,
            )
        };
        if code != MPI_SUCCESS {
            return Err(MpiError::Call {
                rank: self.rank,
                call: "MPI_Allreduce",
                code,
            });
        }
        Ok(())
    }
}

macro_rules! collective_for {
    ($t:ty, $dtype:ident) => {
        impl Collective<[$t]> for MpiCollective {
            type Error = MpiError;
            fn rank(&self) -> usize {
                self.rank
            }
            fn world_size(&self) -> usize {
                self.size
            }
            fn all_reduce_sum(&self, data: &mut [$t]) -> Result<(), MpiError> {
                self.reduce(data, self.library.$dtype, self.library.op_sum)
            }
            fn all_reduce_max(&self, data: &mut [$t]) -> Result<(), MpiError> {
                self.reduce(data, self.library.$dtype, self.library.op_max)
            }
        }
        impl Collective<Vec<$t>> for MpiCollective {
            type Error = MpiError;
            fn rank(&self) -> usize {
                self.rank
            }
            fn world_size(&self) -> usize {
                self.size
            }
            fn all_reduce_sum(&self, data: &mut Vec<$t>) -> Result<(), MpiError> {
                self.reduce(data, self.library.$dtype, self.library.op_sum)
            }
            fn all_reduce_max(&self, data: &mut Vec<$t>) -> Result<(), MpiError> {
                self.reduce(data, self.library.$dtype, self.library.op_max)
            }
        }
    };
}

collective_for!(f32, float);
collective_for!(f64, double);
