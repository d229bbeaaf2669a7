#!/usr/bin/env bash
# Builds, on this (GPU-less, x86-64) machine, everything scripts/gpu-run.sh runs on the GPU
# machine, which has no Rust toolchain: the `swav` binary, `swav-gpu-probe`, and every test
# executable with GPU tests (all of swav-cuda's, and swav-cli's `gpu_*`), stripped and copied
# into gpu-carry/ (git-ignored), the one folder to carry:
#
#   scripts/gpu-build.sh
#   run(command="bash scripts/gpu-run.sh", carry=["gpu-carry"])
#
# Honours CARGO_TARGET_DIR. Fails if the carry exceeds CARRY_LIMIT_MIB (default 56, under the
# device tool's 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."

CARRY=gpu-carry
LIMIT_MIB="${CARRY_LIMIT_MIB:-56}"
rm -rf "$CARRY"
mkdir -p "$CARRY/bin" "$CARRY/tests"

echo "== building the binaries and the GPU test executables (release)" >&2
{
    cargo build --release --locked -p swav-cuda --bins --message-format=json
    cargo build --release --locked -p swav-cli --bin swav --message-format=json
    cargo test --release --locked -p swav-cuda --no-run --message-format=json
    cargo test --release --locked -p swav-cli --test 'gpu_*' --no-run --message-format=json
} > "$CARRY/artifacts.json"

python3 - "$CARRY" <<'PY'
import json, shutil, sys

carry = sys.argv[1]
wanted_bins = {"swav", "swav-gpu-probe"}
for line in open(f"{carry}/artifacts.json"):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    target, package = m["target"], m["package_id"]
    if m["profile"]["test"]:
        if "test" in target["kind"]:
            if "swav-cli" in package and not target["name"].startswith("gpu_"):
                continue
            name = target["name"]
        elif "lib" in target["kind"] and "swav-cuda" in package:
            name = "swav_cuda_unit"
        else:
            continue  # binaries' (empty) test harnesses
        shutil.copy(m["executable"], f"{carry}/tests/{name}")
    elif "bin" in target["kind"] and target["name"] in wanted_bins:
        shutil.copy(m["executable"], f"{carry}/bin/{target['name']}")
PY
rm -f "$CARRY/artifacts.json"
for required in bin/swav bin/swav-gpu-probe tests/gpu_conformance tests/gpu_training; do
    [ -x "$CARRY/$required" ] || { echo "gpu-build: $CARRY/$required was not built" >&2; exit 1; }
done
strip --strip-unneeded "$CARRY"/bin/* "$CARRY"/tests/*
ls -l "$CARRY/bin" "$CARRY/tests" >&2
size_mib=$(( $(du -sk "$CARRY" | cut -f1) / 1024 ))
echo "gpu-build: $CARRY holds ${size_mib} MiB" >&2
if [ "$size_mib" -gt "$LIMIT_MIB" ]; then
    echo "gpu-build: $CARRY exceeds ${LIMIT_MIB} MiB" >&2
    exit 1
fi
