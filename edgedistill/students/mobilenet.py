"""MobileNetV2-style students (Sandler et al. 2018): inverted residual blocks, linear bottlenecks.

Knobs (spec `mbv2:d=2,e=4,k=3,r=24,se=0,w=1.5`):
  w   width multiplier on every layer's channels
  d   inverted-residual blocks in each of the three strided stages
  e   expansion ratio of the blocks' hidden layer
  k   depthwise kernel size, 3 or 5
  se  squeeze-and-excitation in every block (Hu et al. 2018), 0 or 1
  r   input resolution: the student resizes its input to r x r itself, so every candidate
      takes the task's native input shape; the space offers 1/2, 3/4 and all of the input's
      shorter side (multiples of 8), e.g. 16, 24, 32 for 32x32 digits, 112, 168, 224 for 224x224
Only ops that ONNX, TFLite, Core ML and TensorRT all support are used: conv, batch norm, ReLU6,
sigmoid, add, mul, bilinear resize, global average pooling, linear.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from edgedistill.errors import UserInputError
from edgedistill.inputs import takes_tokens
from edgedistill.latency.costs import ModelCost, model_cost
from edgedistill.students._registry import FAMILIES
from edgedistill.students.candidate import Candidate
from edgedistill.students.layers import make_layers

WIDTHS = (0.25, 0.5, 0.75, 1.0, 1.25)
DEPTHS = (1, 2, 3)
EXPANSIONS = (3, 6)
KERNELS = (3, 5)
SQUEEZE_EXCITE = (0, 1)
RESOLUTION_FRACTIONS = (0.5, 0.75, 1.0)  # of the input's shorter side
RESOLUTION_STEP = 8
DEFAULTS: dict[str, Any] = {"e": 4, "k": 3, "se": 0}
KNOBS = ("w", "d", "e", "k", "se", "r")
# (channels at w=1, stride) of the three strided stages; a non-expanding block comes first.
STAGES = ((24, 2), (32, 2), (64, 2))
FIRST_BLOCK_CHANNELS = 16
STEM_CHANNELS = 16
HEAD_CHANNELS = 128


def space_resolutions(side: int) -> list[int]:
    """Resolutions the space offers for an input whose shorter side is `side` pixels (inputs
    under 8 pixels are upsampled to 8: smaller maps vanish in the three strided stages)."""
    picked = {
        max(RESOLUTION_STEP, int(side * fraction) // RESOLUTION_STEP * RESOLUTION_STEP)
        for fraction in RESOLUTION_FRACTIONS
    }
    return sorted(picked)


def _channels(base: int, width: float, divisor: int = 4) -> int:
    scaled = max(divisor, int(base * width + divisor / 2) // divisor * divisor)
    return scaled if scaled >= 0.9 * base * width else scaled + divisor


def _build_module(knobs: dict[str, Any], in_channels: int, num_classes: int):
    from torch import nn

    Add, Resize, SqueezeExcite = make_layers()
    width, depth, expansion = float(knobs["w"]), int(knobs["d"]), int(knobs["e"])
    kernel, squeeze_excite, resolution = int(knobs["k"]), bool(knobs["se"]), int(knobs["r"])

    def conv_bn(cin: int, cout: int, size: int, stride: int, groups: int, act: bool):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, size, stride, size // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        return nn.Sequential(*layers)

    class InvertedResidual(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, ratio: int) -> None:
            super().__init__()
            hidden = cin * ratio
            layers: list[nn.Module] = []
            if ratio != 1:
                layers.append(conv_bn(cin, hidden, 1, 1, 1, act=True))
            layers.append(conv_bn(hidden, hidden, kernel, stride, hidden, act=True))
            if squeeze_excite:
                layers.append(SqueezeExcite(hidden, cin // 4))
            layers.append(conv_bn(hidden, cout, 1, 1, 1, act=False))
            self.block = nn.Sequential(*layers)
            self.add = Add() if stride == 1 and cin == cout else None

        def forward(self, x):
            out = self.block(x)
            return self.add(x, out) if self.add is not None else out

    class MobileNetV2Student(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.resize = Resize(resolution)
            channels = _channels(STEM_CHANNELS, width)
            self.stem = conv_bn(in_channels, channels, 3, 1, 1, act=True)
            first = _channels(FIRST_BLOCK_CHANNELS, width)
            blocks: list[nn.Module] = [InvertedResidual(channels, first, 1, 1)]
            channels = first
            for base, stride in STAGES:
                cout = _channels(base, width)
                for index in range(depth):
                    blocks.append(
                        InvertedResidual(channels, cout, stride if index == 0 else 1, expansion)
                    )
                    channels = cout
            self.features = nn.Sequential(*blocks)
            head = _channels(HEAD_CHANNELS, max(width, 1.0))
            self.head = conv_bn(channels, head, 1, 1, 1, act=True)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(head, num_classes)

        def forward(self, x):
            x = self.head(self.features(self.stem(self.resize(x))))
            return self.classifier(self.pool(x).flatten(1))

    return MobileNetV2Student()


def _check(candidate: Candidate, knob: str, ok: bool, expected: str) -> None:
    if not ok:
        raise UserInputError(f"student {candidate.spec}: {knob} must be {expected}")


@FAMILIES.register("mbv2")
class MobileNetV2Family:
    name = "mbv2"
    task_knobs: tuple[str, ...] = ()

    def space(self, input_shape: tuple[int, ...], vocabulary=None) -> Iterator[Candidate]:
        """Candidates for images (C, H, W); none for token ids."""
        if takes_tokens(input_shape):
            return
        resolutions = space_resolutions(min(input_shape[1], input_shape[2]))
        grid = itertools.product(WIDTHS, DEPTHS, EXPANSIONS, KERNELS, SQUEEZE_EXCITE, resolutions)
        for width, depth, expansion, kernel, se, resolution in grid:
            yield Candidate(
                self.name,
                {"w": width, "d": depth, "e": expansion, "k": kernel, "se": se, "r": resolution},
            )

    def canonical(self, candidate: Candidate) -> Candidate:
        """The candidate with every knob spelled out (defaults filled in), validated."""
        knobs = {**DEFAULTS, **candidate.knobs}
        missing = {"w", "d", "r"} - set(knobs)
        unknown = set(knobs) - set(KNOBS)
        if missing or unknown:
            raise UserInputError(
                f"student {candidate.spec}: mbv2 takes knobs w (width), d (depth), r (resolution)"
                ", e (expansion), k (kernel), se (squeeze-excitation)"
                + (f"; missing {', '.join(sorted(missing))}" if missing else "")
                + (f"; unknown {', '.join(sorted(unknown))}" if unknown else "")
            )
        full = Candidate(self.name, knobs)
        w, d, e, k, se, r = (knobs[name] for name in KNOBS)
        _check(full, "w", isinstance(w, (int, float)) and 0.1 <= w <= 4, "a number in [0.1, 4]")
        _check(full, "d", isinstance(d, int) and 1 <= d <= 6, "an integer in [1, 6]")
        _check(full, "e", isinstance(e, int) and 1 <= e <= 8, "an integer in [1, 8]")
        _check(full, "k", k in (3, 5, 7), "3, 5 or 7")
        _check(full, "se", se in (0, 1), "0 or 1")
        _check(full, "r", isinstance(r, int) and 8 <= r <= 1024, "an integer in [8, 1024]")
        return full

    def validate(self, candidate: Candidate) -> None:
        self.canonical(candidate)

    def build(self, candidate: Candidate, input_shape: tuple[int, ...], num_classes: int):
        if takes_tokens(input_shape):
            raise UserInputError(
                f"student {candidate.spec}: mbv2 takes images, not token ids (a text task's "
                "students are tfm:...)"
            )
        knobs = self.canonical(candidate).knobs
        return _build_module(knobs, input_shape[0], num_classes)

    def cost(self, candidate, input_shape, num_classes, precision="fp32") -> ModelCost:
        return model_cost(self.build(candidate, input_shape, num_classes), input_shape, precision)
