#!/usr/bin/env python3
"""Interop of `swav` shards with Python's `webdataset` package, both ways.

    python scripts/shards/webdataset_interop.py fixture tests/data/webdataset
        Writes the two small shards the end-to-end tests train on (tests never run Python):
        wds-000000.tar (12 JPEG samples) and wds-000001.tar (12 PNG samples, one of which
        also has a .txt member), each sample with a .cls label, by webdataset's ShardWriter.

    python scripts/shards/webdataset_interop.py check --swav target/release/swav --work DIR
        1. webdataset -> swav: writes shards with ShardWriter from generated images and
           trains `swav pretrain` on them for a few iterations;
        2. swav -> webdataset: writes an ImageFolder, packs it with `swav shard`, reads the
           shards back with webdataset.WebDataset and checks every sample's key, class and
           decoded pixels against its source file (through PREFIX-manifest.tsv).
        Prints one line per check and exits non-zero on the first mismatch.

Needs numpy, pillow and webdataset (pip install numpy pillow webdataset).
"""

import argparse
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image


def pattern(index: int, size: int = 16) -> Image.Image:
    """A small RGB image that differs per index (stripes whose slope and colour vary)."""
    rng = np.random.default_rng(index)
    y, x = np.mgrid[0:size, 0:size]
    stripes = ((x * (index % 3 + 1) + y * (index % 5)) // 3) % 2
    colour = rng.integers(40, 255, size=3)
    pixels = (stripes[..., None] * colour[None, None, :]).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def write_webdataset_shards(folder: Path, per_shard: int = 12, size: int = 16) -> list:
    """Two shards by webdataset's ShardWriter: JPEG samples, then PNG ones; returns paths."""
    folder.mkdir(parents=True, exist_ok=True)
    pattern_name = str(folder / "wds-%06d.tar")
    with wds.ShardWriter(pattern_name, maxcount=per_shard) as sink:
        for i in range(2 * per_shard):
            image = pattern(i, size)
            sample = {"__key__": f"sample{i:06d}", "cls": i % 3}
            if i < per_shard:
                sample["jpg"] = encoded(image, "JPEG")
            else:
                sample["png"] = encoded(image, "PNG")
            if i == per_shard + 1:
                sample["txt"] = "a caption swav ignores"
            sink.write(sample)
    return sorted(folder.glob("wds-*.tar"))


def fixture(args) -> None:
    shards = write_webdataset_shards(Path(args.out))
    for shard in shards:
        print(f"wrote {shard} ({shard.stat().st_size} bytes)")


def run(command: list) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"FAILED: {' '.join(command)}\n{done.stderr}")
    return done.stderr + done.stdout


def check(args) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    swav = args.swav

    # 1. webdataset -> swav
    shards = write_webdataset_shards(work / "from-webdataset", per_shard=40, size=32)
    spec = str(work / "from-webdataset" / "wds-{000000..000001}.tar")
    log = run([swav, "pretrain", "--data", spec, "--preset", "small-data",
               "--recipe-probe-iterations", "0", "--batch-size", "16", "--max-iterations", "3",
               "--output", str(work / "run")])
    trained = [line for line in log.splitlines() if line.startswith(("training shards", "stopped at"))]
    if len(trained) != 2 or "80 samples (with cls labels)" not in trained[0]:
        sys.exit(f"FAILED: swav did not train on webdataset's shards as expected:\n{log}")
    print(f"webdataset -> swav: {len(shards)} shards written by webdataset.ShardWriter train: {trained[1]}")

    # 2. swav -> webdataset
    folder = work / "images"
    sources = {}
    for i in range(30):
        cls = f"class{i % 3}"
        (folder / cls).mkdir(parents=True, exist_ok=True)
        path = folder / cls / f"img{i:03d}.{'png' if i % 2 else 'jpg'}"
        pattern(100 + i, 24).save(path)
        sources[str(path)] = i % 3
    prefix = work / "ours" / "train"
    run([swav, "shard", str(folder), "--output", str(prefix), "--shard-size", "8"])
    manifest = {}
    for line in (work / "ours" / "train-manifest.tsv").read_text().splitlines()[1:]:
        key, shard, source = line.split("\t")
        manifest[key] = (shard, source)
    ours = sorted((work / "ours").glob("train-*.tar"))
    dataset = wds.WebDataset([str(p) for p in ours], shardshuffle=False).decode("rgb8")
    seen = 0
    for sample in dataset:
        key = sample["__key__"]
        shard, source = manifest[key]
        image = sample.get("jpg", sample.get("png"))
        expected = np.asarray(Image.open(source).convert("RGB"))
        if sample["cls"] != sources[source]:
            sys.exit(f"FAILED: {key} has class {sample['cls']}, its source {source} {sources[source]}")
        if not np.array_equal(image, expected):
            sys.exit(f"FAILED: {key} decodes differently from its source {source}")
        if not sample["__url__"].endswith(shard):
            sys.exit(f"FAILED: {key} read from {sample['__url__']}, the manifest says {shard}")
        seen += 1
    if seen != len(sources):
        sys.exit(f"FAILED: webdataset read {seen} samples of {len(sources)}")
    print(f"swav -> webdataset: {len(ours)} shards by `swav shard` read back by webdataset.WebDataset: "
          f"{seen}/{len(sources)} samples, keys, classes and decoded pixels equal to their source files")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("fixture")
    p.add_argument("out")
    p.set_defaults(func=fixture)
    p = commands.add_parser("check")
    p.add_argument("--swav", default="target/release/swav")
    p.add_argument("--work", required=True)
    p.set_defaults(func=check)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
