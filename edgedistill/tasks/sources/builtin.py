"""`builtin:NAME`: data that ships with scikit-learn (no download), one builder per name.

- `digits`: the 8x8 handwritten digits (1,797 images, 16 grey levels), classified 0-9;
- `digits-pose`: the same digits, each rotated and scaled by a seeded random amount and drawn
  at 32x32; the task is to regress the rotation (radians) and the scale (digits_pose.py).
"""

from __future__ import annotations

import hashlib

from edgedistill.errors import UserInputError
from edgedistill.registry import Registry
from edgedistill.tasks.sources._registry import DATA_SOURCES, SourceContext
from edgedistill.tasks.sources.digits_pose import digits_pose
from edgedistill.tasks.table import ImageFacts, SampleTable

BUILTIN_DATA: Registry = Registry("built-in data")


@BUILTIN_DATA.register("digits")
def digits() -> SampleTable:
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32)  # 0..16 grey levels
    labels = bunch.target.astype(np.int64)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    return SampleTable(
        source="builtin:digits",
        labels=labels,
        read=images.__getitem__,
        identity=f"builtin:digits:{digest}",
        facts=ImageFacts(
            channels=1, height=8, width=8, kind="float", channel_order="gray", full_scale=16.0
        ),
        class_names=[str(i) for i in range(10)],
    )


@BUILTIN_DATA.register("digits-pose")
def posed_digits() -> SampleTable:
    return digits_pose()


@DATA_SOURCES.register("builtin")
def builtin_source(argument: str, context: SourceContext) -> SampleTable:
    if argument not in BUILTIN_DATA:
        raise UserInputError(f"{context.what}: {BUILTIN_DATA.unknown_message(argument)}")
    return BUILTIN_DATA.get(argument)()
