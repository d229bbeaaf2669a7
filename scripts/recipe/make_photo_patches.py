"""A judging dataset of natural-image statistics, made after the probe score was chosen (it
never chose anything): `photo-patches`, written as an ImageFolder with train/ and val/ under
OUT_DIR (default data/photo-patches):

    python scripts/recipe/make_photo_patches.py [OUT_DIR]

Needs numpy, pillow and scikit-image (its bundled sample photographs: no download).

Each class is one photograph: five in colour (coffee, astronaut, chelsea, rocket,
hubble_deep_field) and five grey (camera, coins, grass, gravel, brick). A sample is a square
patch of 12-30 % of the photograph's shorter side at a random place, resized to 40 px. Train
patches are centred in the left two thirds of the photograph and validation patches in the
right third, so the two splits share no pixels' neighbourhoods but the photograph's statistics.
Unlike the textures set, colour here is a real cue: half the classes have none, the others
each have their own palette. train/ has 200 patches per class, val/ 100."""
import os
import sys

import numpy as np
from PIL import Image
from skimage import data

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join("data", "photo-patches")
PHOTOS = ["coffee", "astronaut", "chelsea", "rocket", "hubble_deep_field",
          "camera", "coins", "grass", "gravel", "brick"]
SIZE = 40
rng = np.random.default_rng(11)


def patch(photo, lo, hi):
    """A random square patch whose centre's x lies in [lo, hi) of the width."""
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.12, 0.30) * min(h, w))
    cx = int(rng.uniform(lo, hi) * w)
    x = int(np.clip(cx - side // 2, 0, w - side))
    y = int(rng.integers(0, h - side + 1))
    img = Image.fromarray(photo[y:y + side, x:x + side]).convert("RGB")
    return img.resize((SIZE, SIZE), Image.BILINEAR)


def main():
    for c, name in enumerate(PHOTOS):
        photo = getattr(data, name)()
        for split, count, (lo, hi) in (("train", 200, (0.0, 2 / 3)), ("val", 100, (2 / 3, 1.0))):
            folder = os.path.join(OUT, split, f"{c}-{name}")
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                patch(photo, lo, hi).save(os.path.join(folder, f"{i:04d}.png"))
    print(f"wrote {OUT}: 10 classes, 200 train and 100 val patches each, {SIZE} px")


if __name__ == "__main__":
    main()
