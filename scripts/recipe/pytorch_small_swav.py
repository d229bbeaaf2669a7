#!/usr/bin/env python3
"""The `small-data` recipe in plain PyTorch: the PyTorch side of the Fashion-MNIST check in
docs/demo-recipe.md ("Off the built-in data: the `small-data` preset").

    python scripts/recipe/pytorch_small_swav.py --data /usr/share/datasets/fashion-mnist \
        --epochs 30 --seed 1 [--out-dir DIR] [--threads 2] [--workers 0]

needs torch, torchvision and numpy (CPU wheels are enough). It trains, self-contained, what
`swav pretrain --preset small-data --recipe plain --images-per-class 200
--eval-images-per-class 100` trains, written after the official code
(facebookresearch/swav, `main_swav.py`, `src/resnet50.py`, `src/multicropdataset.py`):

* data: the first 200 images of each class of the IDX train split (file order), the first 100
  of each class of t10k for validation; 28 px greyscale, converted to RGB (PIL);
* two crops per image, each `RandomResizedCrop(32, scale=(0.2, 1))`, `RandomHorizontalFlip`,
  `RandomApply([ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)], p=0.8)` with s = 0.5,
  `RandomGrayscale(0.2)`, no blur, `ToTensor`, `Normalize` with the official constants
  (mean 0.485/0.456/0.406, std 0.228/0.224/0.225);
* ResNet-18 (torchvision BasicBlock layout) at base width 16 with the small stem (3x3 stride-1
  convolution, no max pool), 128-d pooled features; head Linear(128, 512)-BN-ReLU-
  Linear(512, 64), L2 normalisation, prototypes Linear(64, 30, bias=False); the official
  initialisation (Kaiming normal fan_out for convolutions, BN 1/0, PyTorch default linears);
* the official step: prototypes normalised before every forward pass, `distributed_sinkhorn`
  (eps 0.05, 3 iterations; one process) on crops 0 and 1, the swapped-prediction loss at
  temperature 0.1, prototype gradients dropped while iteration < 100, apex-style LARC
  (trust 0.001, clip False, eps 1e-8) around SGD (momentum 0.9, weight decay 1e-6), the
  per-iteration schedule: linear warm-up from 0 to 0.3 over 2 epochs, then a cosine to
  0.0003; batch 64, `drop_last`, no queue, `DistributedSampler`-style shuffling;
* at the end, weighted k-NN (k = 20 and 200, T = 0.07, cosine similarity on L2-normalised
  pooled trunk features, eval mode) with the train subset as memory and the t10k subset as
  queries, eval images resized whole to 32 px and normalised, for the trained network and
  for a randomly initialised one (seed + 1, as `swav pretrain` does).

Prints one JSON line: seed, epochs, knn_trained, knn_random (top-1 at k = 20, in %), the
k = 200 values, the last loss and the seconds. With --out-dir it also writes result.json and
metrics.jsonl: every iteration (numbered from 0), the loss, the learning rate and the
diagnostics `swav pretrain` logs in its own metrics.jsonl, measured the same way (code
entropies, prototypes in use, score spread, embedding variance, relative update per group).
apex is not needed: its LARC is reproduced below line for line. The network runs
channels_last (same arithmetic, faster on the CPU), augmentation runs in the main process
(--workers 0), and OMP_WAIT_POLICY defaults to PASSIVE (see below). 30 epochs take about
9-10 minutes on 2 CPU cores shared with another training job (about 1.2-1.3 times
`swav pretrain`'s time for the same run).
"""

import argparse
import gzip
import json
import math
import os
import random
import sys
import time

# OpenMP threads that spin while waiting make PyTorch several times slower when another
# process shares the cores (measured: 2.9 s against 0.45 s per step at 2 threads on a busy
# 2-core machine). Must be set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "goldens"))
from core_goldens import LARC, sinkhorn  # noqa: E402

