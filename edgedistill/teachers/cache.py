"""Teacher-output cache: logits (and requested layer outputs) of the frozen teachers on the
train split, computed once and read memory-mapped (.npy, no pickle) on every later step and run.

The key covers each teacher's architecture and weights, the data fingerprint, the split, the
preprocessing (transform) and the requested layers, so any change makes a new entry. On every
open the first samples are recomputed and compared, so a stale entry is rebuilt, never used.
The cache is only used when the input pipeline is deterministic; `choose_outputs` says why not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill import atomic, ddp
from edgedistill.paths import cache_dir
from edgedistill.tasks.data import Split, iter_batches
from edgedistill.teachers.outputs import OnlineOutputs

if TYPE_CHECKING:
    import torch

    from edgedistill.ddp import DistContext
    from edgedistill.teachers.outputs import TeacherRunner

log = logging.getLogger(__name__)
FORMAT = 1
CHECK_SAMPLES = 16  # recomputed and compared each time an entry is opened
TOLERANCE = 1e-4


def teacher_digest(model: Any) -> str | None:
    """sha256 of a teacher's class, structure and weights; None when it cannot be hashed."""
    import torch
    from torch import nn

    if hasattr(model, "cache_digest"):
        return str(model.cache_digest)
    if not isinstance(model, nn.Module):
        return None
    digest = hashlib.sha256(f"{type(model).__qualname__}\n{model!r}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{data.dtype}:{list(tensor.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_key(teacher_digests: list[str], layers: list[str], data_identity: dict) -> str:
    import torch

    material = {
        "format": FORMAT,
        "teachers": teacher_digests,
        "layers": sorted(layers),
        "data": data_identity,
        "torch": ".".join(torch.__version__.split("+")[0].split(".")[:2]),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]


class CachedOutputs:
    """Teacher outputs read from the memory-mapped cache by sample index."""

    mode = "cached"

    def __init__(self, folder: Path, teachers: int, layers: list[str], device) -> None:
        import numpy as np

        self.folder = folder
        self.reason = f"cache {folder}"
        self.device = device
        self.logits = [
            np.load(folder / f"logits-{i}.npy", mmap_mode="r", allow_pickle=False)
            for i in range(teachers)
        ]
        self.features = {
            name: np.load(folder / f"layer-{name}.npy", mmap_mode="r", allow_pickle=False)
            for name in layers
        }

    def __len__(self) -> int:
        return len(self.logits[0])

    def get(self, index: torch.Tensor, x: torch.Tensor | None = None):
        import numpy as np
        import torch

        rows = index.cpu().numpy()

        def read(array) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array[rows])).to(self.device)

        return [read(a) for a in self.logits], {n: read(a) for n, a in self.features.items()}


def _files(teachers: int, layers: list[str]) -> list[str]:
    return [f"logits-{i}.npy" for i in range(teachers)] + [f"layer-{n}.npy" for n in layers]


def _build(folder: Path, runner: TeacherRunner, dataset, batch_size: int, workers: int) -> None:
    """Compute every output into a temporary sibling folder, then rename it into place."""
    import numpy as np

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent)
    )
    try:
        arrays: dict[str, Any] = {}
        start = 0
        total = len(dataset)
        for x, _ in iter_batches(dataset, batch_size, workers=workers or None):
            logits, features = runner(x)
            outputs = {f"logits-{i}.npy": t for i, t in enumerate(logits)}
            outputs.update({f"layer-{n}.npy": t for n, t in features.items()})
            for name, tensor in outputs.items():
                if name not in arrays:
                    arrays[name] = np.lib.format.open_memmap(
                        staging / name,
                        mode="w+",
                        dtype=np.float32,
                        shape=(total, *tensor.shape[1:]),
                    )
                arrays[name][start : start + len(tensor)] = tensor.float().cpu().numpy()
            start += len(x)
        for array in arrays.values():
            array.flush()
        del arrays
        for name in os.listdir(staging):
            with open(staging / name, "rb+") as handle:
                os.fsync(handle.fileno())
        atomic.write_json(staging / "meta.json", {"format": FORMAT, "samples": total})
        if folder.exists():  # a stale entry being replaced, or another process won the race
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _agrees(folder: Path, runner: TeacherRunner, dataset, layers: list[str]) -> str | None:
    """None when the entry is complete and its first samples match a fresh computation, else
    the reason it cannot be used."""
    import torch

    try:
        meta = json.loads((folder / "meta.json").read_text())
        cached = CachedOutputs(folder, len(runner.teachers), layers, torch.device("cpu"))
    except (OSError, ValueError, KeyError) as exc:
        return f"unreadable ({exc})"
    if (
        meta.get("format") != FORMAT
        or meta.get("samples") != len(dataset)
        or len(cached) != len(dataset)
    ):
        return "written for another data set size or format"
    x, _ = next(iter(iter_batches(dataset, CHECK_SAMPLES)))
    fresh_logits, fresh_features = runner(x)
    old_logits, old_features = cached.get(torch.arange(len(x)))
    pairs = list(zip(old_logits, fresh_logits, strict=True))
    pairs += [(old_features[n], fresh_features[n]) for n in layers]
    for old, new in pairs:
        new = new.float().cpu()
        if old.shape != new.shape or not torch.allclose(old, new, rtol=TOLERANCE, atol=TOLERANCE):
            return "its first samples differ from the teacher's outputs now"
    return None


