#!/usr/bin/env bash
# The GPU visit: one prepared script, in stages, each with its own time cap, stopping at the
# first stage that fails. Build first on the build machine (scripts/gpu-build.sh fills
# gpu-carry/ and ends with the dry run below), then on the GPU machine, from the repository
# root:
#
#   bash scripts/gpu-run.sh              (device tool: command "bash scripts/gpu-run.sh",
#                                         carry ["gpu-carry"], timeout_s 420)
#   bash scripts/gpu-run.sh --dry-run    (build machine, no GPU: checks that gpu-carry holds
#                                         every binary, kernel, script and test the stages
#                                         need, and that the stages write at most 8 files)
#   bash scripts/gpu-run.sh --from STAGE (a rerun after a fix: the stages before STAGE are
#                                         marked skipped and not run)
#
# Stages (cap in seconds; total about 300 s):
#   probe         nvidia-smi, gpu-env.sh, swav-gpu-probe: driver, NVRTC, cuBLAS, cuDNN, memory
#                 pool, the stem's tensor-core check, the library files actually loaded
#   conformance   op conformance in f32 and bf16 against the CPU backend and PyTorch's goldens
#                 (gpu_conformance), bf16 against f32 at ResNet-50's shapes at batch 64
#                 (gpu_training_shapes)
#   step          one f32 SwAV step against the CPU, and bit-identical repeated bf16 steps
#   loss          50 bf16 steps of ResNet-50 multi-crop whose loss must fall below ln K
#   head-staging  head operations against swav-core's reference; staged input batches
#   nccl          NCCL with a world of one (NCCL_SOCKET_IFNAME=lo, NCCL_CUMEM_ENABLE=0,
#                 NCCL_DEBUG=WARN)
#   bench         swav bench --device cuda (deterministic, then SWAV_CUDNN_ALGOS=fastest)
#                 against scripts/bench/gpu_swav_step.py (PyTorch bf16 channels_last): the
#                 ratio. Last, so that a slow benchmark can never keep the checks from
#                 running; a PyTorch baseline that fails or runs past its cap is reported,
#                 not fatal (the ratio is then missing).
# Every result goes under $OUT (default ./out), in at most 8 files: summary.txt (each
# stage's status and time, the key figures, the tail of a failed stage's log, the stages not
# run) and one log per stage. Exits 0 only if every stage passed.
set -uo pipefail
cd "$(dirname "$0")/.."

CARRY="${CARRY:-gpu-carry}"
OUT="${OUT:-$PWD/out}"
BATCH="${BATCH:-64}"
STEPS="${STEPS:-10}"
MAX_FILES=8

# name | cap (s) | what runs: `probe`, `bench`, or test executables of $CARRY/tests, each
# `binary` (all its tests) or `binary:test` (one test, by exact name).
STAGES=(
    "probe|20|probe"
    "conformance|75|gpu_conformance gpu_training_shapes"
    "step|40|gpu_training:one_f32_step_matches_the_cpu gpu_training:deterministic_algorithms_repeat_resnet50_steps_exactly"
    "loss|35|gpu_training:resnet50_multi_crop_loss_falls_below_ln_k"
    "head-staging|20|gpu_head_ops gpu_upload"
    "nccl|15|gpu_nccl"
    "bench|125|bench"
)
# Seconds of the bench stage given to each of its three runs. Each `timeout -k 5` may take
# 5 s more to kill, so the stage needs 40 + 40 + 25 + 3 × 5 = 120 s: its cap is 125.
BENCH_CAPS=(40 40 25)
# What every stage needs from the carry besides its test executables.
COMMON_NEEDS="scripts/gpu-env.sh kernels/manifest.txt"
PROBE_NEEDS="bin/swav-gpu-probe"
BENCH_NEEDS="bin/swav scripts/gpu_swav_step.py scripts/bench_summary.py"
# Where the carried scripts come from in the repository.
declare -A SCRIPT_SOURCES=(
    [scripts/gpu-env.sh]=scripts/gpu-env.sh
    [scripts/gpu_swav_step.py]=scripts/bench/gpu_swav_step.py
    [scripts/bench_summary.py]=scripts/gpu/bench_summary.py
)

