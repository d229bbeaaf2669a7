#!/usr/bin/env python3
"""Golden files for swav-augment's exactness tests, computed with Pillow and torchvision.

Run from the repository root (needs numpy, Pillow, torch and torchvision):

    python scripts/goldens/augment_goldens.py

Writes crates/swav-augment/tests/goldens/: a synthesized texture (texture.png), small image
fixtures in several formats (formats/), the reference outputs as .npy files and
manifest.json describing every case. Nothing is downloaded. The Rust tests read only these
files; they never run Python.

Cases:
  * resize: PIL crop + bilinear resize (torchvision's resized_crop on PIL images);
  * colour ops: adjust_brightness/contrast/saturation/hue, rgb_to_grayscale;
  * blur: ImageFilter.GaussianBlur(sigma);
  * pipeline: the whole SwAV crop pipeline with fixed parameters, after ToTensor+Normalize,
    and the crop after its resize alone (so later steps can be checked from PIL's input);
  * eval: Resize(round(size*256/224)) + CenterCrop(size), and a plain resize;
  * colour_checksums: checksums of whole-gamut conversions (every one of the 2^24 RGB
    colours) for convert("L"), convert("HSV"), adjust_hue and adjust_saturation;
  * fallback_boxes: RandomResizedCrop.get_params when no attempt can succeed;
  * sampler: DistributedSampler(shuffle=False) shards and DataLoader(drop_last) lengths.
"""

import json
import pathlib

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F
from PIL import Image, ImageFilter
from torchvision.transforms import InterpolationMode, RandomResizedCrop

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "swav-augment" / "tests" / "goldens"
MEAN = [0.485, 0.456, 0.406]
STD = [0.228, 0.224, 0.225]
OPS = ["brightness", "contrast", "saturation", "hue"]


def f32(x):
    """The float32 value torchvision would hold (its factors are drawn in float32)."""
    return float(np.float32(x))


def make_texture(width=64, height=48):
    """Gradients, oriented waves, noise, a grey patch and a saturated patch."""
    rng = np.random.default_rng(20240611)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 127.5 + 127.5 * np.sin(x / 5.0 + y / 9.0)
    g = 127.5 + 127.5 * np.cos(x / 7.0 - y / 4.0)
    b = (x * 4.0 + y * 3.0) % 256.0
    img = np.stack([r, g, b], axis=-1) + rng.normal(0.0, 18.0, (height, width, 3))
    img[8:18, 4:22] = 190.0 + rng.normal(0.0, 6.0, (10, 18, 1))
    img[30:40, 40:58] = [250.0, 12.0, 6.0]
    img[0:6, 50:64] = [5.0, 30.0, 240.0]
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def save_u8(name, img):
    np.save(OUT / name, np.asarray(img, dtype=np.uint8))
    return name


def save_f32_hwc(name, tensor):
    np.save(OUT / name, tensor.permute(1, 2, 0).contiguous().numpy().astype(np.float32))
    return name


def apply_jitter(img, jitter):
    for op in jitter["order"]:
        factor = jitter[op]
        img = {
            "brightness": F.adjust_brightness,
            "contrast": F.adjust_contrast,
            "saturation": F.adjust_saturation,
            "hue": F.adjust_hue,
        }[op](img, factor)
    return img


def resized_crop(img, p):
    return F.resized_crop(img, p["top"], p["left"], p["height"], p["width"], [p["size"], p["size"]],
                          InterpolationMode.BILINEAR, antialias=True)


def pipeline(img, p):
    out = resized_crop(img, p)
    if p["flip"]:
        out = F.hflip(out)
    if p["jitter"] is not None:
        out = apply_jitter(out, p["jitter"])
    if p["grayscale"]:
        out = F.rgb_to_grayscale(out, num_output_channels=3)
    if p["blur_sigma"] is not None:
        out = out.filter(ImageFilter.GaussianBlur(radius=p["blur_sigma"]))
    return F.normalize(F.to_tensor(out), MEAN, STD)


def all_colours():
    """A 4096 x 4096 image holding every RGB colour once: pixel p = (r << 16) | (g << 8) | b."""
    p = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([(p >> 16) & 255, (p >> 8) & 255, p & 255], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb.reshape(4096, 4096, 3), "RGB")


