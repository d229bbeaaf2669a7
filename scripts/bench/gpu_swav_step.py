#!/usr/bin/env python3
"""The PyTorch baseline of `swav bench --device cuda`: one SwAV training step of ResNet-50 on one GPU.

The same step as `swav bench --device cuda --batch-size 64` (crates/swav-cli/src/bench/
cuda.rs, which times the step of `swav pretrain --device cuda`), written the way the
official code runs it (facebookresearch/swav main_swav.py), on a modern PyTorch:

  * torchvision resnet50 trunk (fc removed), channels_last, bf16 autocast;
  * multi-crop forward: one trunk pass per resolution group (2 x 224, 6 x 96), the head once on
    all crops: Linear 2048-2048, BatchNorm1d, ReLU, Linear 2048-128, L2 normalisation,
    prototypes Linear 128-3000 without bias (re-normalised at the start of the step);
  * Sinkhorn-Knopp (the official distributed_sinkhorn on one GPU, eps 0.05, 3 iterations, in
    f32) for crops 0 and 1, the swapped-prediction loss (temperature 0.1);
  * LARC (trust 0.001, clip off, eps 1e-8, weight decay 1e-6, exactly apex's math, but without
    apex's per-tensor host synchronisation) around SGD with momentum 0.9;
  * synthetic inputs already on the GPU, batch 64 images per step.

It also measures the two ceilings of docs/performance.md ("Measuring on a GPU") in the same
run: a large device-to-device copy (bytes read + written) and an 8192^3 bf16 matrix product.

    python3 scripts/bench/gpu_swav_step.py [--batch 64] [--steps 20] [--warmup 5] [--json PATH]

Prints ms per step, steps/s and samples/s (a sample is one image with all its crops), and a
split of one step's GPU time measured with CUDA events.
"""

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class SwavModel(nn.Module):
    def __init__(self, prototypes):
        super().__init__()
        trunk = torchvision.models.resnet50(weights=None)
        trunk.fc = nn.Identity()
        self.trunk = trunk
        self.projection_head = nn.Sequential(
            nn.Linear(2048, 2048), nn.BatchNorm1d(2048), nn.ReLU(inplace=True), nn.Linear(2048, 128)
        )
        self.prototypes = nn.Linear(128, prototypes, bias=False)
        # SwAV's initialisation of the convolutions (torchvision's default is the same rule).
        for m in self.trunk.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, groups):
        features = torch.cat([self.trunk(g) for g in groups])
        z = F.normalize(self.projection_head(features), dim=1, p=2)
        return z, self.prototypes(z)


@torch.no_grad()
def sinkhorn(out, eps=0.05, iterations=3):
    q = torch.exp(out.float() / eps).t()
    b, k = q.shape[1], q.shape[0]
    q /= torch.sum(q)
    for _ in range(iterations):
        q /= torch.sum(q, dim=1, keepdim=True)
        q /= k
        q /= torch.sum(q, dim=0, keepdim=True)
        q /= b
    q *= b
    return q.t()


def swav_loss(output, bs, crops, temperature=0.1):
    loss = 0.0
    for crop_id in (0, 1):
        with torch.no_grad():
            q = sinkhorn(output[bs * crop_id : bs * (crop_id + 1)].detach())
        subloss = 0.0
        for v in (v for v in range(crops) if v != crop_id):
            x = output[bs * v : bs * (v + 1)].float() / temperature
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (crops - 1)
    return loss / 2


