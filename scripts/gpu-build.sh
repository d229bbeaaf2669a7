#!/usr/bin/env bash
# Builds, on this (GPU-less, x86-64) machine, everything scripts/gpu-run.sh runs on the GPU
# machine, which has no Rust toolchain, into gpu-carry/ (git-ignored), the one folder to
# carry, then runs gpu-run.sh's dry run over it:
#
#   gpu-carry/bin/       swav, swav-gpu-probe (stripped)
#   gpu-carry/tests/     the GPU test executables the stages run: swav-cuda's gpu_* tests and
#                        swav-cli's gpu_training (stripped)
#   gpu-carry/kernels/   every kernel module compiled by NVRTC for sm_90, CUBIN and PTX, with
#                        its manifest (swav-cuda-kernels; the backend loads the CUBIN)
#   gpu-carry/scripts/   gpu-env.sh, the PyTorch baseline gpu_swav_step.py, bench_summary.py
#
#   scripts/gpu-build.sh
#   run(command="bash scripts/gpu-run.sh", carry=["gpu-carry"], timeout_s=420)
#
# Installs NVRTC from pip if needed (scripts/ci/install-nvrtc.sh).
# Fails if the carry exceeds CARRY_LIMIT_MIB (default 56, under the device tool's 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."

CARRY=gpu-carry
LIMIT_MIB="${CARRY_LIMIT_MIB:-56}"
rm -rf "$CARRY"
mkdir -p "$CARRY/bin" "$CARRY/tests" "$CARRY/scripts"

echo "== building the binaries and the GPU test executables (release)" >&2
# Exactly the build of the README's test command (same packages, same features), so that
# after `cargo test --workspace --release` this reuses every artifact and compiles nothing.
cargo test --workspace --release --locked --no-run --message-format=json > "$CARRY/artifacts.json"

python3 - "$CARRY" <<'PY'
import json, shutil, sys

carry = sys.argv[1]
wanted_bins = {"swav", "swav-gpu-probe", "swav-cuda-kernels"}
for line in open(f"{carry}/artifacts.json"):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    target = m["target"]
    if m["profile"]["test"]:
        if "test" in target["kind"] and target["name"].startswith("gpu_"):
            shutil.copy(m["executable"], f"{carry}/tests/{target['name']}")
    elif "bin" in target["kind"] and target["name"] in wanted_bins:
        shutil.copy(m["executable"], f"{carry}/bin/{target['name']}")
PY
rm -f "$CARRY/artifacts.json"
strip --strip-unneeded "$CARRY"/bin/* "$CARRY"/tests/*

echo "== compiling the kernels for sm_90 (NVRTC from pip)" >&2
eval "$(scripts/ci/install-nvrtc.sh)"
"$CARRY/bin/swav-cuda-kernels" --arch sm_90 --output "$CARRY/kernels" >&2
rm "$CARRY/bin/swav-cuda-kernels"  # needs NVRTC; the GPU machine loads what it wrote

cp scripts/gpu-env.sh "$CARRY/scripts/gpu-env.sh"
cp scripts/bench/gpu_swav_step.py "$CARRY/scripts/gpu_swav_step.py"
cp scripts/gpu/bench_summary.py "$CARRY/scripts/bench_summary.py"

ls -l "$CARRY"/* >&2
size_mib=$(( $(du -sk "$CARRY" | cut -f1) / 1024 ))
echo "gpu-build: $CARRY holds ${size_mib} MiB" >&2
if [ "$size_mib" -gt "$LIMIT_MIB" ]; then
    echo "gpu-build: $CARRY exceeds ${LIMIT_MIB} MiB" >&2
    exit 1
fi
bash scripts/gpu-run.sh --dry-run
