#!/usr/bin/env bash
# Builds, on this (GPU-less, x86-64) machine, everything scripts/gpu-run.sh runs on the GPU
# machine, which has no Rust toolchain: the probe and bench binaries and swav-cuda's test
# executables, copied into gpu-carry/ (git-ignored), the folder to carry:
#
#   scripts/gpu-build.sh
#   run(command="bash scripts/gpu-run.sh", carry=["gpu-carry"])
#
# Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

CARRY=gpu-carry
rm -rf "$CARRY"
mkdir -p "$CARRY/bin" "$CARRY/tests"

echo "== building swav-cuda's binaries and test executables (release)" >&2
cargo build --release --locked -p swav-cuda --bins --message-format=json > "$CARRY/bins.json"
cargo test --release --locked -p swav-cuda --no-run --message-format=json > "$CARRY/tests.json"
python3 - "$CARRY" <<'PY'
import json, shutil, sys

carry = sys.argv[1]
for listing in ("bins.json", "tests.json"):
    for line in open(f"{carry}/{listing}"):
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") != "compiler-artifact" or not m.get("executable"):
            continue
        if "swav-cuda" not in m["package_id"]:
            continue
        target = m["target"]
        if m["profile"]["test"]:
            if "test" in target["kind"]:
                name = target["name"]
            elif "lib" in target["kind"]:
                name = "unit"
            else:
                continue  # the binaries' (empty) test harnesses
            shutil.copy(m["executable"], f"{carry}/tests/{name}")
        elif "bin" in target["kind"]:
            shutil.copy(m["executable"], f"{carry}/bin/{target['name']}")
PY
rm -f "$CARRY/bins.json" "$CARRY/tests.json"
ls -l "$CARRY/bin" "$CARRY/tests" >&2
du -sh "$CARRY" >&2