def open_or_build(
    runner: TeacherRunner,
    dataset,
    key: str,
    *,
    batch_size: int = 256,
    workers: int = 0,
    context: DistContext | None = None,
    root: Path | None = None,
) -> CachedOutputs:
    """The cache entry `key` for this train split, built by rank 0 when missing or stale."""

    folder = (root or cache_dir() / "teacher-outputs") / key
    if ddp.is_main(context):
        problem = _agrees(folder, runner, dataset, runner.layers) if folder.exists() else "missing"
        if problem is not None:
            if problem != "missing":
                log.warning("teacher-output cache %s: %s; rebuilding it", folder, problem)
            log.info("computing teacher outputs once into %s", folder)
            _build(folder, runner, dataset, batch_size, workers)
        else:
            log.info("teacher outputs read from the cache %s", folder)
    ddp.barrier(context)
    return CachedOutputs(folder, len(runner.teachers), runner.layers, runner.device)


def estimated_bytes(runner: TeacherRunner, dataset) -> int:
    """float32 bytes of every cached output for the whole split, from one sample's outputs."""

    x, _ = next(iter(iter_batches(dataset, 1)))
    logits, features = runner(x)
    per_sample = sum(t.numel() for t in logits) + sum(t.numel() for t in features.values())
    return 4 * per_sample * len(dataset)


def is_deterministic(dataset) -> bool:
    """Whether the dataset returns the same tensor twice for a sample (no random transform)."""
    import torch

    if isinstance(dataset, Split):
        return True
    first, second = dataset[0][0], dataset[0][0]
    return torch.equal(torch.as_tensor(first), torch.as_tensor(second))


def choose_outputs(
    runner: TeacherRunner,
    dataset,
    data_identity: dict,
    *,
    random_augment: bool,
    use_cache: bool = True,
    workers: int = 0,
    context: DistContext | None = None,
):
    """The cache when the pipeline is deterministic, else online outputs with the reason."""

    if not use_cache:
        return OnlineOutputs(runner, "the cache is turned off (--no-cache)")
    if random_augment:
        return OnlineOutputs(
            runner, "train.augment is random, so the teacher runs on every augmented batch"
        )
    if not is_deterministic(dataset):
        return OnlineOutputs(
            runner, "the data set returns different inputs for the same sample (random transform)"
        )
    digests = [teacher_digest(teacher) for teacher in runner.teachers]
    if any(digest is None for digest in digests):
        return OnlineOutputs(runner, "a teacher's weights cannot be hashed for a cache key")
    root = cache_dir() / "teacher-outputs"
    root.mkdir(parents=True, exist_ok=True)
    needed = estimated_bytes(runner, dataset)
    free = shutil.disk_usage(root).free
    if needed > free // 2:
        return OnlineOutputs(
            runner, f"the outputs would take {needed / 1e9:.1f} GB of the {free / 1e9:.1f} GB free"
        )
    key = cache_key(digests, runner.layers, data_identity)  # type: ignore[arg-type]
    return open_or_build(runner, dataset, key, workers=workers, context=context, root=root)