def block_checksums(img, rows_per_block=16):
    """Per block of rows: sum of value * (position in block + 1), in uint64."""
    a = np.asarray(img, dtype=np.uint64).reshape(4096 // rows_per_block, -1)
    weights = np.arange(1, a.shape[1] + 1, dtype=np.uint64)
    return [int(v) for v in (a * weights).sum(axis=1, dtype=np.uint64)]


def write_formats():
    """Small fixtures in each input format, with PIL's RGB decoding of the lossless ones."""
    fmt = OUT / "formats"
    fmt.mkdir(exist_ok=True)
    base = make_texture().resize((16, 12), Image.BILINEAR)
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.arange(0, 256, 16, dtype=np.uint8), (12, 1)), "L"))
    fixtures = {
        "gray.png": base.convert("L"),
        "rgba.png": rgba,
        "rgb.bmp": base,
        "lossless.webp": base,
        "palette.png": base.quantize(16),
        "tiny_1x1.png": Image.new("RGB", (1, 1), (200, 10, 10)),
    }
    cases = []
    for name, img in fixtures.items():
        kwargs = {"lossless": True} if name.endswith(".webp") else {}
        img.save(fmt / name, **kwargs)
        expected = Image.open(fmt / name).convert("RGB")
        cases.append({"file": f"formats/{name}", "exact": save_u8(f"formats/{name}.rgb.npy", expected)})
    # Lossy or non-8-bit inputs: compared loosely (decoders and bit-depth reductions differ).
    base.convert("CMYK").save(fmt / "cmyk.jpg", quality=95)
    cases.append({"file": "formats/cmyk.jpg",
                  "approx": save_u8("formats/cmyk.jpg.rgb.npy", Image.open(fmt / "cmyk.jpg").convert("RGB"))})
    wide = (np.asarray(base, dtype=np.uint16) * 257).astype(">u2")
    # Pillow cannot write 16-bit RGB PNGs; write one by hand (one IDAT, no filter).
    write_png16(fmt / "rgb16.png", wide)
    cases.append({"file": "formats/rgb16.png", "approx": save_u8("formats/rgb16.png.rgb.npy", base)})
    return cases


