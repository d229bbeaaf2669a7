#!/usr/bin/env bash
# Every GPU check, the benchmark pair and a short training run, on a GPU machine, in one call.
# Build first on the build machine (scripts/gpu-build.sh fills gpu-carry/), then on the GPU
# machine, from the repository root:
#
#   bash scripts/gpu-run.sh            (device tool: command "bash scripts/gpu-run.sh",
#                                       carry ["gpu-carry"])
#
# Stages, each with its own time limit inside an overall budget (GPU_RUN_BUDGET seconds,
# default 540, under the device tool's 10 minutes; the tests leave RESERVE seconds, default 330,
# to the stages after them), all output under $OUT (default ./out):
#   probe.txt          gpu-env.sh, nvidia-smi, swav-gpu-probe (libraries, versions, devices,
#                      pool, cuBLAS, cuDNN, NCCL)
#   tests.txt          every test executable of gpu-carry/tests (swav-cuda's tests, the
#                      conformance checks against the CPU backend, swav-cli's gpu_training),
#                      SWAV_REQUIRE_GPU=1 SWAV_REQUIRE_NVRTC=1, output not captured
#   bench_rust.json    `swav bench --device cuda`: the SwAV step of ResNet-50, 2x224 + 6x96,
#   bench_rust.txt     batch $BATCH, synthetic inputs, with the copy and bf16 product ceilings,
#                      staged uploads, memory and the GPU-time split (JSON line + report)
#   bench_torch.json   scripts/bench/gpu_swav_step.py: the same step in PyTorch, same run
#   bench_torch.txt
#   pretrain.txt       `swav pretrain --device cuda --preset demo --epochs 2` (its run folder
#   pretrain-demo/     with metrics, checkpoints, k-NN report)
#   summary.txt        the ratio of the two benchmarks, the splits, and each stage's status
# Exits non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-$PWD/out}"
CARRY="${CARRY:-gpu-carry}"
BATCH="${BATCH:-64}"
STEPS="${STEPS:-20}"
BUDGET="${GPU_RUN_BUDGET:-540}"
RESERVE="${RESERVE:-330}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

if [ ! -x "$CARRY/bin/swav" ] || [ ! -x "$CARRY/bin/swav-gpu-probe" ]; then
    echo "gpu-run: $CARRY/bin is incomplete: run scripts/gpu-build.sh on the build machine and carry $CARRY" >&2
    exit 2
fi
# shellcheck source=scripts/gpu-env.sh
. scripts/gpu-env.sh > "$OUT/probe.txt" 2>&1

status=()
# stage NAME SECONDS RESERVED LOG COMMAND...: runs COMMAND (stdout and stderr appended to LOG)
# for at most SECONDS, and never into the last RESERVED seconds of the budget.
stage() {
    local name="$1" limit="$2" reserved="$3" log="$4"
    shift 4
    local left=$((BUDGET - SECONDS - reserved))
    if [ "$left" -lt 10 ]; then
        status+=("$name: SKIPPED (out of time)")
        return 1
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local start=$SECONDS
    timeout "$limit" "$@" >> "$log" 2>&1
    local rc=$?
    local how="ok"
    [ $rc -eq 124 ] && how="TIMED OUT after $limit s"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && how="FAILED (exit $rc)"
    status+=("$name: $how in $((SECONDS - start)) s")
    return $rc
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv; echo; } >> "$OUT/probe.txt" 2>&1
stage probe 60 "$RESERVE" "$OUT/probe.txt" "$CARRY/bin/swav-gpu-probe"

