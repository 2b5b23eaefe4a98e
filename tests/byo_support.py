"""Generated data and teachers for the bring-your-own tests (test_tasks_*, test_byo_*)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY_TEACHER = """
from torch import nn


def build(num_classes, in_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


def wrong_width():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 7))


def not_a_module():
    return "a string"
"""


def image_array(label: int, size: tuple[int, int], channels: int, rng) -> np.ndarray:
    """A noisy image whose brightness pattern depends on its class (so teachers can learn)."""
    height, width = size
    base = np.zeros((height, width), np.float32)
    band = slice(label * height // 4, (label + 1) * height // 4)
    base[band, :] = 200
    pixels = base[:, :, None] + rng.normal(0, 20, (height, width, channels))
    array = np.clip(pixels, 0, 255).astype(np.uint8)
    return array[:, :, 0] if channels == 1 else array


def write_images(
    folder: Path,
    count: int,
    label: int = 0,
    size: tuple[int, int] = (8, 8),
    mode: str = "RGB",
    seed: int = 0,
    suffix: str = ".png",
) -> list[Path]:
    """`count` images of one class into `folder`, in Pillow `mode`."""
    from PIL import Image

    rng = np.random.default_rng(seed + 1000 * label)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        channels = 1 if mode in ("L", "1") else 3
        image = Image.fromarray(image_array(label, size, channels, rng))
        if image.mode != mode:
            image = image.convert(mode)
        path = folder / f"img_{index:03d}{suffix}"
        image.save(path)
        paths.append(path)
    return paths


def image_folder(root: Path, classes: int = 3, per_class: int = 10, **kwargs) -> Path:
    """root/class_k/*.png for k < classes."""
    for label in range(classes):
        write_images(root / f"class_{label}", per_class, label=label, **kwargs)
    return root


def tiny_teacher_file(folder: Path) -> Path:
    path = folder / "tiny_teacher.py"
    path.write_text(TINY_TEACHER)
    return path