def write_png16(path, wide):
    import struct
    import zlib

    height, width, _ = wide.shape
    raw = b"".join(b"\x00" + wide[y].tobytes() for y in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                     + chunk(b"IEND", b""))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    texture = make_texture()
    texture.save(OUT / "texture.png")
    texture = Image.open(OUT / "texture.png").convert("RGB")
    manifest = {
        "generator": "scripts/goldens/augment_goldens.py",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "pillow": Image.__version__, "numpy": np.__version__},
        "texture": "texture.png",
        "normalization": {"mean": MEAN, "std": STD},
    }

    resize_cases = []
    for i, (top, left, h, w, size) in enumerate([
        (3, 5, 40, 50, 32),   # downscale both axes
        (0, 0, 48, 64, 24),   # whole image, downscale
        (10, 12, 15, 20, 32),  # upscale both axes
        (7, 9, 37, 22, 30),   # height down, width up
        (2, 1, 45, 45, 45),   # same size: a copy
    ]):
        out = F.resized_crop(texture, top, left, h, w, [size, size], InterpolationMode.BILINEAR, antialias=True)
        resize_cases.append({"top": top, "left": left, "height": h, "width": w, "size": size,
                             "file": save_u8(f"resize_{i}.npy", out)})
    manifest["resize"] = resize_cases

    colour_cases = []
    for op, factor in [("brightness", 0.35), ("brightness", 1.6), ("contrast", 0.3), ("contrast", 1.7),
                       ("saturation", 0.25), ("saturation", 1.75), ("hue", -0.2), ("hue", 0.07),
                       ("hue", 0.2), ("hue", 0.0)]:
        factor = f32(factor)
        out = apply_jitter(texture, {"order": [op], op: factor})
        colour_cases.append({"op": op, "factor": factor, "file": save_u8(f"{op}_{len(colour_cases)}.npy", out)})
    colour_cases.append({"op": "grayscale", "factor": None,
                         "file": save_u8("grayscale.npy", F.rgb_to_grayscale(texture, num_output_channels=3))})
    manifest["colour"] = colour_cases

    blur_cases = []
    tiny = texture.crop((10, 10, 13, 15))  # 3 x 5: the box is wider than the image
    for i, (source, sigma) in enumerate([("texture", 0.1), ("texture", 0.45), ("texture", 1.0),
                                         ("texture", 1.5), ("texture", 2.0), ("tiny", 2.0), ("tiny", 0.7)]):
        sigma = f32(sigma)
        img = texture if source == "texture" else tiny
        blur_cases.append({"source": source, "sigma": sigma,
                           "file": save_u8(f"blur_{i}.npy", img.filter(ImageFilter.GaussianBlur(radius=sigma)))})
    manifest["blur"] = blur_cases
    manifest["tiny_crop"] = {"left": 10, "top": 10, "width": 3, "height": 5}

    pipeline_cases = []
    for i, p in enumerate([
        {"top": 4, "left": 6, "height": 40, "width": 50, "size": 32, "flip": True,
         "jitter": {"order": ["saturation", "brightness", "hue", "contrast"],
                    "brightness": 1.3, "contrast": 0.6, "saturation": 1.5, "hue": -0.12},
         "grayscale": False, "blur_sigma": 1.2},
        {"top": 0, "left": 0, "height": 48, "width": 64, "size": 32, "flip": False, "jitter": None,
         "grayscale": True, "blur_sigma": None},
        {"top": 10, "left": 12, "height": 15, "width": 20, "size": 32, "flip": True,
         "jitter": {"order": ["hue", "saturation", "contrast", "brightness"],
                    "brightness": 0.4, "contrast": 1.8, "saturation": 0.2, "hue": 0.2},
         "grayscale": True, "blur_sigma": 0.3},
        {"top": 5, "left": 5, "height": 30, "width": 30, "size": 24, "flip": False,
         "jitter": {"order": ["brightness", "contrast", "saturation", "hue"],
                    "brightness": 1.8, "contrast": 0.2, "saturation": 1.0, "hue": 0.0},
         "grayscale": False, "blur_sigma": 2.0},
    ]):
        if p["jitter"] is not None:
            for op in OPS:
                p["jitter"][op] = f32(p["jitter"][op])
        if p["blur_sigma"] is not None:
            p["blur_sigma"] = f32(p["blur_sigma"])
        p["file"] = save_f32_hwc(f"pipeline_{i}.npy", pipeline(texture, p))
        p["resized_file"] = save_u8(f"pipeline_{i}_resized.npy", resized_crop(texture, p))
        pipeline_cases.append(p)
    manifest["pipeline"] = pipeline_cases

    eval_cases = []
    for mode, size in [("resize_center_crop", 24), ("resize_center_crop", 40), ("resize", 24)]:
        if mode == "resize":
            out = F.resize(texture, [size, size], InterpolationMode.BILINEAR, antialias=True)
        else:
            out = F.center_crop(F.resize(texture, round(size * 256 / 224), InterpolationMode.BILINEAR,
                                         antialias=True), size)
        t = F.normalize(F.to_tensor(out), MEAN, STD)
        eval_cases.append({"mode": mode, "size": size, "file": save_f32_hwc(f"eval_{len(eval_cases)}.npy", t)})
    manifest["eval"] = eval_cases

    colours = all_colours()
    checksums = {"rows_per_block": 16,
                 "luma": block_checksums(colours.convert("L").convert("RGB")),
                 "hsv": block_checksums(colours.convert("HSV"))}
    for factor in [0.0, 0.13, -0.2, 0.5]:
        checksums[f"hue {f32(factor)!r}"] = block_checksums(F.adjust_hue(colours, f32(factor)))
    for factor in [0.37, 1.63]:
        checksums[f"saturation {f32(factor)!r}"] = block_checksums(F.adjust_saturation(colours, f32(factor)))
    manifest["colour_checksums"] = checksums

    fallback = []
    for w, h in [(1000, 100), (100, 1000), (300, 300), (1, 1), (401, 300), (7, 23), (640, 479)]:
        i, j, ch, cw = RandomResizedCrop.get_params(Image.new("RGB", (w, h)), [2.0, 2.0], [3 / 4, 4 / 3])
        fallback.append({"width": w, "height": h, "top": i, "left": j, "crop_height": ch, "crop_width": cw})
    manifest["fallback_boxes"] = fallback

    sampler_cases = []
    for n, world, batch in [(10, 3, 2), (10, 4, 3), (5, 8, 1), (12, 4, 3), (1281167, 64, 64), (7, 2, 4)]:
        shards = []
        for rank in range(world):
            s = torch.utils.data.DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False)
            shards.append(list(s) if n < 1000 else len(s))
        loader = torch.utils.data.DataLoader(range(n), batch_size=batch, drop_last=True,
                                             sampler=torch.utils.data.DistributedSampler(
                                                 range(n), num_replicas=world, rank=0, shuffle=True))
        sampler_cases.append({"len": n, "world_size": world, "batch_size": batch,
                              "shards": shards, "iters_per_epoch": len(loader)})
    manifest["sampler"] = sampler_cases

    manifest["formats"] = write_formats()
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
