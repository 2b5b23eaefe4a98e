"""MobileNetV2-style students (Sandler et al. 2018): inverted residual blocks, linear bottlenecks.

Knobs: `w` width multiplier, `d` blocks per stage, `r` input resolution (the student resizes
its input to r x r itself, so every candidate takes the task's native input shape). Only ops
that ONNX, TFLite, Core ML and TensorRT all support are used: conv, batch norm, ReLU6, add,
bilinear resize, global average pooling, linear.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.students._registry import FAMILIES
from edgedistill.students.candidate import Candidate

if TYPE_CHECKING:
    from torch import nn

WIDTHS = (0.25, 0.5, 0.75, 1.0, 1.5)
DEPTHS = (1, 2, 3)
RESOLUTIONS = (16, 24, 32)
EXPANSION = 4
# (expansion, channels at w=1, stride); stage 0 is a single non-expanding block.
STAGES = ((1, 16, 1), (EXPANSION, 24, 2), (EXPANSION, 32, 2), (EXPANSION, 64, 2))
STEM_CHANNELS = 16
HEAD_CHANNELS = 128


def _channels(base: int, width: float, divisor: int = 4) -> int:
    scaled = max(divisor, int(base * width + divisor / 2) // divisor * divisor)
    return scaled if scaled >= 0.9 * base * width else scaled + divisor


def _build_module(width: float, depth: int, resolution: int, in_channels: int, num_classes: int):
    import torch.nn.functional as F
    from torch import nn

    def conv_bn(
        cin: int, cout: int, kernel: int, stride: int, groups: int, act: bool
    ) -> nn.Sequential:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        return nn.Sequential(*layers)

    class InvertedResidual(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
            super().__init__()
            hidden = cin * expansion
            layers: list[nn.Module] = []
            if expansion != 1:
                layers.append(conv_bn(cin, hidden, 1, 1, 1, act=True))
            layers.append(conv_bn(hidden, hidden, 3, stride, hidden, act=True))
            layers.append(conv_bn(hidden, cout, 1, 1, 1, act=False))
            self.block = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            out = self.block(x)
            return x + out if self.residual else out

    class MobileNetV2Student(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.resolution = resolution
            channels = _channels(STEM_CHANNELS, width)
            self.stem = conv_bn(in_channels, channels, 3, 1, 1, act=True)
            blocks: list[nn.Module] = []
            for stage_index, (expansion, base, stride) in enumerate(STAGES):
                cout = _channels(base, width)
                repeats = 1 if stage_index == 0 else depth
                for block_index in range(repeats):
                    block_stride = stride if block_index == 0 else 1
                    blocks.append(InvertedResidual(channels, cout, block_stride, expansion))
                    channels = cout
            self.features = nn.Sequential(*blocks)
            head = _channels(HEAD_CHANNELS, max(width, 1.0))
            self.head = conv_bn(channels, head, 1, 1, 1, act=True)
            self.classifier = nn.Linear(head, num_classes)

        def forward(self, x):
            if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
                x = F.interpolate(
                    x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False
                )
            x = self.head(self.features(self.stem(x)))
            return self.classifier(x.mean(dim=(2, 3)))

    return MobileNetV2Student()


class MobileNetV2Family:
    name = "mbv2"

    def space(self, input_shape: tuple[int, int, int]) -> Iterator[Candidate]:
        max_resolution = min(input_shape[1], input_shape[2])
        resolutions = [r for r in RESOLUTIONS if r <= max_resolution] or [max_resolution]
        for width, depth, resolution in itertools.product(WIDTHS, DEPTHS, resolutions):
            yield Candidate(self.name, {"w": width, "d": depth, "r": resolution})

    def validate(self, candidate: Candidate) -> None:
        knobs = dict(candidate.knobs)
        missing = {"w", "d", "r"} - set(knobs)
        unknown = set(knobs) - {"w", "d", "r"}
        if missing or unknown:
            raise UserInputError(
                f"student {candidate.spec}: mbv2 takes knobs w (width), d (depth), r (resolution)"
                + (f"; missing {', '.join(sorted(missing))}" if missing else "")
                + (f"; unknown {', '.join(sorted(unknown))}" if unknown else "")
            )
        width, depth, resolution = knobs["w"], knobs["d"], knobs["r"]
        if not isinstance(width, (int, float)) or not 0.1 <= width <= 4:
            raise UserInputError(f"student {candidate.spec}: w must be a number in [0.1, 4]")
        if not isinstance(depth, int) or not 1 <= depth <= 6:
            raise UserInputError(f"student {candidate.spec}: d must be an integer in [1, 6]")
        if not isinstance(resolution, int) or not 8 <= resolution <= 1024:
            raise UserInputError(f"student {candidate.spec}: r must be an integer in [8, 1024]")

    def build(self, candidate: Candidate, input_shape: tuple[int, int, int], num_classes: int):
        self.validate(candidate)
        knobs = candidate.knobs
        return _build_module(
            float(knobs["w"]), int(knobs["d"]), int(knobs["r"]), input_shape[0], num_classes
        )


FAMILIES.add(MobileNetV2Family.name, MobileNetV2Family())