class Larc:
    """apex.parallel.LARC(SGD, trust_coefficient=0.001, clip=False), same math, no host syncs."""

    def __init__(self, params, lr, momentum=0.9, weight_decay=1e-6, trust=0.001, eps=1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.weight_decay, self.trust, self.eps = weight_decay, trust, eps
        self.sgd = torch.optim.SGD(self.params, lr=lr, momentum=momentum, weight_decay=0.0, foreach=True)

    @torch.no_grad()
    def step(self):
        for p in self.params:
            if p.grad is None:
                continue
            param_norm = torch.norm(p)
            grad_norm = torch.norm(p.grad)
            adapt = (param_norm != 0) & (grad_norm != 0)
            rate = self.trust * param_norm / (grad_norm + param_norm * self.weight_decay + self.eps)
            decay = torch.where(adapt, self.weight_decay, 0.0)
            p.grad.add_(p * decay)
            p.grad.mul_(torch.where(adapt, rate, 1.0))
        self.sgd.step()

    def zero_grad(self):
        self.sgd.zero_grad(set_to_none=True)


def ceilings():
    n = 1 << 28
    src = torch.empty(n, device="cuda", dtype=torch.float32).normal_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    reps = 20
    t = time.perf_counter()
    for _ in range(reps):
        dst.copy_(src)
    torch.cuda.synchronize()
    copy_tb_s = 2 * n * 4 / ((time.perf_counter() - t) / reps) / 1e12
    m = 8192
    a = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
    a @ b
    torch.cuda.synchronize()
    reps = 10
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    tflops = 2 * m**3 / ((time.perf_counter() - t) / reps) / 1e12
    del src, dst, a, b
    torch.cuda.empty_cache()
    return copy_tb_s, tflops


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--prototypes", type=int, default=3000)
    ap.add_argument("--json")
    args = ap.parse_args()

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.cuda.get_device_name(0)
    print(f"device: {device}; torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    copy_tb_s, tflops = ceilings()
    print(f"ceiling: device-to-device copy {copy_tb_s:.2f} TB/s (read + write)")
    print(f"ceiling: bf16 matrix product 8192^3 {tflops:.0f} TFLOP/s")

    bs, crops = args.batch, 8
    torch.manual_seed(0)
    model = SwavModel(args.prototypes).cuda().to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    groups = [
        torch.randn(2 * bs, 3, 224, 224, device="cuda").to(torch.bfloat16).contiguous(memory_format=torch.channels_last),
        torch.randn(6 * bs, 3, 96, 96, device="cuda").to(torch.bfloat16).contiguous(memory_format=torch.channels_last),
    ]
    opt = Larc(model.parameters(), lr=0.3)
    print(f"model: ResNet-50 + head 2048-2048-128 + {args.prototypes} prototypes, {params / 1e6:.1f} M parameters; "
          f"batch {bs} x (2x224 + 6x96)")

    events = None

    def mark(name):
        if events is not None:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            events.append((name, e))

    def step():
        with torch.no_grad():
            w = model.prototypes.weight.data.clone()
            model.prototypes.weight.copy_(F.normalize(w, dim=1, p=2))
        mark("start")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            features = torch.cat([model.trunk(g) for g in groups])
            mark("trunk_forward")
            z = F.normalize(model.projection_head(features), dim=1, p=2)
            output = model.prototypes(z)
            loss = swav_loss(output, bs, crops)
        mark("head_sinkhorn_loss_forward")
        opt.zero_grad()
        loss.backward()
        mark("backward")
        opt.step()
        mark("optimizer")
        return loss

    t = time.perf_counter()
    first_loss = step().item()
    for _ in range(args.warmup - 1):
        step()
    torch.cuda.synchronize()
    print(f"warm-up: {args.warmup} steps in {time.perf_counter() - t:.1f} s (cudnn.benchmark search included)")

    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    torch.cuda.synchronize()
    step_ms = (time.perf_counter() - t) * 1e3 / args.steps
    last_loss = loss.item()

    events = []
    step()
    torch.cuda.synchronize()
    split = {}
    for (_, a), (name, b) in zip(events, events[1:]):
        split[name] = split.get(name, 0.0) + a.elapsed_time(b)

    samples = bs * 1e3 / step_ms
    print(f"loss: first {first_loss:.4f} (ln K = {math.log(args.prototypes):.4f}), last {last_loss:.4f}")
    print(f"step (inputs on the GPU): {step_ms:.2f} ms = {1e3 / step_ms:.2f} steps/s = {samples:.0f} samples/s")
    total = sum(split.values())
    print(f"split of one step with events ({total:.2f} ms of GPU time):")
    for name, ms in split.items():
        print(f"  {name:<28} {ms:8.2f} ms {100 * ms / total:5.1f}%")
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"memory: peak allocated {peak:.2f} GiB")
    if args.json:
        result = {
            "device": device,
            "batch": bs,
            "copy_tb_s": copy_tb_s,
            "bf16_matmul_tflops": tflops,
            "step_ms": step_ms,
            "steps_per_s": 1e3 / step_ms,
            "samples_per_s": samples,
            "first_loss": first_loss,
            "last_loss": last_loss,
            "peak_allocated_gib": peak,
        }
        result.update({f"split_ms_{k}": v for k, v in split.items()})
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