field() { cut -d'|' -f"$2" <<< "$1"; }

# The carry paths stage `$1` (its "what runs" field) needs.
stage_needs() {
    case "$1" in
        probe) echo "$PROBE_NEEDS" ;;
        bench) echo "$BENCH_NEEDS" ;;
        *) for spec in $1; do echo "tests/${spec%%:*}"; done | sort -u | paste -sd' ' - ;;
    esac
}

# Runs the test executables of a stage's specs ($@), grouping the named tests per executable.
run_tests() {
    local -A names=()
    local order=() spec bin
    for spec in "$@"; do
        bin="${spec%%:*}"
        [ -n "${names[$bin]+set}" ] || { names[$bin]=""; order+=("$bin"); }
        [ "$spec" != "$bin" ] && names[$bin]+=" ${spec#*:}"
    done
    for bin in "${order[@]}"; do
        echo "== $bin${names[$bin]:+ (${names[$bin]# })}"
        # shellcheck disable=SC2086
        "$CARRY/tests/$bin" --test-threads=4 --nocapture ${names[$bin]:+--exact ${names[$bin]}} || return 1
    done
}

stage_probe() {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv ||
        echo "nvidia-smi: not available"
    "$CARRY/bin/swav-gpu-probe"
}

stage_bench() {
    local swav="$CARRY/bin/swav"
    echo "== swav bench --device cuda (deterministic algorithms)"
    timeout -k 5 "${BENCH_CAPS[0]}" "$swav" bench --device cuda --batch-size "$BATCH" --steps "$STEPS" \
        > "$SCRATCH/rust.json" || return 1
    cat "$SCRATCH/rust.json"
    echo "== scripts/bench/gpu_swav_step.py (PyTorch bf16 channels_last)"
    # The baseline is a figure, not a check: a failure or a timeout leaves the ratio out.
    if timeout -k 5 "${BENCH_CAPS[1]}" python3 "$CARRY/scripts/gpu_swav_step.py" --batch "$BATCH" \
        --steps "$STEPS" --json "$SCRATCH/torch.json"; then
        cat "$SCRATCH/torch.json"
    else
        echo "bench: the PyTorch baseline did not finish (exit $?); no ratio, not fatal"
        rm -f "$SCRATCH/torch.json"
    fi
    # A measurement for comparison, not a check: its failure is noted, not fatal.
    echo "== SWAV_CUDNN_ALGOS=fastest swav bench --device cuda"
    if SWAV_CUDNN_ALGOS=fastest timeout -k 5 "${BENCH_CAPS[2]}" "$swav" bench --device cuda \
        --batch-size "$BATCH" --steps "$STEPS" > "$SCRATCH/rust-fastest.json"; then
        cat "$SCRATCH/rust-fastest.json"
    else
        echo "bench: the fastest-algorithm run did not finish (exit $?); not fatal"
    fi
}

