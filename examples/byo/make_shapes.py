"""Write a small image folder to try `edgedistill fit --data imagefolder:DIR` on.

Four classes of coloured shapes (circle, square, triangle, cross) on noisy backgrounds, one
sub-folder per class (`--layout split` writes train/ val/ test/ sub-trees instead), and with
`--unlabeled N` an unlabeled/ folder of N more images. Deterministic for a given --seed.

    python examples/byo/make_shapes.py shapes --per-class 150
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "cross")


def draw(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    background = tuple(int(v) for v in rng.integers(0, 90, 3))
    colour = tuple(int(v) for v in rng.integers(120, 256, 3))
    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    radius = rng.uniform(0.2, 0.38) * size
    cx, cy = rng.uniform(radius, size - radius, 2)
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "circle":
        pen.ellipse(box, fill=colour)
    elif shape == "square":
        pen.rectangle(box, fill=colour)
    elif shape == "triangle":
        pen.polygon(
            [(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour
        )
    else:
        bar = radius / 3
        pen.rectangle((cx - radius, cy - bar, cx + radius, cy + bar), fill=colour)
        pen.rectangle((cx - bar, cy - radius, cx + bar, cy + radius), fill=colour)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 12, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to create")
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--size", type=int, default=32, help="image width and height, pixels")
    parser.add_argument("--unlabeled", type=int, default=0, help="images in unlabeled/")
    parser.add_argument("--layout", choices=("flat", "split"), default="flat")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    for shape in CLASSES:
        for index in range(args.per_class):
            folder = args.out / shape
            if args.layout == "split":
                share = index / args.per_class
                split = "train" if share < 0.7 else ("val" if share < 0.85 else "test")
                folder = args.out / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            draw(shape, args.size, rng).save(folder / f"{shape}_{index:04d}.png")
    if args.unlabeled:
        folder = args.out / "unlabeled"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(args.unlabeled):
            shape = CLASSES[int(rng.integers(len(CLASSES)))]
            draw(shape, args.size, rng).save(folder / f"image_{index:04d}.png")
    total = args.per_class * len(CLASSES) + args.unlabeled
    print(f"wrote {total} images to {args.out}")


if __name__ == "__main__":
    main()