# The official code's normalisation (std 0.228, not torchvision's 0.229), also used for eval.
MEAN = [0.485, 0.456, 0.406]
STD = [0.228, 0.224, 0.225]


# ----------------------------------------------------------------------------- data

def read_idx(folder, stem):
    """An IDX file `stem` (plain or .gz) as a numpy array."""
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                raw = f.read()
            break
    else:
        sys.exit(f"missing {stem}[.gz] in {folder}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def first_per_class(images, labels, per_class):
    """The first `per_class` images of every class, in file order."""
    keep, seen = [], {}
    for i, y in enumerate(labels.tolist()):
        if seen.get(y, 0) < per_class:
            seen[y] = seen.get(y, 0) + 1
            keep.append(i)
    return images[keep], labels[keep]


def load_split(folder, prefix, per_class):
    images = read_idx(folder, f"{prefix}-images-idx3-ubyte")
    labels = read_idx(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = first_per_class(images, labels, per_class)
    pil = [Image.fromarray(a, mode="L").convert("RGB") for a in images]
    return pil, torch.as_tensor(labels.astype(np.int64))


def color_distortion(s):
    """The official get_color_distortion(s) (multicropdataset.py)."""
    jitter = T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)
    return T.Compose([T.RandomApply([jitter], p=0.8), T.RandomGrayscale(p=0.2)])


class MultiCrop(Dataset):
    """The official MultiCropDataset for 2 x 32 px crops of 20-100 %, without blur."""

    def __init__(self, images, nmb_crops=2, size=32, scale=(0.2, 1.0), jitter=0.5):
        self.images = images
        self.trans = [T.Compose([
            T.RandomResizedCrop(size, scale=scale),
            T.RandomHorizontalFlip(p=0.5),
            color_distortion(jitter),
            T.ToTensor(),
            T.Normalize(mean=MEAN, std=STD),
        ])] * nmb_crops

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return [t(self.images[i]) for t in self.trans]


# ----------------------------------------------------------------------------- model

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class SwavResNet18(nn.Module):
    """src/resnet50.py's ResNet with BasicBlocks [2, 2, 2, 2] at base width 16 and the small
    stem, the projection head, L2 normalisation and the prototypes."""

    def __init__(self, base_width=16, hidden_mlp=512, feat_dim=64, nmb_prototypes=30):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base_width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        inplanes = base_width
        for stage in range(4):
            planes = base_width << stage
            stride = 1 if stage == 0 else 2
            blocks = [BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.num_features = inplanes
        self.projection_head = nn.Sequential(
            nn.Linear(inplanes, hidden_mlp), nn.BatchNorm1d(hidden_mlp), nn.ReLU(inplace=True),
            nn.Linear(hidden_mlp, feat_dim))
        self.prototypes = nn.Linear(feat_dim, nmb_prototypes, bias=False)
        # The official initialisation (zero_init_residual stays off).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward_backbone(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward_head(self, x):
        x = self.projection_head(x)
        x = F.normalize(x, dim=1, p=2)
        return x, self.prototypes(x)

    def forward(self, inputs):
        # The official multi-crop forward: one trunk pass per run of equal crop sizes, the
        # head once on everything.
        if not isinstance(inputs, list):
            inputs = [inputs]
        idx_crops = torch.cumsum(torch.unique_consecutive(
            torch.tensor([inp.shape[-1] for inp in inputs]), return_counts=True)[1], 0)
        start, output = 0, None
        for end in idx_crops.tolist():
            out = self.forward_backbone(torch.cat(inputs[start:end]))
            output = out if output is None else torch.cat((output, out))
            start = end
        return self.forward_head(output)


# ----------------------------------------------------------------------------- optimiser

def lr_schedule(iters_per_epoch, epochs, warmup_epochs, base_lr, final_lr, start_warmup=0.0):
    warmup = np.linspace(start_warmup, base_lr, iters_per_epoch * warmup_epochs)
    total = iters_per_epoch * (epochs - warmup_epochs)
    cosine = np.array([final_lr + 0.5 * (base_lr - final_lr) * (1 + math.cos(math.pi * t / total))
                       for t in np.arange(total)])
    return np.concatenate((warmup, cosine))


@torch.no_grad()
def distributed_sinkhorn(out, epsilon, iterations):
    """The official distributed_sinkhorn on one process (world size 1): the same function the
    core goldens are made with."""
    return sinkhorn(out, epsilon, iterations)


@torch.no_grad()
def diagnostics(model, before, scores, z, q):
    """The numbers `swav pretrain` logs in its metrics.jsonl, for the first assignment crop:
    entropies of the codes, score spread, embedding variance, prototypes in use and
    ||w_after - w_before|| / ||w_before|| per parameter group."""
    groups = {"trunk": [0.0, 0.0], "projection_head": [0.0, 0.0], "prototypes": [0.0, 0.0]}
    for name, p in model.named_parameters():
        g = groups[name.split(".")[0] if name.split(".")[0] in groups else "trunk"]
        g[0] += before[name].double().pow(2).sum().item()
        g[1] += (p.detach() - before[name]).double().pow(2).sum().item()
    qd = q.double()
    mean_q = qd.mean(0)
    return {
        "codes_entropy": -(mean_q * mean_q.clamp_min(1e-300).log()).sum().item(),
        "sample_code_entropy": -(qd * qd.clamp_min(1e-300).log()).sum(1).mean().item(),
        "prototypes_in_use": int(torch.unique(q.argmax(1)).numel()),
        "score_spread": scores.double().std(1, unbiased=False).mean().item(),
        "embedding_variance": (z.double() - z.double().mean(0)).pow(2).sum(1).mean().item(),
        "relative_update": {k: math.sqrt(u / w) if w > 0 else 0.0
                            for k, (w, u) in groups.items()},
    }


# ----------------------------------------------------------------------------- k-NN

@torch.no_grad()
def features(model, images, batch=256):
    tf = T.Compose([T.Resize((32, 32)), T.ToTensor(), T.Normalize(mean=MEAN, std=STD)])
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = torch.stack([tf(im) for im in images[i:i + batch]])
        out.append(model.forward_backbone(x))
    return F.normalize(torch.cat(out), dim=1)


@torch.no_grad()
def knn_top1(train_f, train_y, test_f, test_y, k, temperature=0.07, classes=10):
    sim = test_f @ train_f.t()
    top_sim, top_idx = sim.topk(k, dim=1)
    votes = torch.zeros(test_f.shape[0], classes)
    votes.scatter_add_(1, train_y[top_idx], torch.exp(top_sim / temperature))
    return 100.0 * (votes.argmax(1) == test_y).float().mean().item()


def knn(model, train, val):
    train_f, test_f = features(model, train[0]), features(model, val[0])
    return {k: knn_top1(train_f, train[1], test_f, val[1], k) for k in (20, 200)}


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder with the Fashion-MNIST IDX files")
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--images-per-class", type=int, default=200)
    ap.add_argument("--eval-images-per-class", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads (OMP_WAIT_POLICY defaults to PASSIVE, see above)")
    ap.add_argument("--workers", type=int, default=0,
                    help="DataLoader workers (0: augment in the main process)")
    ap.add_argument("--out-dir", default=None, help="write metrics.jsonl and result.json here")
    ap.add_argument("--log-every", type=int, default=50, help="print progress every N iterations")
    # The recipe; defaults are `swav pretrain --preset small-data --recipe plain`.
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--base-lr", type=float, default=0.3)
    ap.add_argument("--final-lr", type=float, default=0.0003)
    ap.add_argument("--warmup-epochs", type=int, default=2)
    ap.add_argument("--freeze-prototypes-niters", type=int, default=100)
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--epsilon", type=float, default=0.05)
    ap.add_argument("--sinkhorn-iterations", type=int, default=3)
    ap.add_argument("--wd", type=float, default=1e-6)
    ap.add_argument("--color-jitter-strength", type=float, default=0.5)
    args = ap.parse_args()

    t0 = time.time()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    train = load_split(args.data, "train", args.images_per_class)
    val = load_split(args.data, "t10k", args.eval_images_per_class)
    dataset = MultiCrop(train[0], jitter=args.color_jitter_strength)
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=args.seed)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler,
                        num_workers=args.workers, drop_last=True, pin_memory=False)

    # channels_last: oneDNN's NHWC convolutions, about 20 % faster here; same arithmetic.
    model = SwavResNet18().to(memory_format=torch.channels_last)
    optimizer = LARC(torch.optim.SGD(model.parameters(), lr=args.base_lr, momentum=0.9,
                                     weight_decay=args.wd), trust_coefficient=0.001, clip=False)
    schedule = lr_schedule(len(loader), args.epochs, args.warmup_epochs, args.base_lr,
                           args.final_lr)
    crops_for_assign, nmb_crops = [0, 1], 2

    metrics = None
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        metrics = open(os.path.join(args.out_dir, "metrics.jsonl"), "w")
    loss_value = float("nan")
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        model.train()
        for it, inputs in enumerate(loader):
            iteration = epoch * len(loader) + it
            for group in optimizer.param_groups:
                group["lr"] = schedule[iteration]
            with torch.no_grad():
                w = F.normalize(model.prototypes.weight.data.clone(), dim=1, p=2)
                model.prototypes.weight.copy_(w)
            inputs = [x.contiguous(memory_format=torch.channels_last) for x in inputs]
            embedding, output = model(inputs)
            bs = inputs[0].size(0)
            loss = 0
            for crop_id in crops_for_assign:
                with torch.no_grad():
                    out = output[bs * crop_id: bs * (crop_id + 1)].detach()
                    q = distributed_sinkhorn(out, args.epsilon, args.sinkhorn_iterations)[-bs:]
                    if crop_id == crops_for_assign[0]:
                        q0 = q
                subloss = 0
                for v in np.delete(np.arange(nmb_crops), crop_id):
                    x = output[bs * v: bs * (v + 1)] / args.temperature
                    subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
                loss += subloss / (nmb_crops - 1)
            loss /= len(crops_for_assign)
            optimizer.zero_grad()
            loss.backward()
            if iteration < args.freeze_prototypes_niters:
                for name, p in model.named_parameters():
                    if "prototypes" in name:
                        p.grad = None
            before = ({n: p.detach().clone() for n, p in model.named_parameters()}
                      if metrics else None)
            optimizer.step()
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                sys.exit(f"loss is {loss_value} at iteration {iteration}")
            if metrics:
                line = {"epoch": epoch, "iteration": iteration, "loss": loss_value,
                        "lr": float(schedule[iteration])}
                line.update(diagnostics(model, before, output[:bs].detach(),
                                        embedding[:bs].detach(), q0))
                metrics.write(json.dumps(line) + "\n")
            if (iteration + 1) % args.log_every == 0:
                print(f"epoch {epoch} iteration {iteration + 1}/{len(schedule)} "
                      f"loss {loss_value:.4f} lr {schedule[iteration]:.5f} "
                      f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    if metrics:
        metrics.close()

    trained = knn(model, train, val)
    torch.manual_seed(args.seed + 1)
    random_acc = knn(SwavResNet18(), train, val)
    result = {"seed": args.seed, "epochs": args.epochs,
              "knn_trained": round(trained[20], 2), "knn_random": round(random_acc[20], 2),
              "knn200_trained": round(trained[200], 2), "knn200_random": round(random_acc[200], 2),
              "last_loss": round(loss_value, 4), "iterations": len(loader) * args.epochs,
              "seconds": round(time.time() - t0, 1)}
    if args.out_dir:
        with open(os.path.join(args.out_dir, "result.json"), "w") as f:
            json.dump(result, f)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
