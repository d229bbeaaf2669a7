#!/usr/bin/env python3
"""CPU training-step throughput: swav-cpu against PyTorch, side by side on this machine.

    /work/pyenv/bin/python scripts/bench/cpu_train_step.py [SETTING ...] [--rounds=N]

Settings (all by default): rn50_224 and rn50_96 (torchvision resnet50, batch 8, 224 / 96 px)
and rn18_small_64 (resnet18 with the small-image stem: 3x3 stride-1 conv1, no max pooling;
batch 8, 64 px). A step is the same on both sides: zero the gradients, training-mode forward
to the pooled features, backward of sum(features * R), SGD with momentum 0.9 and weight
decay 1e-4 on every parameter. fp32, 2 threads on both sides (torch.set_num_threads(2);
rayon's pool has one thread per core). PyTorch runs NCHW and channels_last; the faster one
is its figure. Ours is crates/swav-cpu/examples/train_step.rs (built here with cargo,
CARGO_TARGET_DIR honoured). Prints images/s of both, the ratio, our sgemm rate against the
166 GFLOP/s FMA peak, and where our step's time goes.

Both sides report the median step and the fastest one; on a shared machine (other builds on
the same cores) the fastest steps are the closest to an unloaded machine, so the ratios are
given for both. Rounds (default 2) alternate the two sides setting by setting; each side
keeps its best round.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torchvision

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SETTINGS = {
    "rn50_224": ("resnet50", False, 224, 8, 6),
    "rn50_96": ("resnet50", False, 96, 8, 10),
    "rn18_small_64": ("resnet18", True, 64, 8, 12),
}


def torch_model(arch, small_stem):
    model = getattr(torchvision.models, arch)(weights=None)
    if small_stem:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    return model


def torch_images_per_second(name, channels_last):
    arch, small_stem, side, batch, steps = SETTINGS[name]
    torch.manual_seed(0)
    model = torch_model(arch, small_stem).train()
    x = torch.randn(batch, 3, side, side)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    r = torch.randn(batch, 2048 if arch == "resnet50" else 512) / 64
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


def ours(names):
    env = dict(os.environ)
    cmd = ["cargo", "run", "--release", "-q", "-p", "swav-cpu", "--example", "train_step",
           "--", "--json", *names]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    results, sgemm = {}, None
    for line in out.stdout.splitlines():
        record = json.loads(line)
        if "sgemm_gflops" in record:
            sgemm = record
        else:
            results[record["setting"]] = record
    return sgemm, results


def main():
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or list(SETTINGS)
    rounds = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--rounds=")), 2)
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{os.cpu_count()} CPUs; {rounds} rounds", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "swav-cpu", "--example",
                    "train_step"], cwd=ROOT, check=True)
    # Rounds alternate PyTorch and ours setting by setting, so that a load change on a
    # shared machine hits both sides alike; each side keeps its best round.
    reference, results, sgemm = {}, {}, None
    for _ in range(rounds):
        for name in names:
            nchw = torch_images_per_second(name, channels_last=False)
            nhwc = torch_images_per_second(name, channels_last=True)
            for layout, (median, best) in (("NCHW", nchw), ("channels_last", nhwc)):
                if name not in reference or median > reference[name][0]:
                    reference[name] = (median, best, layout)
            rate, mine = ours([name])
            if sgemm is None or rate["sgemm_gflops"] > sgemm["sgemm_gflops"]:
                sgemm = rate
            record = mine[name]
            if (name not in results
                    or record["images_per_second"] > results[name]["images_per_second"]):
                results[name] = record
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]

    print(f"\nsgemm (2048^3, 2 threads): {sgemm['sgemm_gflops']:.1f} GFLOP/s = "
          f"{100 * sgemm['sgemm_gflops'] / sgemm['peak_gflops']:.0f} % of the "
          f"{sgemm['peak_gflops']:.0f} GFLOP/s FMA peak")
    print(f"load average at the end: {load}\n")
    print(f"{'':16} {'median step':^33}  {'fastest step':^33}")
    print(f"{'setting':16} {'ours img/s':>11} {'torch img/s':>12} {'ratio':>7}   "
          f"{'ours img/s':>11} {'torch img/s':>12} {'ratio':>7}   torch layout")
    for name in names:
        median, best, layout = reference[name]
        mine, mine_best = (results[name]["images_per_second"],
                           results[name]["best_images_per_second"])
        print(f"{name:16} {mine:11.2f} {median:12.2f} {mine / median:7.2f}   "
              f"{mine_best:11.2f} {best:12.2f} {mine_best / best:7.2f}   {layout}")
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
