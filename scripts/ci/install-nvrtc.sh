#!/usr/bin/env bash
# Installs NVRTC and the CUDA runtime headers (CUDA 13.0, NVIDIA's pip wheels) into a venv so that
# a machine without a GPU, a driver or a CUDA toolkit can compile swav-cuda's kernels for sm_90.
#
#   scripts/ci/install-nvrtc.sh [VENV_DIR]          (default: target/nvrtc-venv)
#
# Prints two `export` lines on stdout (everything else goes to stderr), so a caller can do
#   eval "$(scripts/ci/install-nvrtc.sh)"
# which sets LD_LIBRARY_PATH (libnvrtc.so.13, found by cudarc's dynamic loading) and
# SWAV_CUDA_INCLUDE (the folder holding cuda_bf16.h, read by swav-cuda's NVRTC options).
#
# The wheels are pinned to CUDA 13.0.x, the toolkit of the GPU machines (driver 580): PTX from a
# newer NVRTC could carry a PTX ISA version that driver does not load. Re-running is cheap: pip
# skips what is installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${1:-target/nvrtc-venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV" >&2
  "$PYTHON" -m venv "$VENV" >&2
fi
echo "== installing nvidia-cuda-nvrtc and nvidia-cuda-runtime (CUDA 13.0)" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
  'nvidia-cuda-nvrtc==13.0.*' 'nvidia-cuda-runtime==13.0.*' >&2

SITE=$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')
LIB="$SITE/nvidia/cu13/lib"
INCLUDE="$SITE/nvidia/cu13/include"
for f in "$LIB/libnvrtc.so.13" "$INCLUDE/cuda_bf16.h"; do
  if [ ! -e "$f" ]; then
    echo "install-nvrtc: expected $f after the install; the wheel layout changed" >&2
    exit 1
  fi
done
ROOT=$(pwd)
case "$LIB" in /*) ;; *) LIB="$ROOT/$LIB" ;; esac
case "$INCLUDE" in /*) ;; *) INCLUDE="$ROOT/$INCLUDE" ;; esac
echo "export LD_LIBRARY_PATH=\"$LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
echo "export SWAV_CUDA_INCLUDE=\"$INCLUDE\""
