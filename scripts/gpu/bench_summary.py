#!/usr/bin/env python3
"""The benchmark lines of the GPU visit's summary, from the JSON results of one visit.

    python3 scripts/gpu/bench_summary.py RUST.json RUST_FASTEST.json TORCH.json

RUST.json and RUST_FASTEST.json: the JSON line `swav bench --device cuda` prints, with the
default (deterministic) and the `SWAV_CUDNN_ALGOS=fastest` convolution algorithms; TORCH.json:
what scripts/bench/gpu_swav_step.py --json writes. A missing or unreadable file is reported
as "no result". Prints ms per step and samples/s of each, the ratio of samples/s against
PyTorch (the issue's goal is at least 0.8), peak memory, and swav-cuda's GPU-time split.
"""

import json
import sys

# Trained FLOP per SwAV sample of ResNet-50 with 2x224 + 6x96 crops (forward + backward).
FLOP_PER_SAMPLE = 76.7e9


def load(path):
    try:
        with open(path) as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        if not lines:
            return None
        try:
            return json.loads("\n".join(lines))
        except ValueError:
            return json.loads(lines[-1])
    except (OSError, ValueError):
        return None


def main(rust_path, fastest_path, torch_path):
    runs = [
        ("swav-cuda deterministic", load(rust_path)),
        ("swav-cuda fastest", load(fastest_path)),
        ("pytorch bf16 channels_last", load(torch_path)),
    ]
    torch = runs[2][1]
    for label, r in runs:
        if not r:
            print(f"{label}: no result")
            continue
        line = (
            f"{label}: {r['step_ms']:.2f} ms/step, {r['samples_per_s']:.0f} samples/s "
            f"(batch {r.get('batch', '?')}); loss {r['first_loss']:.4f} -> {r['last_loss']:.4f}; "
            f"ceilings: copy {r['copy_tb_s']:.2f} TB/s, bf16 product {r['bf16_matmul_tflops']:.0f} TFLOP/s, "
            f"MFU {100 * r['samples_per_s'] * FLOP_PER_SAMPLE / (r['bf16_matmul_tflops'] * 1e12):.1f}%"
        )
        if torch and r is not torch:
            line += f"; ratio vs pytorch {r['samples_per_s'] / torch['samples_per_s']:.3f}"
        print(line)
        if "upload_step_ms" in r:
            print(
                f"{label}: with each batch staged during the previous step "
                f"{r['upload_step_ms']:.2f} ms/step, {r['upload_samples_per_s']:.0f} samples/s; "
                f"peak {r['step_peak_gib']:.2f} GiB in live buffers, "
                f"pool {r['pool_reserved_gib']:.2f} GiB, conv workspace {r['conv_workspace_mib']:.0f} MiB"
            )
            split = {k[len("split_ms_"):]: v for k, v in r.items() if k.startswith("split_ms_")}
            total = sum(split.values()) or float("nan")
            print(
                f"{label}: GPU time of one step ({r['profiled_gpu_busy_ms']:.2f} ms busy, "
                f"{r['profiled_step_ms']:.2f} ms wall): "
                + ", ".join(f"{k} {v:.2f} ms ({100 * v / total:.0f}%)" for k, v in split.items())
                + f"; copy stream {r['copy_stream_ms']:.2f} ms (overlapped)"
            )
            print(
                f"{label}: top operations: "
                + ", ".join(f"{op['name']} {op['ms']:.2f} ms/{op['calls']}" for op in r.get("top_ops", [])[:8])
            )
        elif "peak_allocated_gib" in r:
            split = {k[len("split_ms_"):]: v for k, v in r.items() if k.startswith("split_ms_")}
            print(
                f"{label}: peak allocated {r['peak_allocated_gib']:.2f} GiB; split: "
                + ", ".join(f"{k} {v:.2f} ms" for k, v in split.items())
            )


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: bench_summary.py RUST.json RUST_FASTEST.json TORCH.json")
    main(*sys.argv[1:])