: > "$OUT/tests.txt"
export SWAV_REQUIRE_GPU=1 SWAV_REQUIRE_NVRTC=1
for t in "$CARRY"/tests/*; do
    echo "== $(basename "$t")" >> "$OUT/tests.txt"
    stage "test $(basename "$t")" 200 "$RESERVE" "$OUT/tests.txt" "$t" --test-threads=1 --nocapture
done

: > "$OUT/bench_rust.txt"
stage "bench swav-cuda" 150 210 "$OUT/bench_rust.txt" \
    sh -c "'$CARRY/bin/swav' bench --device cuda --batch-size '$BATCH' --steps '$STEPS' > '$OUT/bench_rust.json'"
: > "$OUT/bench_torch.txt"
stage "bench pytorch" 150 90 "$OUT/bench_torch.txt" \
    python3 scripts/bench/gpu_swav_step.py --batch "$BATCH" --steps "$STEPS" --json "$OUT/bench_torch.json"
: > "$OUT/pretrain.txt"
stage "pretrain demo" 90 0 "$OUT/pretrain.txt" \
    "$CARRY/bin/swav" pretrain --device cuda --preset demo --epochs 2 --workers 12 \
    --output "$OUT/pretrain-demo"

python3 - "$OUT" > "$OUT/summary.txt" <<'PY'
import json, os, sys

out = sys.argv[1]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.loads(f.read().strip().splitlines()[-1]) if name.endswith("rust.json") else json.load(f)
    except (OSError, ValueError, IndexError):
        return None

rust, torch = load("bench_rust.json"), load("bench_torch.json")
for label, r in (("swav-cuda", rust), ("pytorch", torch)):
    if r:
        print(f"{label:10} {r['device']}: {r['step_ms']:.2f} ms/step, {r['steps_per_s']:.2f} steps/s, "
              f"{r['samples_per_s']:.0f} samples/s; copy {r['copy_tb_s']:.2f} TB/s, "
              f"bf16 matmul {r['bf16_matmul_tflops']:.0f} TFLOP/s; loss {r['first_loss']:.4f} -> {r['last_loss']:.4f}")
    else:
        print(f"{label:10} no result")
if rust:
    print(f"swav-cuda  with each batch staged during the previous step: {rust['upload_step_ms']:.2f} ms/step, "
          f"{rust['upload_samples_per_s']:.0f} samples/s")
if rust and torch:
    print(f"ratio swav-cuda / pytorch (samples/s, same run, same GPU): "
          f"{rust['samples_per_s'] / torch['samples_per_s']:.3f} (issue goal >= 0.8)")
    flops = 76.7e9  # trained FLOP per SwAV sample, 2x224 + 6x96 (PERFORMANCE.md)
    for label, r in (("swav-cuda", rust), ("pytorch", torch)):
        mfu = r["samples_per_s"] * flops / (r["bf16_matmul_tflops"] * 1e12)
        print(f"{label:10} MFU vs the measured bf16 product rate: {100 * mfu:.1f}%")
    print(f"memory of a step: swav-cuda peak {rust['step_peak_gib']:.2f} GiB in live buffers, "
          f"pytorch peak allocated {torch.get('peak_allocated_gib', float('nan')):.2f} GiB")
if rust:
    split = {k[len('split_ms_'):]: v for k, v in rust.items() if k.startswith("split_ms_")}
    total = sum(split.values()) or float("nan")
    print(f"swav-cuda split of one step ({rust['profiled_gpu_busy_ms']:.2f} ms busy, "
          f"{rust['profiled_gpu_span_ms']:.2f} ms span, {rust['profiled_step_ms']:.2f} ms wall): "
          + ", ".join(f"{k} {v:.2f} ms ({100 * v / total:.0f}%)" for k, v in split.items())
          + f"; copy stream {rust['copy_stream_ms']:.2f} ms (overlapped)")
    print("swav-cuda top operations: " + ", ".join(
        f"{op['name']} {op['ms']:.2f} ms/{op['calls']}" for op in rust.get("top_ops", [])[:8]))
if torch:
    tsplit = {k[len('split_ms_'):]: v for k, v in torch.items() if k.startswith("split_ms_")}
    if tsplit:
        print("pytorch split:   " + ", ".join(f"{k} {v:.2f} ms" for k, v in tsplit.items()))
PY
printf '%s\n' "${status[@]}" >> "$OUT/summary.txt"
echo "== tail of the test log"
grep -E '^(== |test result|failures:|    [a-z_0-9]+$)|panicked' "$OUT/tests.txt" | tail -50
echo "== summary"
cat "$OUT/summary.txt"
for s in "${status[@]}"; do
    case "$s" in *FAILED* | *SKIPPED* | *"TIMED OUT"*) exit 1 ;; esac
done
exit 0
