# Source me on a GPU machine:   . scripts/gpu-env.sh
#
# Points swav-cuda at the CUDA libraries of NVIDIA's pip wheels in the PyTorch venv (cudarc
# dlopens them by name at run time, see STACK.md §2.4), and NVRTC at the CUDA headers:
#   * LD_LIBRARY_PATH: a shim folder holding libnccl.so -> libnccl.so.2 (the wheel ships only
#     the versioned name, which cudarc does not try), then nvidia/cu13/lib (cuBLAS, cuBLASLt,
#     NVRTC, cudart), nvidia/cudnn/lib, nvidia/nccl/lib, then every other folder of the wheels
#     that holds a shared library, then the driver's and the toolkit's folders;
#   * SWAV_CUDA_INCLUDE: the folder holding cuda_bf16.h, which NVRTC needs.
# VENV_PY overrides the Python whose site-packages hold the wheels (default: python3, the
# PyTorch venv's on the GPU machines). Prints what it set; never exits the calling shell.

swav_gpu_env() {
    local py="${VENV_PY:-python3}"
    local root sp shim nccl include dirs
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
    nccl="$(find "$sp/nvidia" -name 'libnccl.so.2' 2>/dev/null | head -n 1)"
    if [ -n "$nccl" ]; then
        ln -sf "$nccl" "$shim/libnccl.so"
    else
        echo "gpu-env: libnccl.so.2 not found under $sp/nvidia (NCCL will be unavailable)" >&2
    fi
    dirs="$shim:$sp/nvidia/cu13/lib:$sp/nvidia/cudnn/lib:$sp/nvidia/nccl/lib"
    # Any other wheel folder with a shared library (layouts differ between wheel versions).
    dirs="$dirs:$(find "$sp/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd: -)"
    for d in /usr/local/nvidia/lib64 /usr/local/cuda/lib64; do
        [ -d "$d" ] && dirs="$dirs:$d"
    done
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
    echo "gpu-env: site-packages $sp"
    echo "gpu-env: SWAV_CUDA_INCLUDE=${SWAV_CUDA_INCLUDE:-<unset>}"
    echo "gpu-env: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
}

swav_gpu_env
