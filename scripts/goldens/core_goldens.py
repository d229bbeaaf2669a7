#!/usr/bin/env python3
"""Golden values for swav-core, computed with PyTorch exactly as the official SwAV code does.

Writes crates/swav-core/tests/goldens/core_goldens.json. The Rust tests read it; they never
need Python. Re-run after changing a case:

    python scripts/goldens/core_goldens.py

The computations restate facebookresearch/swav (main_swav.py at 06b1b7c) and apex's LARC:
  * distributed_sinkhorn: exp(out/eps).t(), global-sum normalisation, n x (rows /= row sums,
    /= K; columns /= column sums, /= B), *= B, .t()  (single process: all_reduce is identity)
  * the swapped-prediction loss over crops_for_assign, with autograd for the gradient
  * the queue: zeros, prepend queue @ W.t() once the last row is non-zero, then shift by bs
    and write the current embeddings at the top; codes = sinkhorn(...)[-bs:]
  * LARC(SGD(momentum 0.9, wd), trust 0.001, clip False, eps 1e-8) for two steps
  * the learning-rate schedule array (np.linspace warm-up + per-iteration cosine)
"""

import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "swav-core", "tests", "goldens")


def sinkhorn(out, eps, iters, world=1):
    q = torch.exp(out / eps).t()
    b = q.shape[1] * world
    k = q.shape[0]
    q /= torch.sum(q)
    for _ in range(iters):
        q /= torch.sum(q, dim=1, keepdim=True)
        q /= k
        q /= torch.sum(q, dim=0, keepdim=True)
        q /= b
    q *= b
    return q.t()


def unit_rows(a):
    """Unit rows, rounded to float32 so that the f32 and f64 computations share inputs."""
    return f32_exact(a / np.linalg.norm(a, axis=1, keepdims=True))


