#!/usr/bin/env python3
"""Whole SwAV training steps on the CPU: `swav bench --device cpu` against PyTorch, side by side.

    /work/pyenv/bin/python scripts/bench/cpu_swav_step.py [SETTING ...] [--rounds=N] [--threads=N]

Settings (all by default):

  * demo: the `swav pretrain` demo's network and step: ResNet-18 with the small-image stem
    (3x3 stride-1 conv1, no max pooling) at base width 16, two 32 px crops, batch 64,
    head 128-256-128, 30 prototypes (`swav bench --preset demo --batch-size 64`);
  * rn50_multicrop: ResNet-50, 2 x 224 + 6 x 96 crops, batch 8, head 2048-2048-128,
    3000 prototypes (`swav bench --preset imagenet-64gpu --batch-size 8`).

A step is the same on both sides: re-normalise the prototypes, one trunk pass per resolution
group, the projection head and prototypes on all crops, Sinkhorn (3 iterations, eps 0.05) on
crops 0 and 1, the swapped-prediction loss, backward, LARC around SGD with momentum (the
PyTorch side is the official code's step, from gpu_swav_step.py, run in f32 on the CPU).
2 threads on both sides by default (--threads; on a loaded machine compare with --threads=1,
see cpu_train_step.py). PyTorch runs channels_last (oneDNN's NHWC kernels, like ours; NCHW
measured no faster in cpu_train_step.py, and a whole step is long enough to time once).

Each side runs in a child process of its own (measured_child.py), so the script also reports
each side's peak resident memory. Rounds (default 2) alternate the sides setting by setting;
each side keeps its best round's median step.
"""

import os
import statistics
import subprocess
import sys
import time

import measured_child

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# name: (swav preset, arch, base width, small stem, [(crops, side)], batch, hidden, K, steps)
SETTINGS = {
    "demo": ("demo", "resnet18", 16, True, [(2, 32)], 64, 256, 30, 20),
    "rn50_multicrop": ("imagenet-64gpu", "resnet50", 64, False, [(2, 224), (6, 96)], 8, 2048,
                       3000, 3),
}


def torch_trunk(arch, base_width, small_stem):
    """torchvision's resnet18/resnet50 (fc removed), at `base_width` channels in the stem
    and first stage, with the small-image stem when asked."""
    import torch.nn as nn
    import torchvision
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    block, layers = {"resnet18": (BasicBlock, [2, 2, 2, 2]),
                     "resnet50": (Bottleneck, [3, 4, 6, 3])}[arch]
    if base_width == 64:
        model = getattr(torchvision.models, arch)(weights=None)
    else:
        # torchvision fixes the widths at 64 * 2^stage: rebuild the stages at base_width.
        model = ResNet(block, layers)
        model.inplanes = base_width
        model.conv1 = nn.Conv2d(3, base_width, 7, 2, 3, bias=False)
        model.bn1 = nn.BatchNorm2d(base_width)
        for stage, count in enumerate(layers):
            stride = 1 if stage == 0 else 2
            setattr(model, f"layer{stage + 1}",
                    model._make_layer(block, base_width << stage, count, stride=stride))
    if small_stem:
        model.conv1 = nn.Conv2d(3, base_width, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    return model, (base_width << 3) * block.expansion


def torch_worker(name, channels_last):
    """One PyTorch measurement in this process: prints one JSON line."""
    import json

    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from gpu_swav_step import Larc, swav_loss

    _, arch, base_width, small_stem, groups, batch, hidden, k, steps = SETTINGS[name]
    torch.set_num_threads(int(os.environ["SWAV_BENCH_THREADS"]))
    torch.manual_seed(0)
    trunk, features = torch_trunk(arch, base_width, small_stem)
    head = nn.Sequential(nn.Linear(features, hidden), nn.BatchNorm1d(hidden),
                         nn.ReLU(inplace=True), nn.Linear(hidden, 128))
    prototypes = nn.Linear(128, k, bias=False)
    model = nn.ModuleList([trunk, head, prototypes]).train()
    inputs = [torch.rand(crops * batch, 3, side, side) * 4 - 2 for crops, side in groups]
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        inputs = [x.contiguous(memory_format=torch.channels_last) for x in inputs]
    crops = sum(c for c, _ in groups)
    opt = Larc(model.parameters(), lr=0.3)

    def step():
        with torch.no_grad():
            w = prototypes.weight.data.clone()
            prototypes.weight.copy_(F.normalize(w, dim=1, p=2))
        z = F.normalize(head(torch.cat([trunk(x) for x in inputs])), dim=1, p=2)
        loss = swav_loss(prototypes(z), batch, crops)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up, as `swav bench`
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print(json.dumps({"median_step_s": statistics.median(times)}))


def ours_command(name):
    preset, *_, batch, _, _, steps = SETTINGS[name]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return [os.path.join(target, "release", "swav"), "bench", "--device", "cpu",
            "--preset", preset, "--batch-size", str(batch), "--steps", str(steps)]


def torch_command(name, layout):
    return [sys.executable, os.path.abspath(__file__), "--worker", name, layout]


def main():
    if sys.argv[1:2] == ["--worker"]:
        torch_worker(sys.argv[2], sys.argv[3] == "channels_last")
        return
    names, rounds, threads = measured_child.options(SETTINGS)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "swav-cli"], cwd=ROOT, check=True)
    # Each side keeps the best median of its rounds and the peak memory of that run.
    best = {}
    for _ in range(rounds):
        for name in names:
            batch = SETTINGS[name][5]
            runs = [("ours", ours_command(name)),
                    ("torch channels_last", torch_command(name, "channels_last"))]
            for side, cmd in runs:
                records, rss = measured_child.run(cmd, threads, cwd=os.path.dirname(__file__))
                rate = batch / records[-1]["median_step_s"]
                key = (name, "ours" if side == "ours" else "torch")
                if key not in best or rate > best[key][0]:
                    best[key] = (rate, rss, side)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"{threads} threads each side, {rounds} rounds; load average at the end: {load}\n")
    print(f"{'setting':16} {'ours img/s':>11} {'torch img/s':>12} {'ratio':>7}   "
          f"{'ours MiB':>9} {'torch MiB':>10}")
    for name in names:
        (mine, mine_rss, _), (ref, ref_rss, _) = best[(name, "ours")], best[(name, "torch")]
        print(f"{name:16} {mine:11.2f} {ref:12.2f} {mine / ref:7.2f}   "
              f"{mine_rss:9.0f} {ref_rss:10.0f}")


if __name__ == "__main__":
    main()