# ---- dry run: the build machine checks the carry ----
dry_run() {
    local bad=0 total=0 logs=() entry name cap what need spec bin tests listed
    note_bad() { echo "dry-run: $*"; bad=1; }
    [ -d "$CARRY" ] || { echo "dry-run: $CARRY is missing: run scripts/gpu-build.sh"; return 1; }
    for need in $COMMON_NEEDS; do
        [ -f "$CARRY/$need" ] || note_bad "$CARRY/$need is missing"
    done
    for need in "${!SCRIPT_SOURCES[@]}"; do
        [ -f "$CARRY/$need" ] && ! cmp -s "$CARRY/$need" "${SCRIPT_SOURCES[$need]}" &&
            note_bad "$CARRY/$need differs from ${SCRIPT_SOURCES[$need]}: rebuild the carry"
    done
    if [ -f "$CARRY/kernels/manifest.txt" ]; then
        grep -qx 'arch sm_90' "$CARRY/kernels/manifest.txt" || note_bad "the kernels are not for sm_90"
        while read -r tag module _ cubin ptx _; do
            [ "$tag" = module ] || continue
            [ "$(stat -c %s "$CARRY/kernels/$module.cubin" 2>/dev/null)" = "$cubin" ] ||
                note_bad "kernels/$module.cubin is missing or not $cubin bytes"
            [ "$(stat -c %s "$CARRY/kernels/$module.ptx" 2>/dev/null)" = "$ptx" ] ||
                note_bad "kernels/$module.ptx is missing or not $ptx bytes"
            echo "dry-run: kernel module $module: CUBIN $cubin bytes, PTX $ptx bytes"
        done < "$CARRY/kernels/manifest.txt"
    fi
    for entry in "${STAGES[@]}"; do
        name="$(field "$entry" 1)" cap="$(field "$entry" 2)" what="$(field "$entry" 3)"
        total=$((total + cap))
        logs+=("$name.log")
        for need in $(stage_needs "$what"); do
            [ -x "$CARRY/$need" ] || [ -f "$CARRY/$need" ] || note_bad "stage $name needs $CARRY/$need"
        done
        case "$what" in probe | bench) ;; *)
            for spec in $what; do
                bin="${spec%%:*}"
                [ -x "$CARRY/tests/$bin" ] || continue
                if [ "$spec" = "$bin" ]; then
                    listed="$("$CARRY/tests/$bin" --list 2>/dev/null | grep -c ': test$')"
                    [ "$listed" -gt 0 ] || note_bad "stage $name: $bin lists no test"
                else
                    tests="${spec#*:}"
                    listed="$("$CARRY/tests/$bin" --list --exact "$tests" 2>/dev/null | grep -c ': test$')"
                    [ "$listed" = 1 ] || note_bad "stage $name: $bin has no test named $tests"
                fi
                echo "dry-run: stage $name: $spec ($listed test(s))"
            done ;;
        esac
        echo "dry-run: stage $name: cap $cap s, log $name.log, needs $(stage_needs "$what")"
    done
    "$CARRY/bin/swav" bench --help > /dev/null 2>&1 || note_bad "$CARRY/bin/swav bench --help fails here"
    local files=$((1 + $(printf '%s\n' "${logs[@]}" | sort -u | wc -l)))
    echo "dry-run: the stages write $files files under \$OUT (summary.txt + ${#logs[@]} logs), at most $MAX_FILES"
    [ "$files" -le "$MAX_FILES" ] || note_bad "the stages would write $files files, more than $MAX_FILES"
    echo "dry-run: stage caps total $total s"
    [ "$total" -le 330 ] || note_bad "the stage caps total $total s, more than 330"
    echo "dry-run: $CARRY holds $(du -sm "$CARRY" | cut -f1) MiB"
    [ "$bad" = 0 ] && echo "dry-run: ok" || echo "dry-run: FAILED"
    return "$bad"
}

FROM=""
case "${1:-}" in
    --dry-run)
        dry_run
        exit $?
        ;;
    --from)
        FROM="${2:-}"
        printf '%s\n' "${STAGES[@]}" | cut -d'|' -f1 | grep -qx -- "$FROM" || {
            echo "gpu-run: --from needs a stage name, one of: $(printf '%s\n' "${STAGES[@]}" | cut -d'|' -f1 | paste -sd' ' -)" >&2
            exit 2
        }
        ;;
    "") ;;
    *)
        echo "gpu-run: unknown argument $1 (usage: gpu-run.sh [--dry-run | --from STAGE])" >&2
        exit 2
        ;;
esac

