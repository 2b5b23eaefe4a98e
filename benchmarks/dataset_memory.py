"""Memory of a large image folder: 100k small PNGs loaded lazily and decoded by worker processes.

Writes N images (default 100,000 RGB 32x32 PNGs, 10 classes) to a temporary folder, loads
them with `imagefolder:` as `fit` does, then decodes the whole train split once through
`iter_batches` with --workers processes. Prints the time of each step and the memory: RSS of
this process (before and after loading, peak) and the proportional set size (PSS: shared pages
split between the processes that share them) of this process plus its workers, sampled while
decoding. Run by hand:

    .venv/bin/python benchmarks/dataset_memory.py --images 100000 --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path


def kib(field: str, path: str) -> int:
    """A kB figure from a /proc file (0 when the process has gone)."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def tree_pss_mib() -> float:
    pids = [os.getpid(), *children(os.getpid())]
    return sum(kib("Pss:", f"/proc/{pid}/smaps_rollup") for pid in pids) / 1024


def rss_mib() -> float:
    return kib("VmRSS:", "/proc/self/status") / 1024


def write_images(root: Path, count: int, size: int, classes: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(count):
        label = index % classes
        folder = root / f"class_{label:02d}"
        if index < classes:
            folder.mkdir(parents=True)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        pixels[:, : (label + 1) * size // (classes + 1)] //= 4
        Image.fromarray(pixels).save(folder / f"{index:06d}.png", compress_level=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folder", type=Path, help="reuse (or keep) the images here")
    args = parser.parse_args()

    import torch

    from edgedistill.tasks.data import iter_batches
    from edgedistill.tasks.task import load_task

    cpu = platform.processor() or platform.machine()
    print(f"host: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}")
    folder = args.folder or Path(tempfile.mkdtemp(prefix="edgedistill-memory-"))
    try:
        if not any(folder.glob("class_*")):
            started = time.perf_counter()
            write_images(folder, args.images, args.size, args.classes)
            print(f"wrote {args.images:,} PNGs in {time.perf_counter() - started:.1f} s")
        baseline = rss_mib()
        started = time.perf_counter()
        task = load_task(data=f"imagefolder:{folder}", workers=args.workers)
        loaded = time.perf_counter() - started
        split = task.data.split
        print(
            f"load (scan headers, split, statistics): {loaded:.1f} s; in memory: "
            f"{split['in_memory']} (decoded size would be {split['decoded_mb']:,.0f} MB); "
            f"sizes {split['sizes']}"
        )
        after_load = rss_mib()

        peak = [tree_pss_mib()]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                peak.append(tree_pss_mib())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        seen = 0
        for x, _ in iter_batches(task.data.train, batch_size=256):
            seen += len(x)
        decoded = time.perf_counter() - started
        done.set()
        sampler.join()
        print(
            f"decoded the train split ({seen:,} images) with {args.workers} workers in "
            f"{decoded:.1f} s ({seen / decoded:,.0f} images/s)"
        )
        print(f"RSS before loading (python + torch): {baseline:,.0f} MiB")
        print(f"RSS after loading: {after_load:,.0f} MiB (+{after_load - baseline:,.0f} MiB)")
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak_rss:,.0f} MiB")
        print(f"peak PSS of this process + workers while decoding: {max(peak):,.0f} MiB")
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
