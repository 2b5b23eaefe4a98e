"""`builtin:digits-pose`: a small image regression task built offline from scikit-learn's digits.

Each 8x8 digit is drawn at 32x32 (bilinear), then rotated by an angle in [-40°, 40°] and scaled
by a factor in [0.7, 1.1] about its centre, both drawn from a fixed seed. The targets are the
angle in radians and the scale: two outputs, a pose estimate in miniature.
"""

from __future__ import annotations

import hashlib

from edgedistill.tasks.table import ImageFacts, SampleTable, regression_targets

SIZE = 32
MAX_ANGLE_DEG = 40.0
SCALES = (0.7, 1.1)
SEED = 0
OUTPUTS = ["angle_rad", "scale"]


def _posed(images, angles, scales):
    """images (N x 8 x 8) drawn at SIZE x SIZE, rotated by `angles` and scaled by `scales`."""
    import torch
    import torch.nn.functional as F

    big = F.interpolate(
        torch.from_numpy(images)[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False
    )
    cos, sin = torch.cos(angles) / scales, torch.sin(angles) / scales
    # output pixel -> input pixel: the inverse of "rotate by angle, scale by s"
    theta = torch.stack(
        [
            torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
            torch.stack([sin, cos, torch.zeros_like(cos)], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(big.shape), align_corners=False)
    return F.grid_sample(big, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[
        :, 0
    ]


def digits_pose() -> SampleTable:
    import math

    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32)  # 0..16 grey levels
    generator = torch.Generator().manual_seed(SEED)
    count = len(images)
    angles = (torch.rand(count, generator=generator) * 2 - 1) * math.radians(MAX_ANGLE_DEG)
    low, high = SCALES
    scales = low + torch.rand(count, generator=generator) * (high - low)
    posed = _posed(images, angles, scales).numpy().astype(np.float32)
    labels, targets = regression_targets(torch.stack([angles, scales], 1).numpy())
    digest = hashlib.sha256(posed.tobytes() + targets.tobytes()).hexdigest()
    return SampleTable(
        source="builtin:digits-pose",
        labels=labels,
        read=posed.__getitem__,
        identity=f"builtin:digits-pose:{digest}",
        facts=ImageFacts(
            channels=1, height=SIZE, width=SIZE, kind="float", channel_order="gray", full_scale=16.0
        ),
        class_names=list(OUTPUTS),
        targets=targets,
    )
