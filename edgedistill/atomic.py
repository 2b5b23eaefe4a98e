"""Write files and directories so that a reader never sees them half-written."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgedistill.errors import OutputWriteError


@contextmanager
def replacing(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path` for the block to write; when the block succeeds
    the file is fsynced and renamed over `path` (and the directory fsynced), otherwise it is
    removed. Readers see the old file or the whole new one, never part of one.

    A write that fails for want of room (disk full, file-size quota, read-only place) raises
    OutputWriteError naming `path`, with the temporary file removed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        failed = OutputWriteError.from_os_error(exc, path)
        if failed is None:
            raise
        raise failed from None
    os.close(fd)
    temporary = Path(tmp_name)
    try:
        yield temporary
        _fsync(temporary, os.O_RDONLY)
        os.replace(temporary, path)
        _fsync(path.parent, os.O_RDONLY)
    except OSError as exc:
        failed = OutputWriteError.from_os_error(exc, path)
        if failed is None:
            raise
        raise failed from None
    finally:
        temporary.unlink(missing_ok=True)


def remove_leftovers(folder: Path, suffix: str = ".tmp") -> list[Path]:
    """Remove the temporary files `replacing` left under `folder` when its process was killed
    in the middle of a write (`.NAME.XXXXXXXX.tmp`); the paths removed."""
    removed = []
    for path in sorted(folder.rglob(f".*{suffix}")):
        if path.is_file() and path.name.count(".") >= 3:
            path.unlink()
            removed.append(path)
    return removed


def _fsync(path: Path, flags: int) -> None:
    try:
        descriptor = os.open(path, flags)
    except OSError:  # platforms that cannot open a directory (Windows)
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through `replacing`: all of it appears, or nothing changes."""
    with replacing(path) as temporary:
        temporary.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, document: Any) -> None:
    write_text(path, json.dumps(document, indent=2) + "\n")


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; rename it to `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield staging
        if final.exists():
            final.rmdir()  # only an empty directory may be replaced; callers check up front
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
