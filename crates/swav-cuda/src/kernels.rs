//! The compiled kernels of one device, looked up by name, and their launches.
//!
//! Loading prefers machine code: the modules come from a folder of kernels compiled ahead of
//! time (`kernel_dir.rs`) when one is found and matches, else from NVRTC in this process, and
//! each module is loaded from its CUBIN. Only if the driver refuses a CUBIN is that module's
//! PTX loaded instead (compiled by the driver), with a one-line note on stderr; a folder that
//! is found but not used gets a one-line note too.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};
use cudarc::nvrtc::Ptx;

use crate::CudaError;
use crate::kernel_dir;
use crate::nvrtc::{CompiledModule, compile_all_cached};

/// Every kernel of every module, loaded into one context.
#[derive(Debug)]
pub(crate) struct Kernels {
    functions: HashMap<String, CudaFunction>,
}

impl Kernels {
    /// Finds or compiles the modules for `arch` and loads them into `ctx`.
    pub(crate) fn load(ctx: &Arc<CudaContext>, arch: &str) -> Result<Self, CudaError> {
        let modules = match kernel_dir::locate().map(|dir| (kernel_dir::read(&dir, arch), dir)) {
            Some((Ok(modules), _)) => Arc::new(modules),
            Some((Err(why), dir)) => {
                eprintln!(
                    "swav-cuda: not using the kernels in {} ({why}); compiling with NVRTC",
                    dir.display()
                );
                compile_all_cached(arch)?
            }
            None => compile_all_cached(arch)?,
        };
        let mut functions = HashMap::new();
        for module in modules.iter() {
            let loaded = load_module(ctx, module, arch)?;
            for name in &module.kernels {
                functions.insert(name.clone(), loaded.load_function(name)?);
            }
        }
        Ok(Self { functions })
    }

    /// Launches kernel `name` on `stream`.
    pub(crate) fn launch(
        &self,
        stream: &CudaStream,
        name: &str,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
        args: &[&dyn KernelArg],
    ) -> Result<(), CudaError> {
        let function = self
            .functions
            .get(name)
            .ok_or_else(|| CudaError::MissingKernel(name.to_string()))?;
        let mut params: Vec<*mut c_void> = args.iter().map(|a| a.param()).collect();
        stream.context().bind_to_thread()?;
        // SAFETY: `params` point at values that live until this call returns, whose types
        // match the kernel's parameters (each call site mirrors the kernel's signature);
        // device addresses come from live buffers of this context.
        unsafe {
            cudarc::driver::result::launch_kernel(
                function.cu_function(),
                grid,
                block,
                0,
                stream.cu_stream(),
                &mut params,
            )?;
        }
        Ok(())
    }

    /// Launches kernel `name` with a 1-D grid-stride configuration over `n` elements.
    pub(crate) fn launch_1d(
        &self,
        stream: &CudaStream,
        name: &str,
        n: usize,
        args: &[&dyn KernelArg],
    ) -> Result<(), CudaError> {
        self.launch(stream, name, (grid_1d(n), 1, 1), (THREADS_1D, 1, 1), args)
    }
}

/// `module` loaded from its CUBIN, or from its PTX if the driver refuses the CUBIN.
fn load_module(
    ctx: &Arc<CudaContext>,
    module: &CompiledModule,
    arch: &str,
) -> Result<Arc<CudaModule>, CudaError> {
    match ctx.load_module(Ptx::from_binary(module.cubin.clone())) {
        Ok(loaded) => Ok(loaded),
        Err(e) => {
            eprintln!(
                "swav-cuda: the driver refused the {arch} CUBIN of kernel module {} ({e}); loading its PTX",
                module.name
            );
            Ok(ctx.load_module(Ptx::from_src(module.ptx.clone()))?)
        }
    }
}

/// Threads per block of element-wise kernels.
pub(crate) const THREADS_1D: u32 = 256;
/// The most blocks an element-wise grid-stride launch uses.
const MAX_BLOCKS_1D: usize = 8192;

/// Blocks for a grid-stride loop over `n` elements.
pub(crate) fn grid_1d(n: usize) -> u32 {
    n.div_ceil(THREADS_1D as usize).clamp(1, MAX_BLOCKS_1D) as u32
}

/// Threads per block for a kernel that gives one block to each row of `cols` elements.
pub(crate) fn threads_per_row(cols: usize) -> u32 {
    match cols {
        0..=64 => 64,
        65..=128 => 128,
        129..=256 => 256,
        _ => 512,
    }
}

/// A value passed to a kernel: anything whose bytes the kernel reads as one parameter.
pub(crate) trait KernelArg {
    /// The address of the value, as `cuLaunchKernel` wants it.
    fn param(&self) -> *mut c_void;
}

macro_rules! plain_kernel_arg {
    ($($t:ty),*) => {$(
        impl KernelArg for $t {
            fn param(&self) -> *mut c_void {
                (self as *const $t).cast_mut().cast()
            }
        }
    )*};
}
plain_kernel_arg!(u64, u32, i32, f32);

/// `size_t` parameters.
pub(crate) fn len_arg(n: usize) -> u64 {
    n as u64
}
