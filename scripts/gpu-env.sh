# Source me on a GPU machine:   . scripts/gpu-env.sh
#
# Points swav-cuda at the CUDA libraries of NVIDIA's pip wheels in the PyTorch venv (cudarc
# dlopens them by name at run time), and NVRTC at the CUDA headers:
#   * LD_LIBRARY_PATH, in this order:
#       1. a shim folder holding libcuda.so and libcuda.so.1 -> the driver's libcuda.so.1
#          (from the loader cache, else /usr/local/nvidia/lib64 or /usr/lib64), so the
#          driver comes first: cudarc tries the unversioned libcuda.so before libcuda.so.1,
#          and a copy elsewhere on the path (a toolkit's or a wheel's) must not shadow it;
#          and libnccl.so, libcublas.so, libcublasLt.so, libnvrtc.so, libcudnn.so -> the
#          wheels' versioned files (the wheels ship only versioned names; cudarc tries the
#          unversioned name first, so a toolkit's unversioned copy later on the path would
#          otherwise win and pair, say, its cuBLAS with the wheel's cuBLASLt);
#       2. /usr/local/nvidia/lib64 (where containers mount the driver), if present;
#       3. nvidia/cu13/lib (cuBLAS, cuBLASLt, NVRTC, cudart), nvidia/cudnn/lib,
#          nvidia/nccl/lib, then every other folder of the wheels that holds a shared
#          library, then the toolkit's /usr/local/cuda/lib64;
#     never a `stubs` folder (its libcuda.so is a link-time stub that fails every call);
#   * SWAV_CUDA_INCLUDE: the folder holding cuda_bf16.h, which NVRTC needs;
#   * SWAV_GPU_LIBRARY_ROOTS: the wheels' folder and the driver's, the only places
#     swav-gpu-probe accepts a loaded CUDA library from.
# VENV_PY overrides the Python whose site-packages hold the wheels (default: python3, the
# PyTorch venv's on the GPU machines). Prints what it set; never exits the calling shell.
# `swav-gpu-probe` lists the library files a process actually loaded.

swav_gpu_env() {
    local py="${VENV_PY:-python3}"
    local root sp shim nccl include dirs driver d
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    if ! sp="$("$py" -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)"; then
        echo "gpu-env: $py cannot report its site-packages; set VENV_PY" >&2
        return 1
    fi
    if [ ! -d "$sp/nvidia" ]; then
        echo "gpu-env: no NVIDIA wheels under $sp/nvidia; set VENV_PY to the PyTorch venv's python" >&2
        return 1
    fi
    shim="$root/target/cuda-shim"
    mkdir -p "$shim"
    local lib versioned
    for lib in nccl cublas cublasLt nvrtc cudnn; do
        rm -f "$shim/lib$lib.so"
        # The shortest versioned name (libcublas.so.13 rather than libcublas.so.13.0.2).
        versioned="$(find "$sp/nvidia" -name "lib$lib.so.[0-9]*" -not -path '*/stubs/*' 2>/dev/null |
            awk '{ print length($0) "\t" $0 }' | sort -n | head -n 1 | cut -f2)"
        if [ -n "$versioned" ]; then
            ln -sf "$versioned" "$shim/lib$lib.so"
        else
            echo "gpu-env: lib$lib.so.N not found under $sp/nvidia (lib$lib will come from elsewhere or be missing)" >&2
        fi
    done
    rm -f "$shim/libcuda.so" "$shim/libcuda.so.1"
    driver="$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 / && !/stubs/ { print $NF; exit }')"
    for d in /usr/local/nvidia/lib64 /usr/lib64 /usr/lib/x86_64-linux-gnu; do
        [ -z "$driver" ] && [ -e "$d/libcuda.so.1" ] && driver="$d/libcuda.so.1"
    done
    if [ -n "$driver" ]; then
        driver="$(readlink -f "$driver")"
        ln -sf "$driver" "$shim/libcuda.so"
        ln -sf "$driver" "$shim/libcuda.so.1"
    else
        echo "gpu-env: no libcuda.so.1 found (is the NVIDIA driver installed?)" >&2
    fi
    dirs="$shim"
    [ -d /usr/local/nvidia/lib64 ] && dirs="$dirs:/usr/local/nvidia/lib64"
    dirs="$dirs:$sp/nvidia/cu13/lib:$sp/nvidia/cudnn/lib:$sp/nvidia/nccl/lib"
    # Any other wheel folder with a shared library (layouts differ between wheel versions).
    dirs="$dirs:$(find "$sp/nvidia" -name 'lib*.so*' -not -path '*/stubs/*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd: -)"
    [ -d /usr/local/cuda/lib64 ] && dirs="$dirs:/usr/local/cuda/lib64"
    # Drop empty entries, repeats and any stubs folder, keeping the first occurrence.
    dirs="$(printf '%s' "$dirs" | tr ':' '\n' | awk 'NF && !/(^|\/)stubs(\/|$)/ && !seen[$0]++' | paste -sd: -)"
    export LD_LIBRARY_PATH="$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    include="$(find "$sp/nvidia" -name cuda_bf16.h -printf '%h\n' 2>/dev/null | head -n 1)"
    if [ -z "$include" ] && [ -f /usr/local/cuda/include/cuda_bf16.h ]; then
        include=/usr/local/cuda/include
    fi
    if [ -n "$include" ]; then
        export SWAV_CUDA_INCLUDE="$include"
    else
        echo "gpu-env: cuda_bf16.h not found; NVRTC will fail (install nvidia-cuda-runtime)" >&2
    fi
    export SWAV_GPU_LIBRARY_ROOTS="$(readlink -f "$sp/nvidia")${driver:+:$(dirname "$driver")}"
    echo "gpu-env: site-packages $sp"
    echo "gpu-env: driver library ${driver:-<not in the loader cache>}"
    echo "gpu-env: SWAV_CUDA_INCLUDE=${SWAV_CUDA_INCLUDE:-<unset>}"
    echo "gpu-env: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    echo "gpu-env: SWAV_GPU_LIBRARY_ROOTS=$SWAV_GPU_LIBRARY_ROOTS"
    ls -l "$shim"
}

swav_gpu_env
