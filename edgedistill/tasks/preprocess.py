"""Raw image (H x W x C) -> model input, as the recipe's preprocessing says; defaults from the data.

The steps, in order, are what a device team repeats on the device: take the image in
`channel_order`, multiply the raw values by `scale`, resize to `resize` (bilinear, half-pixel
centres, antialiased when shrinking, as Pillow does), subtract `mean` and divide by `std` per
channel, and lay it out as C x H x W.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from edgedistill.tasks.recipe import Preprocessing

if TYPE_CHECKING:
    import numpy as np
    import torch

STAT_SAMPLES = 512  # images read to estimate the default mean and std


class Preprocessor:
    """Callable: raw H x W (x C) array of uint8 or float -> float32 C x H x W tensor."""

    def __init__(self, preprocessing: Preprocessing) -> None:
        self.scale = preprocessing.scale
        self.size = tuple(preprocessing.resize)
        self.mean = list(preprocessing.mean)
        self.std = list(preprocessing.std)
        self.interpolation = preprocessing.interpolation

    def __call__(self, raw: np.ndarray) -> torch.Tensor:
        x = self.scaled(raw)
        if tuple(x.shape[1:]) != self.size:
            x = resize(x, self.size, self.interpolation)
        import torch

        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return ((x - mean) / std).contiguous()

    def scaled(self, raw: np.ndarray) -> torch.Tensor:
        import numpy as np
        import torch

        array = np.asarray(raw)
        if array.ndim == 2:
            array = array[:, :, None]
        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)
        return x * self.scale


def resize(x: torch.Tensor, size: tuple[int, ...], mode: str = "bilinear") -> torch.Tensor:
    """C x H x W -> C x size with half-pixel centres; bilinear and bicubic are antialiased when
    shrinking (as Pillow does), nearest picks the pixel whose centre is nearest."""
    import torch.nn.functional as F

    if mode == "nearest":
        return F.interpolate(x.unsqueeze(0), size=size, mode="nearest-exact")[0]
    shrinking = x.shape[1] > size[0] or x.shape[2] > size[1]
    return F.interpolate(
        x.unsqueeze(0), size=size, mode=mode, align_corners=False, antialias=shrinking
    )[0]


def default_preprocessing(
    raw_samples: Sequence[np.ndarray],
    channels: int,
    size: tuple[int, int],
    scale: float,
    channel_order: str,
    source: str,
) -> Preprocessing:
    """scale + resize as given; mean and std measured on `raw_samples` (a seeded sample)."""
    import torch

    base = Preprocessor(
        Preprocessing(
            description="",
            resize=size,
            scale=scale,
            mean=[0.0] * channels,
            std=[1.0] * channels,
            channel_order=channel_order,
        )
    )
    stacked = torch.stack([base(raw) for raw in raw_samples])
    mean = stacked.mean(dim=(0, 2, 3))
    std = stacked.std(dim=(0, 2, 3)).clamp_min(1e-6)
    std = torch.where(std < 1e-3, torch.ones_like(std), std)
    range_note = scale_note(scale)
    return Preprocessing(
        description=(
            f"{channel_order} image ({source}), {range_note}, resized to {size[0]}x{size[1]} "
            "(bilinear, half-pixel centres, antialiased when shrinking), normalised per "
            f"channel with the mean and std of {len(raw_samples)} training images"
        ),
        resize=size,
        scale=scale,
        mean=[round(float(v), 6) for v in mean],
        std=[round(float(v), 6) for v in std],
        channel_order=channel_order,
    )


def scale_note(scale: float) -> str:
    if scale == 1 / 255:
        return "raw values 0..255 scaled to [0, 1]"
    return "raw values as they are" if scale == 1 else f"raw values multiplied by {scale:.6g}"


def identity_preprocessing(channels: int, size: tuple[int, int], source: str) -> Preprocessing:
    """For data whose samples are model inputs already (a Python dataset does its own work)."""
    order = {1: "gray", 3: "rgb"}.get(channels, "as-is")
    return Preprocessing(
        description=(
            f"as produced by {source}; edgedistill applies none. Describe your transform in "
            "the recipe's preprocessing section so the device team can repeat it"
        ),
        resize=size,
        scale=1.0,
        mean=[0.0] * channels,
        std=[1.0] * channels,
        channel_order=order,
    )
