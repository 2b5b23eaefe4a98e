"""What a model takes: images (float32 N x C x H x W) or token ids (int64 N x L).

The shape of one sample says which: three dimensions (C, H, W) are an image, one (L,) is a
sequence of token ids from a vocabulary. Everything that makes an example input (export, cost,
probes, checks) asks here instead of assuming float images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Vocabulary:
    """The token ids a text task feeds: ids in [0, size), `pad_id` fills short texts; and
    what its students make of them: class logits, or (`embedding`) a sentence embedding.
    These are the task's facts a text student takes as knobs (students/transformer.py)."""

    size: int
    pad_id: int = 0
    embedding: bool = False


def takes_tokens(shape: tuple[int, ...] | list[int]) -> bool:
    """True when samples of this shape are token ids (one dimension: the sequence length)."""
    return len(shape) == 1


def input_tag(shape: tuple[int, ...] | list[int]) -> str:
    """A sample shape as a file-name part: `1x32x32` for an image, `tokens-40` for token ids."""
    if takes_tokens(shape):
        return f"tokens-{shape[0]}"
    return "x".join(str(side) for side in shape)


def shape_words(shape: tuple[int, ...] | list[int]) -> str:
    """How messages name the layout of a sample of this shape."""
    return "L token ids" if takes_tokens(shape) else "C x H x W"


def example_input(shape: tuple[int, ...] | list[int], batch: int = 1) -> torch.Tensor:
    """Zeros of the model's input type: int64 token ids, or a float32 image."""
    import torch

    dtype = torch.int64 if takes_tokens(shape) else torch.float32
    return torch.zeros((batch, *shape), dtype=dtype)


def random_input(
    shape: tuple[int, ...] | list[int],
    batch: int,
    generator: torch.Generator | None = None,
    vocab_size: int | None = None,
) -> torch.Tensor:
    """A seeded random batch: token ids uniform over the vocabulary (ids 1.. when it has more
    than one, so that no sample is all padding), or standard normal pixels."""
    import torch

    if takes_tokens(shape):
        high = vocab_size or 2
        low = 1 if high > 1 else 0
        return torch.randint(low, high, (batch, *shape), generator=generator, dtype=torch.int64)
    return torch.randn((batch, *shape), generator=generator)


def as_array(batch):
    """A batch (tensor or array) as the numpy array runtimes are fed: token ids stay int64,
    pixels become float32."""
    import numpy as np

    array = batch.numpy() if hasattr(batch, "numpy") else np.asarray(batch)
    return array.astype(np.int64 if np.issubdtype(array.dtype, np.integer) else np.float32)
