"""Small export-friendly layers shared by student families (explicit modules so costs see them)."""

from __future__ import annotations


def make_layers():
    """Build the layer classes lazily so importing the package does not import torch."""
    import torch.nn.functional as F
    from torch import nn

    class Add(nn.Module):
        """Residual addition as a module, so cost extraction counts its kernel and bytes."""

        def forward(self, x, y):
            return x + y

    class Resize(nn.Module):
        """Bilinear resize to a fixed square resolution (half-pixel centres, no antialias)."""

        def __init__(self, resolution: int) -> None:
            super().__init__()
            self.resolution = resolution

        def forward(self, x):
            if x.shape[-1] == self.resolution and x.shape[-2] == self.resolution:
                return x
            size = (self.resolution, self.resolution)
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    class SqueezeExcite(nn.Module):
        """Squeeze-and-excitation (Hu et al. 2018): channel gates from globally pooled features.

        `squeeze` is the bottleneck width; inverted-residual blocks size it from the block's
        input channels, not its expanded ones (as EfficientNet does), which keeps SE cheap.
        """

        def __init__(self, channels: int, squeeze: int) -> None:
            super().__init__()
            hidden = max(4, squeeze)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.reduce = nn.Conv2d(channels, hidden, 1)
            self.act = nn.ReLU(inplace=True)
            self.expand = nn.Conv2d(hidden, channels, 1)
            self.gate = nn.Sigmoid()
            self.scale = Mul()

        def forward(self, x):
            return self.scale(x, self.gate(self.expand(self.act(self.reduce(self.pool(x))))))

    class Mul(nn.Module):
        """Broadcast multiplication as a module (SE gating), so its cost is counted."""

        def forward(self, x, y):
            return x * y

    return Add, Resize, SqueezeExcite
