"""letters: a judging dataset made after the small-data recipe and its time budget were chosen,
with statistics unlike the others (docs/demo-recipe.md, "Off the built-in data"):

    python scripts/recipe/make_letters.py [OUT_DIR]    # default data/letters

Ten classes, the capital letters A-J, drawn in Pillow's bundled scalable font at 18-40 px
on 48 px colour images whose background is a blurred random-colour clutter of rectangles
and ellipses; the letter's colour, size, position and a small rotation are random. So the
class is a shape in the middle of colourful clutter, 48 px: a larger image than the other
sets, and one where colour is noise but not the same for two images. Needs numpy and
pillow (>= 10.1 for the scalable default font). train/ has 200 per class, val/ 100."""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join("data", "letters")
SIZE = 48
rng = np.random.default_rng(2026)


def colour():
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def letter_image(c):
    img = Image.new("RGB", (SIZE, SIZE), colour())
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(4, 10))):
        x0, y0 = rng.integers(-10, SIZE, 2)
        w, h = rng.integers(6, 30, 2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        (d.rectangle if rng.random() < 0.5 else d.ellipse)(box, fill=colour())
    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.5))))
    size = int(rng.integers(18, 41))
    font = ImageFont.load_default(size=size)
    glyph = Image.new("L", (SIZE * 2, SIZE * 2), 0)
    ImageDraw.Draw(glyph).text((SIZE, SIZE), "ABCDEFGHIJ"[c], fill=255, font=font, anchor="mm")
    glyph = glyph.rotate(float(rng.uniform(-20, 20)), resample=Image.BILINEAR)
    dx, dy = rng.integers(-8, 9, 2)
    glyph = glyph.crop((SIZE // 2 - dx, SIZE // 2 - dy, SIZE // 2 - dx + SIZE, SIZE // 2 - dy + SIZE))
    img.paste(Image.new("RGB", (SIZE, SIZE), colour()), (0, 0), glyph)
    return img


def main():
    for split, per_class in (("train", 200), ("val", 100)):
        for c in range(10):
            folder = os.path.join(OUT, split, "ABCDEFGHIJ"[c])
            os.makedirs(folder, exist_ok=True)
            for i in range(per_class):
                letter_image(c).save(os.path.join(folder, f"{i:04d}.png"))
    print(f"wrote {OUT}: 10 classes, 200 train and 100 val images each, {SIZE} px")


if __name__ == "__main__":
    main()
