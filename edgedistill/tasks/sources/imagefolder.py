"""`imagefolder:DIR`: one sub-folder of images per class, decoded with Pillow when asked for.

Layouts: `DIR/CLASS/*.png` (split here, seeded and stratified), or `DIR/train/CLASS/...` with
`val/` and `test/` beside it (missing ones are split off train). Images in an `unlabeled/`
folder (at the top or in train/) are unlabeled training data for the soft-target loss.
Every image's header is read up front, so a broken file, a 16-bit image or a size mismatch is
reported with its name before any training; pixels are decoded only when a batch needs them.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.tasks.sources._registry import DATA_SOURCES, SourceContext
from edgedistill.tasks.table import TEST, TRAIN, VAL, ImageFacts, SampleTable

if TYPE_CHECKING:
    import numpy as np

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
SPLIT_FOLDERS = {"train": TRAIN, "val": VAL, "valid": VAL, "validation": VAL, "test": TEST}
UNLABELED_FOLDER = "unlabeled"
# Pillow modes by the channels they hold; these convert to 8-bit gray or RGB without surprise.
GRAY_MODES = frozenset({"1", "L", "LA", "La"})
COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"})
PIL_MODE = {"gray": "L", "rgb": "RGB", "bgr": "RGB"}


@dataclass
class _Entry:
    path: str  # relative to the root, with "/" separators
    label: str | None  # class folder name, None when unlabeled
    split: int  # TRAIN / VAL / TEST, or -1 when the layout gives no split


@dataclass
class ImageFiles:
    """Reads image i: Pillow decode, converted to the task's mode (and BGR order if asked)."""

    root: str
    paths: np.ndarray  # bytes, relative paths (compact: no Python str per file)
    mode: str  # "L" or "RGB"
    bgr: bool

    def __call__(self, index: int):
        import numpy as np
        from PIL import Image

        path = os.path.join(self.root, os.fsdecode(self.paths[index]))
        try:
            with Image.open(path) as image:
                array = np.asarray(image if image.mode == self.mode else image.convert(self.mode))
        except (OSError, ValueError) as exc:
            raise UserInputError(f"{path}: cannot decode this image ({exc})") from None
        return array[:, :, ::-1] if self.bgr else array


def _folders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path, root: Path) -> tuple[list[str], int]:
    """Image files under `folder` (recursively, sorted) as root-relative paths; skipped count."""
    found, skipped = [], 0
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                found.append(Path(current, name).relative_to(root).as_posix())
            else:
                skipped += 1
    return found, skipped


def _walk_layout(root: Path, what: str) -> tuple[list[_Entry], int, bool]:
    """Every image with its class and split; the count of skipped files; whether split."""
    folders = _folders(root)
    split_folders = [f for f in folders if f.name.lower() in SPLIT_FOLDERS]
    entries: list[_Entry] = []
    skipped = 0

    def add_class_folders(parent: Path, split: int) -> None:
        nonlocal skipped
        for folder in _folders(parent):
            label = None if folder.name == UNLABELED_FOLDER else folder.name
            if label is None and split not in (TRAIN, -1):
                raise UserInputError(
                    f"{what}: {folder}: unlabeled images belong in training data only"
                )
            files, extra = _images(folder, root)
            skipped += extra
            entries.extend(_Entry(path, label, TRAIN if label is None else split) for path in files)

    if split_folders:
        others = [f.name for f in folders if f not in split_folders and f.name != UNLABELED_FOLDER]
        if others:
            raise UserInputError(
                f"{what}: {root} mixes split folders ({', '.join(f.name for f in split_folders)}) "
                f"with other folders ({', '.join(others)}); put the class folders inside "
                "train/ (and val/, test/)"
            )
        for folder in split_folders:
            add_class_folders(folder, SPLIT_FOLDERS[folder.name.lower()])
        if (root / UNLABELED_FOLDER).is_dir():
            files, extra = _images(root / UNLABELED_FOLDER, root)
            skipped += extra
            entries.extend(_Entry(path, None, TRAIN) for path in files)
    else:
        add_class_folders(root, -1)
    return entries, skipped, bool(split_folders)


