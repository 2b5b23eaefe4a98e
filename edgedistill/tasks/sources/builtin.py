"""`builtin:digits`: the 8x8 handwritten digits scikit-learn ships (1,797 images, no download)."""

from __future__ import annotations

import hashlib

from edgedistill.errors import UserInputError
from edgedistill.tasks.sources._registry import DATA_SOURCES, SourceContext
from edgedistill.tasks.table import ImageFacts, SampleTable


@DATA_SOURCES.register("builtin")
def builtin_source(argument: str, context: SourceContext) -> SampleTable:
    if argument != "digits":
        raise UserInputError(f"{context.what}: no built-in data {argument!r} (known: digits)")
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
            channels=1,
            height=8,
            width=8,
            kind="float",
            channel_order="gray",
            full_scale=16.0,
        ),
        class_names=[str(i) for i in range(10)],
    )
