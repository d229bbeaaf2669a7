#!/usr/bin/env python3
"""CPU training-step throughput: swav-cpu against PyTorch, side by side on this machine.

    /work/pyenv/bin/python scripts/bench/cpu_train_step.py [SETTING ...] [--rounds=N] [--threads=N]

Settings (all by default): rn50_224 and rn50_96 (torchvision resnet50, batch 8, 224 / 96 px),
rn18_small_64 (resnet18 with the small-image stem: 3x3 stride-1 conv1, no max pooling;
batch 8, 64 px) and rn18_demo_32 (the demo's trunk: that network at base width 16, 128 crops
of 32 px). A step is the same on both sides: zero the gradients, training-mode forward
to the pooled features, backward of sum(features * R), SGD with momentum 0.9 and weight
decay 1e-4 on every parameter. fp32, 2 threads on both sides by default (--threads: torch's
intra-op threads, rayon's pool). On a loaded machine PyTorch's OpenMP threads lose far more
than rayon's (a preempted thread stalls every barrier), so compare there with --threads=1.
PyTorch runs NCHW and channels_last; the faster one is its figure. Ours is
crates/swav-cpu/examples/train_step.rs (built here with cargo, CARGO_TARGET_DIR honoured).
Prints images/s of both, the ratio, each side's peak resident memory, our sgemm rate, and
where our step's time goes.

Every measurement runs in a child process of its own (measured_child.py), so that its peak
resident memory is its own. Both sides report the median step and the fastest one; on a
shared machine (other builds on the same cores) the fastest steps are the closest to an
unloaded machine, so the ratios are given for both. Rounds (default 2) alternate the two
sides setting by setting; each side keeps its best round.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import measured_child

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# name: (arch, base width, small stem, side, batch, steps)
SETTINGS = {
    "rn50_224": ("resnet50", 64, False, 224, 8, 6),
    "rn50_96": ("resnet50", 64, False, 96, 8, 10),
    "rn18_small_64": ("resnet18", 64, True, 64, 8, 12),
    "rn18_demo_32": ("resnet18", 16, True, 32, 128, 12),
}


def torch_images_per_second(name, channels_last):
    import torch
    from cpu_swav_step import torch_trunk

    arch, base_width, small_stem, side, batch, steps = SETTINGS[name]
    torch.set_num_threads(int(os.environ["SWAV_BENCH_THREADS"]))
    torch.manual_seed(0)
    model, features = torch_trunk(arch, base_width, small_stem)
    model = model.train()
    x = torch.randn(batch, 3, side, side)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    r = torch.randn(batch, features) / 64
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    def step():
        opt.zero_grad()
        (model(x) * r).sum().backward()
        opt.step()

    step()  # warm-up
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times), batch / min(times)


def ours(name, threads):
    """Our example on one setting: (sgemm record, setting record with its peak memory)."""
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    cmd = [os.path.join(target, "release", "examples", "train_step"), "--json", name]
    records, rss = measured_child.run(cmd, threads)
    sgemm = next(r for r in records if "sgemm_gflops" in r)
    record = next(r for r in records if r.get("setting") == name)
    record["peak_mib"] = rss
    return sgemm, record


def torch_measured(name, layout, threads):
    """PyTorch on one setting in a child process: (median, best, layout, peak MiB)."""
    records, rss = measured_child.run([sys.executable, os.path.abspath(__file__), "--worker",
                                       name, layout], threads)
    return records[0]["median"], records[0]["best"], layout, rss


def main():
    if sys.argv[1:2] == ["--worker"]:
        median, best = torch_images_per_second(sys.argv[2], sys.argv[3] == "channels_last")
        print(json.dumps({"median": median, "best": best}))
        return
    names, rounds, threads = measured_child.options(SETTINGS)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "swav-cpu", "--example",
                    "train_step"], cwd=ROOT, check=True)
    # Rounds alternate PyTorch and ours setting by setting, so that a load change on a
    # shared machine hits both sides alike; each side keeps its best round.
    reference, results, sgemm = {}, {}, None
    for _ in range(rounds):
        for name in names:
            for layout in ("NCHW", "channels_last"):
                measured = torch_measured(name, layout, threads)
                if name not in reference or measured[0] > reference[name][0]:
                    reference[name] = measured
            rate, record = ours(name, threads)
            if sgemm is None or rate["sgemm_gflops"] > sgemm["sgemm_gflops"]:
                sgemm = rate
            if (name not in results
                    or record["images_per_second"] > results[name]["images_per_second"]):
                results[name] = record
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]

    print(f"{threads} threads each side; {os.cpu_count()} CPUs; {rounds} rounds")
    print(f"sgemm (2048^3, {threads} threads): {sgemm['sgemm_gflops']:.1f} GFLOP/s = "
          f"{100 * sgemm['sgemm_gflops'] / sgemm['peak_gflops']:.0f} % of the "
          f"{sgemm['peak_gflops']:.0f} GFLOP/s FMA peak")
    print(f"load average at the end: {load}\n")
    print(f"{'':16} {'median step':^33}  {'fastest step':^33}")
    print(f"{'setting':16} {'ours img/s':>11} {'torch img/s':>12} {'ratio':>7}   "
          f"{'ours img/s':>11} {'torch img/s':>12} {'ratio':>7}   {'ours MiB':>9} "
          f"{'torch MiB':>10}   torch layout")
    for name in names:
        median, best, layout, torch_rss = reference[name]
        mine, mine_best = (results[name]["images_per_second"],
                           results[name]["best_images_per_second"])
        print(f"{name:16} {mine:11.2f} {median:12.2f} {mine / median:7.2f}   "
              f"{mine_best:11.2f} {best:12.2f} {mine_best / best:7.2f}   "
              f"{results[name]['peak_mib']:9.0f} {torch_rss:10.0f}   {layout}")
    for name in names:
        ops = results[name]["ops"]
        total = sum(o["seconds"] for o in ops.values())
        groups = {"conv forward": ["conv_forward"], "conv dgrad": ["conv_backward_data"],
                  "conv wgrad": ["conv_backward_filter"],
                  "batch norm": [k for k in ops if k.startswith("batch_norm")],
                  "relu/pool": ["relu_backward", "max_pool_forward", "max_pool_backward",
                                "avg_pool_forward", "avg_pool_backward"],
                  "optimizer + copies": ["sgd_momentum_step", "fill", "copy", "axpy"]}
        shares = []
        for label, keys in groups.items():
            seconds = sum(ops[k]["seconds"] for k in keys if k in ops)
            shares.append(f"{label} {100 * seconds / total:.0f} %")
        conv = sum(ops[k]["flops"] for k in ops if k.startswith("conv"))
        conv_s = sum(ops[k]["seconds"] for k in ops if k.startswith("conv"))
        print(f"\n{name}: " + ", ".join(shares)
              + f"; convolutions at {conv / conv_s / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
