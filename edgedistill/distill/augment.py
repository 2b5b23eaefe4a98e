"""Random training-time augmentation (train.augment): shifts and horizontal flips of a batch,
drawn from the trainer's seeded generator so that a resumed run draws the same ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from edgedistill.tasks.recipe import AugmentSpec


def augment_batch(x: torch.Tensor, spec: AugmentSpec, generator: torch.Generator) -> torch.Tensor:
    """A randomly shifted (zero fill) and/or flipped copy of the N x C x H x W batch."""
    import torch
    import torch.nn.functional as F

    n, _, height, width = x.shape
    if spec.hflip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    if spec.shift:
        s = spec.shift
        padded = F.pad(x, (s, s, s, s))
        offsets = torch.randint(0, 2 * s + 1, (n, 2), generator=generator).tolist()
        x = torch.stack(
            [padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets)]
        )
    return x