def f32_exact(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def short(values):
    """Floats written with 9 significant digits: enough to round-trip float32."""
    return [float(f"{v:.9g}") for v in np.asarray(values).reshape(-1)]


def swapped_loss(output, codes, bs, n_crops, crops_for_assign, tau):
    loss = 0
    for i, crop_id in enumerate(crops_for_assign):
        q = codes[i]
        subloss = 0
        for v in np.delete(np.arange(n_crops), crop_id):
            x = output[bs * v : bs * (v + 1)] / tau
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (n_crops - 1)
    return loss / len(crops_for_assign)


def flat(t):
    """A tensor's values; float32 with 9 significant digits (exact), float64 with 13 (the
    Rust tests compare f64 results to 1e-10 relative)."""
    t = t.detach()
    if t.dtype == torch.float32:
        return short(t.numpy())
    return [float(f"{v:.13g}") for v in t.reshape(-1).tolist()]


def sinkhorn_cases(rng):
    cases = []
    for name, (n, k, d, eps, iters) in {
        "cosine_32x20": (32, 20, 8, 0.05, 3),
        "cosine_17x50_eps0.03_5it": (17, 50, 16, 0.03, 5),
        "cosine_32x128": (32, 128, 16, 0.05, 3),
    }.items():
        z = unit_rows(rng.standard_normal((n, d)))
        w = unit_rows(rng.standard_normal((k, d)))
        scores = f32_exact(z @ w.T)
        case = {"name": name, "rows": n, "cols": k, "epsilon": eps, "iterations": iters,
                "scores": short(scores)}
        for dtype, key in [(torch.float64, "codes_f64"), (torch.float32, "codes_f32")]:
            case[key] = flat(sinkhorn(torch.tensor(scores, dtype=dtype), eps, iters))
        cases.append(case)
    return cases


def loss_case(rng):
    bs, n_crops, k, d, tau, eps = 6, 5, 24, 8, 0.1, 0.05
    crops_for_assign = [0, 1]
    z = unit_rows(rng.standard_normal((n_crops * bs, d)))
    w = unit_rows(rng.standard_normal((k, d)))
    scores = f32_exact(z @ w.T)
    out = {}
    for dtype, suffix in [(torch.float64, "f64"), (torch.float32, "f32")]:
        output = torch.tensor(scores, dtype=dtype, requires_grad=True)
        with torch.no_grad():
            codes = [sinkhorn(output[bs * a : bs * (a + 1)].detach().clone(), eps, 3) for a in crops_for_assign]
        loss = swapped_loss(output, codes, bs, n_crops, crops_for_assign, tau)
        loss.backward()
        out[f"loss_{suffix}"] = float(loss.detach())
        out[f"grad_{suffix}"] = flat(output.grad)
        out[f"codes_{suffix}"] = [flat(c) for c in codes]
    return {"batch": bs, "crops": n_crops, "prototypes": k, "temperature": tau, "epsilon": eps,
            "crops_for_assign": crops_for_assign, "scores": short(scores), **out}


def queue_case(rng):
    """Five iterations with a queue of 2 batches per crop: codes and queue after each."""
    bs, n_crops, k, d, eps, queue_rows = 4, 3, 10, 6, 0.05, 8
    crops_for_assign = [0, 1]
    w = torch.tensor(unit_rows(rng.standard_normal((k, d))), dtype=torch.float64)
    queue = torch.zeros(len(crops_for_assign), queue_rows, d, dtype=torch.float64)
    use_the_queue = False
    steps = []
    for _ in range(5):
        embedding = torch.tensor(unit_rows(rng.standard_normal((n_crops * bs, d))), dtype=torch.float64)
        output = embedding @ w.t()
        step = {"embeddings": flat(embedding), "codes": [], "used_queue": []}
        for i, crop_id in enumerate(crops_for_assign):
            out = output[bs * crop_id : bs * (crop_id + 1)].detach()
            if use_the_queue or not torch.all(queue[i, -1, :] == 0):
                use_the_queue = True
                out = torch.cat((torch.mm(queue[i], w.t()), out))
            step["used_queue"].append(use_the_queue)
            queue[i, bs:] = queue[i, :-bs].clone()
            queue[i, :bs] = embedding[crop_id * bs : (crop_id + 1) * bs]
            step["codes"].append(flat(sinkhorn(out, eps, 3)[-bs:]))
        step["queue"] = flat(queue)
        steps.append(step)
    return {"batch": bs, "crops": n_crops, "prototypes": k, "dim": d, "epsilon": eps,
            "queue_rows": queue_rows, "crops_for_assign": crops_for_assign,
            "prototype_weights": flat(w), "steps": steps}


class LARC:
    """apex.parallel.LARC (clip=False by default), around a torch optimiser."""

    def __init__(self, optimizer, trust_coefficient=0.001, clip=False, eps=1e-8):
        self.optim = optimizer
        self.trust_coefficient = trust_coefficient
        self.clip = clip
        self.eps = eps

    @property
    def param_groups(self):
        return self.optim.param_groups

    def zero_grad(self):
        self.optim.zero_grad()

    def step(self):
        with torch.no_grad():
            weight_decays = []
            for group in self.optim.param_groups:
                weight_decay = group.get("weight_decay", 0)
                weight_decays.append(weight_decay)
                group["weight_decay"] = 0
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    param_norm = torch.norm(p.data)
                    grad_norm = torch.norm(p.grad.data)
                    if param_norm != 0 and grad_norm != 0:
                        adaptive_lr = self.trust_coefficient * param_norm / (
                            grad_norm + param_norm * weight_decay + self.eps)
                        if self.clip:
                            adaptive_lr = min(adaptive_lr / group["lr"], 1)
                        p.grad.data += weight_decay * p.data
                        p.grad.data *= adaptive_lr
        self.optim.step()
        for i, group in enumerate(self.optim.param_groups):
            group["weight_decay"] = weight_decays[i]


def larc_sgd_steps(params, grads_per_step, lrs, wd, momentum=0.9, trust=0.001, eps=1e-8):
    """apex LARC (clip=False) around torch.optim.SGD, one param group."""
    ps = [torch.nn.Parameter(torch.tensor(p, dtype=torch.float64)) for p in params]
    opt = LARC(torch.optim.SGD(ps, lr=lrs[0], momentum=momentum, weight_decay=wd),
               trust_coefficient=trust, eps=eps)
    history = []
    for grads, lr in zip(grads_per_step, lrs):
        for p, g in zip(ps, grads):
            p.grad = None if g is None else torch.tensor(g, dtype=torch.float64)
        opt.param_groups[0]["lr"] = lr
        opt.step()
        history.append([flat(p) for p in ps])
    return history


def lars_case(rng):
    shapes = [(3, 4), (5,), (5,), (2, 3)]
    params = [f32_exact(rng.standard_normal(s)) for s in shapes]
    params[2] = np.zeros(5)  # a BN bias at initialisation: the zero-norm bypass
    grads1 = [f32_exact(rng.standard_normal(s)) for s in shapes]
    grads1[3] = None  # a frozen tensor: skipped entirely
    grads2 = [f32_exact(rng.standard_normal(s)) for s in shapes]
    lrs = [0.3, 4.8]
    wd = 1e-6
    history = larc_sgd_steps(params, [grads1, grads2], lrs, wd)
    return {
        "weight_decay": wd, "lrs": lrs,
        "params": [p.reshape(-1).tolist() for p in params],
        "grads": [[None if g is None else g.reshape(-1).tolist() for g in gs] for gs in [grads1, grads2]],
        "after_step": history,
    }


def schedule_case():
    cases = []
    for base_lr, final_lr, start_warmup, warmup_epochs, epochs, ipe in [
        (4.8, 0.0048, 0.3, 10, 100, 7),
        (0.6, 0.0006, 0.0, 0, 20, 13),
        (1.0, 0.0, 0.0, 2, 3, 5),
    ]:
        warm = np.linspace(start_warmup, base_lr, ipe * warmup_epochs)
        iters = np.arange(ipe * (epochs - warmup_epochs))
        cos = np.array([final_lr + 0.5 * (base_lr - final_lr) * (1 + math.cos(math.pi * t / len(iters))) for t in iters])
        sched = np.concatenate((warm, cos))
        cases.append({"base_lr": base_lr, "final_lr": final_lr, "start_warmup": start_warmup,
                      "warmup_epochs": warmup_epochs, "epochs": epochs, "iters_per_epoch": ipe,
                      "values": sched.tolist()})
    return cases


def main():
    torch.set_num_threads(1)
    rng = np.random.default_rng(20201002)
    goldens = {
        "generator": f"scripts/goldens/core_goldens.py, torch {torch.__version__}, numpy {np.__version__}",
        "sinkhorn": sinkhorn_cases(rng),
        "loss": loss_case(rng),
        "queue": queue_case(rng),
        "lars": lars_case(rng),
        "schedule": schedule_case(),
    }
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "core_goldens.json")
    with open(path, "w") as f:
        json.dump(goldens, f, separators=(",", ":"))
    print(f"wrote {os.path.normpath(path)} ({os.path.getsize(path) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
