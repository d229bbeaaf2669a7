"""The judging datasets of docs/demo-recipe.md ("Off the built-in data"), written as ImageFolders
with train/ and val/ under OUT_DIR (default data/):

    python scripts/recipe/make_judging_data.py [OUT_DIR]

Needs numpy and pillow; `digits` also needs scikit-learn (its bundled copy of the UCI
handwritten digits: no download).

strokes: 10 glyph classes drawn as thin 1-2 px polylines on a flat background, 40 px;
textures: 10 texture classes (orientation/frequency/pattern) with random phase, colour and scale, 32 px.
digits: scikit-learn's 1,797 real 8 x 8 handwritten digits, 17 grey levels; the first 120 of
each class train, the rest validate.
strokes and textures: train/ has 200 per class, val/ 100 per class."""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

OUT = sys.argv[1] if len(sys.argv) > 1 else "data"
rng = np.random.default_rng(7)

def glyph_templates():
    t = []
    r = np.random.default_rng(123)
    for c in range(10):
        pts = r.uniform(0.15, 0.85, size=(r.integers(3, 6), 2))
        t.append(pts)
    return t

TEMPL = glyph_templates()

def stroke_image(c, size=40):
    bg = int(rng.integers(0, 60)); fg = int(rng.integers(150, 256))
    img = Image.new("L", (size, size), bg)
    d = ImageDraw.Draw(img)
    pts = TEMPL[c] + rng.normal(0, 0.04, TEMPL[c].shape)
    ang = rng.uniform(-0.4, 0.4); sc = rng.uniform(0.7, 1.1)
    ctr = np.array([0.5, 0.5]) + rng.normal(0, 0.06, 2)
    R = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    p = ((pts - 0.5) @ R.T) * sc + ctr
    p = [(float(x * size), float(y * size)) for x, y in p]
    d.line(p, fill=fg, width=int(rng.integers(1, 3)))
    return img.convert("RGB")

def texture_image(c, size=32):
    y, x = np.mgrid[0:size, 0:size].astype(float)
    kind, param = c % 5, c // 5
    ph = rng.uniform(0, 2 * np.pi); f = rng.uniform(0.25, 0.45) * (1.6 if param else 1.0)
    if kind == 0:   # stripes, horizontal or vertical
        v = np.sin((x if param else y) * f + ph)
    elif kind == 1: # diagonal stripes, either way
        v = np.sin((x + y if param else x - y) * f * 0.7 + ph)
    elif kind == 2: # checkerboard, fine or coarse
        v = np.sign(np.sin(x * f + ph)) * np.sign(np.sin(y * f + ph * 0.7))
    elif kind == 3: # dots, sparse or dense
        v = np.cos(x * f + ph) * np.cos(y * f + ph) ; v = (v > (0.6 if param else 0.2)).astype(float) * 2 - 1
    else:           # rings, or smooth noise blobs
        if param:
            cx, cy = rng.uniform(0, size, 2); v = np.sin(np.hypot(x - cx, y - cy) * f + ph)
        else:
            n = rng.normal(size=(6, 6)); v = np.array(Image.fromarray(((n - n.min()) / (np.ptp(n) + 1e-9) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC), float) / 127.5 - 1
    v = v + rng.normal(0, 0.25, v.shape)
    c1 = rng.uniform(0, 255, 3); c2 = rng.uniform(0, 255, 3)
    t = (v[..., None] + 1) / 2
    img = (c1 * t + c2 * (1 - t)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(img, "RGB")

def write(name, fn):
    root = os.path.join(OUT, name)
    for split, n in (("train", 200), ("val", 100)):
        for c in range(10):
            d = f"{root}/{split}/class{c}"; os.makedirs(d, exist_ok=True)
            for i in range(n):
                fn(c).save(f"{d}/{i:04d}.png")



def write_digits():
    from sklearn.datasets import load_digits
    from PIL import Image as PILImage

    d = load_digits()
    counts = {}
    for img, y in zip(d.images, d.target):
        n = counts.get(y, 0)
        counts[y] = n + 1
        split = "train" if n < 120 else "val"
        out = os.path.join(OUT, "digits", split, f"digit{y}")
        os.makedirs(out, exist_ok=True)
        PILImage.fromarray((img * 255.0 / 16.0).round().astype(np.uint8), "L").save(f"{out}/{n:04d}.png")


write("strokes", stroke_image)
write("textures", texture_image)
write_digits()
print("done")