def _headers(root: Path, entries: list[_Entry], what: str):
    """Mode and size of every image (header only), and the digest of the file list."""
    from PIL import Image, UnidentifiedImageError

    modes, sizes = [], []
    digest = hashlib.sha256()
    for entry in entries:
        path = root / entry.path
        try:
            stat = path.stat()
            with Image.open(path) as image:
                modes.append(image.mode)
                sizes.append(image.size)  # (width, height)
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise UserInputError(f"{what}: {path}: not a readable image ({exc})") from None
        digest.update(f"{entry.path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return modes, sizes, digest.hexdigest()


def _channel_order(modes: list[str], entries, root: Path, context: SourceContext) -> str:
    for mode, entry in zip(modes, entries, strict=True):
        if mode not in GRAY_MODES and mode not in COLOUR_MODES:
            raise UserInputError(
                f"{context.what}: {root / entry.path}: Pillow mode {mode} (16-bit, 32-bit or "
                "float pixels) is not converted silently; save it as 8-bit gray or RGB"
            )
    if context.channel_order in PIL_MODE:
        return context.channel_order
    colour = sum(mode in COLOUR_MODES for mode in modes)
    return "rgb" if colour * 2 >= len(modes) else "gray"


def _common_size(sizes, entries, root: Path, context: SourceContext, notes: list[str]):
    """(H, W) shared by every image, or None when they differ and the recipe gives a size."""
    counts = Counter(sizes)
    (width, height), _ = counts.most_common(1)[0]
    if len(counts) == 1:
        return height, width
    odd = next(e for e, size in zip(entries, sizes, strict=True) if size != (width, height))
    odd_size = sizes[entries.index(odd)]
    if context.size is None:
        raise UserInputError(
            f"{context.what}: images differ in size: most are {width}x{height} (WxH) but "
            f"{root / odd.path} is {odd_size[0]}x{odd_size[1]}; give a task recipe with "
            "preprocessing.resize (or input height/width) to resize every image to one size"
        )
    others = len(sizes) - counts[(width, height)]
    notes.append(
        f"images differ in size ({len(counts)} sizes; e.g. {odd.path} is "
        f"{odd_size[0]}x{odd_size[1]}): each is resized to {context.size[1]}x{context.size[0]}"
        f" ({others} not {width}x{height})"
    )
    return None


@DATA_SOURCES.register("imagefolder")
def imagefolder_source(argument: str, context: SourceContext) -> SampleTable:
    import numpy as np

    root = context.path(argument)
    if not root.is_dir():
        raise UserInputError(f"{context.what}: imagefolder:{argument}: no such folder {root}")
    entries, skipped, has_split = _walk_layout(root, context.what)
    if not entries:
        raise UserInputError(
            f"{context.what}: no images under {root} (looked for "
            f"{', '.join(sorted(IMAGE_SUFFIXES))} in one sub-folder per class)"
        )
    notes: list[str] = []
    if skipped:
        notes.append(f"{skipped} files under {root} are not images and were skipped")
    modes, sizes, identity = _headers(root, entries, context.what)
    order = _channel_order(modes, entries, root, context)
    target = PIL_MODE[order]
    converted = [(e, m) for e, m in zip(entries, modes, strict=True) if m != target]
    if converted:
        example, mode = converted[0]
        notes.append(
            f"{len(converted)} images converted to {target} (e.g. {example.path} is {mode}; "
            "transparency is dropped)"
        )
    size = _common_size(sizes, entries, root, context, notes)
    class_names = sorted({e.label for e in entries if e.label is not None})
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.array([-1 if e.label is None else index[e.label] for e in entries], np.int64)
    assignment = np.array([e.split for e in entries], np.int8) if has_split else None
    files = ImageFiles(
        str(root),
        np.array([os.fsencode(e.path) for e in entries], dtype=bytes),
        target,
        order == "bgr",
    )
    return SampleTable(
        source=f"imagefolder:{root}",
        labels=labels,
        read=files,
        identity=f"imagefolder:{identity}",
        facts=ImageFacts(
            channels=1 if target == "L" else 3,
            height=size[0] if size else None,
            width=size[1] if size else None,
            kind="uint8",
            channel_order=order,
        ),
        assignment=assignment,
        class_names=class_names,
        notes=notes,
    )
