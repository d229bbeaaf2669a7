#!/usr/bin/env bash
# Runs every GPU check of swav-cuda and the benchmark pair on a GPU machine, in one call.
# Build first on the build machine (scripts/gpu-build.sh fills gpu-carry/), then on the GPU
# machine, from the repository root:
#
#   bash scripts/gpu-run.sh            (device tool: command "bash scripts/gpu-run.sh",
#                                       carry ["gpu-carry"])
#
# Steps, each with its own time limit inside an overall budget (GPU_RUN_BUDGET seconds, default
# 570, under the device tool's 10 minutes), all output under $OUT (default ./out):
#   probe.txt        nvidia-smi, then swav-gpu-probe (libraries, versions, devices, pool,
#                    cuBLAS, cuDNN, NCCL)
#   tests.txt        every swav-cuda test executable, SWAV_REQUIRE_GPU=1 SWAV_REQUIRE_NVRTC=1
#   bench_rust.*     swav-gpu-bench: ResNet-50 SwAV step, 2x224 + 6x96, batch 64, + ceilings
#   bench_torch.*    scripts/bench/gpu_swav_step.py: the PyTorch step, same shapes, + ceilings
#   summary.txt      the ratio of the two, and which stages passed (also printed last)
# Exits non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-$PWD/out}"
CARRY="${CARRY:-gpu-carry}"
BATCH="${BATCH:-64}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

if [ ! -x "$CARRY/bin/swav-gpu-probe" ]; then
    echo "gpu-run: $CARRY/bin is missing: run scripts/gpu-build.sh on the build machine and carry $CARRY" >&2
    exit 2
fi
# shellcheck source=scripts/gpu-env.sh
. scripts/gpu-env.sh > "$OUT/probe.txt" 2>&1

BUDGET="${GPU_RUN_BUDGET:-570}"
status=()
stage() { # name, seconds, log, command...
    local name="$1" limit="$2" log="$3"
    shift 3
    local left=$((BUDGET - SECONDS))
    if [ "$left" -lt 15 ]; then
        status+=("$name: SKIPPED (out of time)")
        return 1
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local start=$SECONDS
    timeout "$limit" "$@" >> "$log" 2>&1
    local rc=$?
    status+=("$name: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in $((SECONDS - start)) s")
    return $rc
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv; echo; } >> "$OUT/probe.txt" 2>&1
stage probe 120 "$OUT/probe.txt" "$CARRY/bin/swav-gpu-probe"

: > "$OUT/tests.txt"
export SWAV_REQUIRE_GPU=1 SWAV_REQUIRE_NVRTC=1
for t in "$CARRY"/tests/*; do
    echo "== $(basename "$t")" >> "$OUT/tests.txt"
    stage "test $(basename "$t")" 240 "$OUT/tests.txt" "$t" --test-threads=1
done

stage "bench rust" 300 "$OUT/bench_rust.txt" \
    "$CARRY/bin/swav-gpu-bench" --batch "$BATCH" --json "$OUT/bench_rust.json"
stage "bench torch" 300 "$OUT/bench_torch.txt" \
    python3 scripts/bench/gpu_swav_step.py --batch "$BATCH" --json "$OUT/bench_torch.json"

python3 - "$OUT" > "$OUT/summary.txt" <<'PY'
import json, os, sys

out = sys.argv[1]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

rust, torch = load("bench_rust.json"), load("bench_torch.json")
for label, r in (("swav-cuda", rust), ("pytorch", torch)):
    if r:
        print(f"{label:10} {r['device']}: {r['step_ms']:.2f} ms/step, {r['steps_per_s']:.2f} steps/s, "
              f"{r['samples_per_s']:.0f} samples/s; copy {r['copy_tb_s']:.2f} TB/s, "
              f"bf16 matmul {r['bf16_matmul_tflops']:.0f} TFLOP/s; loss {r['first_loss']:.4f} -> {r['last_loss']:.4f}")
    else:
        print(f"{label:10} no result")
if rust and torch:
    print(f"ratio swav-cuda / pytorch (samples/s, same run, same GPU): "
          f"{rust['samples_per_s'] / torch['samples_per_s']:.3f} (issue goal >= 0.8)")
    flops = 76.7e9  # trained FLOP per SwAV sample (PERFORMANCE.md)
    for label, r in (("swav-cuda", rust), ("pytorch", torch)):
        mfu = r["samples_per_s"] * flops / (r["bf16_matmul_tflops"] * 1e12)
        print(f"{label:10} MFU vs the measured bf16 product rate: {100 * mfu:.1f}%")
    print(f"memory of a step: swav-cuda peak {rust.get('step_peak_gib', float('nan')):.2f} GiB in live buffers, "
          f"pytorch peak allocated {torch.get('peak_allocated_gib', float('nan')):.2f} GiB (issue goal: fits in 40 GB)")
    split = {k[len('split_ms_'):]: v for k, v in rust.items() if k.startswith("split_ms_")}
    total = sum(split.values())
    print("swav-cuda split: " + ", ".join(f"{k} {v:.2f} ms ({100 * v / total:.0f}%)" for k, v in split.items()))
    tsplit = {k[len('split_ms_'):]: v for k, v in torch.items() if k.startswith("split_ms_")}
    if tsplit:
        print("pytorch split:   " + ", ".join(f"{k} {v:.2f} ms" for k, v in tsplit.items()))
PY
printf '%s\n' "${status[@]}" >> "$OUT/summary.txt"
echo "== tail of the test log"
grep -E '^(== |test result|failures:|    [a-z_]+$)|panicked' "$OUT/tests.txt" | tail -40
echo "== summary"
cat "$OUT/summary.txt"
for s in "${status[@]}"; do
    case "$s" in *FAILED* | *SKIPPED*) exit 1 ;; esac
done
exit 0
