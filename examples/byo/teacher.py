"""A teacher as it might live in your own code base: `build()` returns a torch nn.Module.

edgedistill calls `build(num_classes=..., in_channels=...)` (it passes the arguments a function
declares among num_classes, in_channels and input_shape) and loads --teacher-weights into it.
"""

from torch import nn


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ShapesNet(nn.Module):
    """A small VGG-style CNN: three stages of two 3x3 convolutions, then a linear classifier."""

    def __init__(self, num_classes: int, in_channels: int, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _stage(in_channels, width), _stage(width, 2 * width), _stage(2 * width, 4 * width)
        )
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def build(num_classes: int = 4, in_channels: int = 3, width: int = 32) -> nn.Module:
    return ShapesNet(num_classes, in_channels, width)
