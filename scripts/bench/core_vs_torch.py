#!/usr/bin/env python3
"""swav-core's head math side by side with PyTorch and numpy, on this machine, in one run.

Runs the criterion bench `head_math` (swav-core's SliceOps, one thread), then the same work
in PyTorch (1 thread, and all threads) and numpy, and prints milliseconds and ratios:

  * Sinkhorn-Knopp at 4096 x 3000, 3 iterations, f32 (the official code's operations)
  * the swapped-prediction loss and its gradient, 8 crops x 64 images x 3000 prototypes

    python scripts/bench/core_vs_torch.py          (needs numpy and torch)
"""

import os
import re
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "goldens"))
from core_goldens import sinkhorn as torch_sinkhorn  # noqa: E402  the official restatement


def rust_timings():
    cmd = ["cargo", "bench", "-q", "-p", "swav-core", "--bench", "head_math", "--", "--output-format", "bencher"]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    timings = {}
    for m in re.finditer(r"test (\S+) \.\.\. bench:\s+([\d,]+) ns/iter", out):
        timings[m.group(1)] = int(m.group(2).replace(",", "")) / 1e6
    return timings


def best_ms(fn, repeats=7):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def numpy_sinkhorn(out, eps=0.05, iters=3):
    q = np.exp(out / eps).T
    b, k = q.shape[1], q.shape[0]
    q /= q.sum()
    for _ in range(iters):
        q /= q.sum(axis=1, keepdims=True)
        q /= k
        q /= q.sum(axis=0, keepdims=True)
        q /= b
    q *= b
    return q.T


def torch_loss_and_grad(scores, codes, bs=64, crops=8, tau=0.1):
    s = scores.detach().requires_grad_(True)
    loss = 0
    for i, a in enumerate([0, 1]):
        sub = 0
        for v in [v for v in range(crops) if v != a]:
            x = s[bs * v : bs * (v + 1)] / tau
            sub -= torch.mean(torch.sum(codes[i] * F.log_softmax(x, dim=1), dim=1))
        loss += sub / (crops - 1)
    loss /= 2
    loss.backward()
    return loss, s.grad


def main():
    print("building and running the Rust bench (criterion, about a minute)...", file=sys.stderr)
    rust = rust_timings()
    rng = np.random.default_rng(0)
    scores = rng.uniform(-0.8, 0.8, (4096, 3000)).astype(np.float32)
    loss_scores = torch.tensor(rng.uniform(-0.8, 0.8, (512, 3000)).astype(np.float32))
    codes = [torch.softmax(torch.tensor(rng.standard_normal((64, 3000)).astype(np.float32)), 1) for _ in range(2)]

    rows = []
    threads_all = torch.get_num_threads()
    for threads in sorted({1, threads_all}):
        torch.set_num_threads(threads)
        st = torch.tensor(scores)
        rows.append((f"torch ({threads} thread{'s' if threads > 1 else ''})",
                     best_ms(lambda: torch_sinkhorn(st, 0.05, 3)),
                     best_ms(lambda: torch_loss_and_grad(loss_scores, codes))))
    rows.append(("numpy (1 thread)", best_ms(lambda: numpy_sinkhorn(scores)), float("nan")))

    ours_sk = rust["sinkhorn_4096x3000_plain"]
    ours_sk_stable = rust["sinkhorn_4096x3000_stable"]
    ours_loss = rust["loss_and_grad_8x64x3000"]
    print(f"\nswav-core SliceOps (1 thread): sinkhorn plain {ours_sk:.1f} ms, stable {ours_sk_stable:.1f} ms; "
          f"loss+grad {ours_loss:.1f} ms")
    print(f"{'baseline':<22}{'sinkhorn ms':>12}{'ratio':>8}{'stable ratio':>14}{'loss+grad ms':>14}{'ratio':>8}")
    for name, sk, loss in rows:
        loss_ratio = f"{loss / ours_loss:>8.2f}" if loss == loss else f"{'-':>8}"
        loss_ms = f"{loss:>14.1f}" if loss == loss else f"{'-':>14}"
        print(f"{name:<22}{sk:>12.1f}{sk / ours_sk:>8.2f}{sk / ours_sk_stable:>14.2f}{loss_ms}{loss_ratio}")
    print("\nratio = baseline time / swav-core time (above 1: swav-core is faster)")


if __name__ == "__main__":
    main()
