"""Label-free scores of a run's saved recipe probes against each probe's k-NN: how the probe
score of docs/recipe-choice.md was chosen.

    python scripts/recipe/probe_scores.py RUN_DIR DATA PER_CLASS [SEED]

RUN_DIR is a `swav pretrain --preset small-data` output folder whose probes/<candidate>/
each hold `trunk.safetensors` and `knn.txt` (the output of `swav eval knn --weights
probes/<candidate>/checkpoint.safetensors --k 20 ...`). DATA is the IDX folder or the
ImageFolder (its train/) the run trained on, PER_CLASS its --images-per-class. Prints, per
candidate, the probe's k-NN and three scores over at most 1,024 evenly spaced training
images: RankMe of clean images (resized), RankMe of two grey augmented views each (the score
`swav` uses), and the two views' mean cosine after centring. Needs torch, torchvision,
safetensors and pillow; reuses pytorch_small_swav.py's network and transforms."""
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_small_swav as ps  # noqa: E402

CANDIDATES = ["plain", "grey-crops", "large-crops", "rotated-crops"]


def training_images(data, per_class):
    if os.path.exists(os.path.join(data, "train")):
        root = os.path.join(data, "train")
        images = []
        for c in sorted(os.listdir(root)):
            names = sorted(os.listdir(os.path.join(root, c)))[:per_class]
            images += [Image.open(os.path.join(root, c, n)).convert("RGB") for n in names]
        return images
    return ps.load_split(data, "train", per_class)[0]


def trunk(path):
    model = ps.SwavResNet18()
    state = {k: torch.from_numpy(np.array(v)) for k, v in load_file(path).items()}
    model.load_state_dict(state, strict=False)
    return model.eval()


def features(model, x):
    with torch.no_grad():
        return torch.cat([model.forward_backbone(x[i:i + 256]) for i in range(0, len(x), 256)]).double()


def rankme(f):
    s = torch.linalg.svdvals(f)
    p = s / s.sum() + 1e-7
    return float(torch.exp(-(p * p.log()).sum()))


def main():
    run, data, per_class = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    torch.set_num_threads(2)
    images = training_images(data, per_class)
    picked = [images[i * len(images) // min(1024, len(images))] for i in range(min(1024, len(images)))]
    clean = T.Compose([T.Resize((32, 32)), T.ToTensor(), T.Normalize(ps.MEAN, ps.STD)])
    grey_view = T.Compose([T.RandomResizedCrop(32, scale=(0.2, 1.0)), T.RandomHorizontalFlip(),
                           ps.color_distortion(1.0), T.Grayscale(3), T.ToTensor(), T.Normalize(ps.MEAN, ps.STD)])
    torch.manual_seed(seed)
    base = torch.stack([clean(im) for im in picked])
    v0 = torch.stack([grey_view(im) for im in picked])
    v1 = torch.stack([grey_view(im) for im in picked])
    print(f"{'candidate':14s} {'probe k-NN':>10s} {'rank clean':>10s} {'rank views':>10s} {'alignment':>10s}")
    for candidate in CANDIDATES:
        folder = os.path.join(run, "probes", candidate)
        knn = float(re.search(r"top-1\s+([\d.]+)%", open(os.path.join(folder, "knn.txt")).read()).group(1))
        model = trunk(os.path.join(folder, "trunk.safetensors"))
        a, b = features(model, v0), features(model, v1)
        mu = torch.cat([a, b]).mean(0)
        align = float((F.normalize(a - mu, dim=1) * F.normalize(b - mu, dim=1)).sum(1).mean())
        print(f"{candidate:14s} {knn:10.1f} {rankme(features(model, base)):10.1f} "
              f"{rankme(torch.cat([a, b])):10.1f} {align:10.3f}")


if __name__ == "__main__":
    main()