# ---- the visit ----
for need in $COMMON_NEEDS $PROBE_NEEDS; do
    [ -f "$CARRY/$need" ] || {
        echo "gpu-run: $CARRY/$need is missing: run scripts/gpu-build.sh on the build machine and carry $CARRY" >&2
        exit 2
    }
done
mkdir -p "$OUT"
SCRATCH="$(mktemp -d)"
SUMMARY="$OUT/summary.txt"
export CARRY BATCH STEPS SCRATCH PYTHONUNBUFFERED=1
export SWAV_REQUIRE_GPU=1 SWAV_CUDA_KERNELS="$(cd "$CARRY" && pwd)/kernels"
export -f run_tests stage_probe stage_bench
BENCH_CAPS_LIST="${BENCH_CAPS[*]}"
export BENCH_CAPS_LIST

{
    echo "swav GPU visit, $(date -u '+%Y-%m-%d %H:%M UTC'), batch $BATCH, $STEPS timed steps per benchmark"
    echo
} > "$SUMMARY"
# shellcheck source=scripts/gpu-env.sh
. "$CARRY/scripts/gpu-env.sh" > "$OUT/probe.log" 2>&1

failed=""
for i in "${!STAGES[@]}"; do
    entry="${STAGES[$i]}"
    name="$(field "$entry" 1)" cap="$(field "$entry" 2)" what="$(field "$entry" 3)"
    log="$OUT/$name.log"
    if [ -n "$failed" ]; then
        echo "stage $name: NOT RUN (stage $failed failed)" >> "$SUMMARY"
        continue
    fi
    if [ -n "$FROM" ]; then
        if [ "$name" != "$FROM" ]; then
            echo "stage $name: skipped (--from $FROM)" >> "$SUMMARY"
            continue
        fi
        FROM=""
    fi
    case "$what" in
        probe) command=stage_probe ;;
        bench) command='BENCH_CAPS=($BENCH_CAPS_LIST); stage_bench' ;;
        *) command="run_tests $what" ;;
    esac
    if [ "$name" = nccl ]; then
        export NCCL_SOCKET_IFNAME=lo NCCL_CUMEM_ENABLE=0 NCCL_DEBUG=WARN
    fi
    start=$SECONDS
    timeout -k 5 "$cap" bash -c "$command" >> "$log" 2>&1
    rc=$?
    took=$((SECONDS - start))
    case $rc in
        0) how="ok" ;;
        124 | 137) how="TIMED OUT at its cap" ;;
        *) how="FAILED (exit $rc)" ;;
    esac
    echo "stage $name: $how in $took s (cap $cap s)" >> "$SUMMARY"
    echo "stage $name: $how in $took s (cap $cap s)"
    if [ $rc -ne 0 ]; then
        failed="$name"
        {
            echo "---- last 40 lines of $name.log"
            tail -n 40 "$log"
            echo "----"
        } >> "$SUMMARY"
    fi
done

{
    echo
    echo "== key figures"
    grep -hE '^(device 0:|configuration:|kernels:|backend:|stem |loaded:|library origins:)' "$OUT/probe.log" 2>/dev/null
    grep -hE '^(loss: cuda|losses:|[0-9]+ steps in)' "$OUT/step.log" "$OUT/loss.log" 2>/dev/null
    grep -hE '^test result:' "$OUT"/*.log 2>/dev/null | sort | uniq -c
    if [ -s "$SCRATCH/rust.json" ] || [ -s "$SCRATCH/torch.json" ]; then
        python3 "$CARRY/scripts/bench_summary.py" "$SCRATCH/rust.json" "$SCRATCH/rust-fastest.json" \
            "$SCRATCH/torch.json"
    fi
    echo
    echo "files under \$OUT: $(find "$OUT" -type f | wc -l) (at most $MAX_FILES)"
} >> "$SUMMARY" 2>&1
rm -rf "$SCRATCH"
echo "== summary"
cat "$SUMMARY"
[ -z "$failed" ]
