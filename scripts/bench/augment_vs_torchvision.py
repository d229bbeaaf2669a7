#!/usr/bin/env python3
"""Multi-crop throughput per core: swav-augment against SwAV's torchvision/PIL pipeline.

Run from the repository root (needs numpy, Pillow, torch, torchvision and cargo):

    python scripts/bench/augment_vs_torchvision.py [--images 200] [--rounds 3]

Generates photo-like JPEGs of about 500 x 375 (quality 90, 4:2:0) in a temporary folder,
then times, on the same files and alternating round by round:

* ours: the `augment_throughput` example of crates/swav-augment (the training loader with
  one worker thread, SwAV's default 2 x 224 + 6 x 96 multi-crop, decode + augment +
  normalise into NHWC f32 batches);
* torchvision: SwAV's multi-crop transform as in facebookresearch/swav
  (src/multicropdataset.py: RandomResizedCrop, RandomHorizontalFlip, RandomApply(ColorJitter
  0.8/0.8/0.8/0.2, p=0.8), RandomGrayscale(0.2), PIL Gaussian blur p=0.5 sigma U(0.1, 2),
  ToTensor, Normalize), torchvision's default PIL loader, a DataLoader with num_workers=0
  (the main process is the one worker) and torch.set_num_threads(1).

Both process batches of 32 with drop_last. Prints samples/s per core for both (best round
and median) and the ratio of the best rounds.
"""

import argparse
import json
import math
import os
import pathlib
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image, ImageDraw, ImageFilter
from torchvision.datasets.folder import default_loader

ROOT = pathlib.Path(__file__).resolve().parents[2]
MEAN = [0.485, 0.456, 0.406]
STD = [0.228, 0.224, 0.225]
SIZES = [(500, 375), (375, 500), (500, 333), (500, 400), (480, 360)]


def texture(rng, width, height, amplitude):
    """Band-limited noise at several scales (fine detail that JPEG must spend bits on)."""
    out = np.zeros((height, width, 3), np.float32)
    for cell in (2, 4, 8):
        cols, rows = width // cell + 2, height // cell + 2
        small = rng.normal(0, 1, (rows, cols, 3)).astype(np.float32)
        up = [np.asarray(Image.fromarray(small[..., c]).resize((cols * cell, rows * cell), Image.BILINEAR))
              for c in range(3)]
        out += np.stack(up, axis=-1)[:height, :width] * amplitude
    return out


def photo_like(rng, width, height):
    """Smooth colour fields, a textured ground, random shapes, texture and sensor grain;
    at quality 90 the files average about 95 KiB, close to ImageNet's ~110 KiB."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for _ in range(4):
        fx, fy = rng.uniform(0.2, 3.0, 2) * 2 * math.pi
        phase = rng.uniform(0, 2 * math.pi)
        wave = np.sin(x / width * fx + y / height * fy + phase)[..., None]
        img += wave * rng.uniform(10, 50, 3)
    img += rng.uniform(60, 190, 3)
    ground = y > height * rng.uniform(0.4, 0.8)
    img[ground] += rng.normal(0, 22, (int(ground.sum()), 3))
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(rng.integers(3, 9)):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(10, min(width, height) / 3)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=colour)
        else:
            draw.rectangle([x0 - r, y0 - r / 2, x0 + r, y0 + r / 2], fill=colour)
    pil = pil.filter(ImageFilter.GaussianBlur(1.0))
    detail = texture(rng, width, height, 10.0) + rng.normal(0, 16, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(pil, np.float32) + detail, 0, 255).astype(np.uint8))


def make_jpegs(folder, count, seed=0):
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(count):
        width, height = SIZES[i % len(SIZES)]
        path = folder / f"{i:05d}.jpg"
        photo_like(rng, width, height).save(path, quality=90)
        total += path.stat().st_size
    return total / count


class PILRandomGaussianBlur:
    """SwAV's blur: with probability p, PIL GaussianBlur with radius U(radius_min, radius_max)."""

    def __init__(self, p=0.5, radius_min=0.1, radius_max=2.0):
        self.prob, self.radius_min, self.radius_max = p, radius_min, radius_max

    def __call__(self, img):
        if np.random.rand() > self.prob:
            return img
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.radius_min, self.radius_max)))


def swav_multicrop_transforms(strength=1.0):
    jitter = T.ColorJitter(0.8 * strength, 0.8 * strength, 0.8 * strength, 0.2 * strength)
    colour = T.Compose([T.RandomApply([jitter], p=0.8), T.RandomGrayscale(p=0.2)])
    transforms = []
    for size, low, high, count in [(224, 0.14, 1.0, 2), (96, 0.05, 0.14, 6)]:
        crop = T.RandomResizedCrop(size, scale=(low, high))
        pipeline = T.Compose([crop, T.RandomHorizontalFlip(p=0.5), colour, PILRandomGaussianBlur(),
                              T.ToTensor(), T.Normalize(mean=MEAN, std=STD)])
        transforms.extend([pipeline] * count)
    return transforms


class MultiCropFolder(torch.utils.data.Dataset):
    def __init__(self, folder):
        self.files = sorted(folder.glob("*.jpg"))
        self.transforms = swav_multicrop_transforms()

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        image = default_loader(str(self.files[index]))
        return [t(image) for t in self.transforms]


def torchvision_round(folder, batch):
    loader = torch.utils.data.DataLoader(MultiCropFolder(folder), batch_size=batch, shuffle=True,
                                         num_workers=0, drop_last=True)
    start = time.perf_counter()
    samples = 0
    for crops in loader:
        samples += crops[0].shape[0]
    return samples / (time.perf_counter() - start)


def build_ours():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "swav-augment", "--example", "augment_throughput"],
                   cwd=ROOT, check=True)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "release" / "examples" / "augment_throughput"


def ours_round(binary, folder, batch):
    out = subprocess.run([str(binary), "--images", str(folder), "--workers", "1", "--batch", str(batch),
                          "--epochs", "1"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["samples_per_second"]


def cpu_name():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="JPEGs to generate")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each pipeline")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--keep", type=pathlib.Path, help="generate the JPEGs here and keep them")
    args = parser.parse_args()

    torch.set_num_threads(1)
    folder = args.keep or pathlib.Path(tempfile.mkdtemp(prefix="swav-augment-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mean_size = make_jpegs(folder, args.images)
        print(f"{args.images} JPEGs of about 500x375 (mean {mean_size / 1024:.0f} KiB) in {folder}")
        print(f"{cpu_name()}; torch {torch.__version__}, torchvision {torchvision.__version__}, "
              f"Pillow {PIL.__version__}; one thread each; batch {args.batch}, 2x224 + 6x96 crops")
        binary = build_ours()
        ours_round(binary, folder, args.batch)  # warm the page cache and the binary
        ours, theirs = [], []
        for r in range(args.rounds):
            ours.append(ours_round(binary, folder, args.batch))
            theirs.append(torchvision_round(folder, args.batch))
            print(f"round {r + 1}: swav-augment {ours[-1]:.1f} samples/s, torchvision {theirs[-1]:.1f} samples/s")
        best_ours, best_theirs = max(ours), max(theirs)
        print(f"swav-augment: {best_ours:.1f} samples/s per core (best), {statistics.median(ours):.1f} (median)")
        print(f"torchvision:  {best_theirs:.1f} samples/s per core (best), {statistics.median(theirs):.1f} (median)")
        print(f"ratio: {best_ours / best_theirs:.2f}x (median {statistics.median(ours) / statistics.median(theirs):.2f}x)")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
