"""The run directory of `fit`: assembled under a stable staging name beside --out, so that an
interrupted run (Ctrl-C, a crash, kill -9) can be continued with `--resume`, and renamed into
place only when the whole run has succeeded.

`.NAME.partial/run.json` records the options the run was started with; a resumed run must
keep every setting that changes what is learned or measured.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from edgedistill import atomic
from edgedistill.errors import OutputWriteError, UserInputError
from edgedistill.paths import check_new_out

log = logging.getLogger(__name__)

RUN_FILE = "run.json"


def staging_for(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def check_out(out: Path, resume: bool) -> None:
    """Refuse an unusable --out now (before any training)."""
    check_new_out(out)
    staging = staging_for(out)
    if resume and not (staging / RUN_FILE).is_file():
        raise UserInputError(
            f"--resume: no interrupted run of --out {out} to continue ({staging} holds no "
            f"{RUN_FILE}); start it without --resume"
        )
    if not resume and staging.exists():
        raise UserInputError(
            f"--out {out}: an interrupted run is staged in {staging}; add --resume to continue "
            "it, or delete that folder to start afresh"
        )
    blocking = next((parent for parent in out.parents if parent.is_file()), None)
    if blocking is not None:
        raise UserInputError(f"--out {out}: {blocking} is a file, not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        Path(tempfile.mkdtemp(prefix=".edgedistill-probe-", dir=out.parent)).rmdir()
    except OSError as exc:
        raise UserInputError(f"--out {out}: cannot write there ({exc.strerror})") from None


def open_staging(out: Path, learning: dict[str, Any], resume: bool) -> Path:
    """The staging folder, created (fresh run) or checked against `learning` (--resume)."""
    staging = staging_for(out)
    if not resume:
        try:
            staging.mkdir()
        except OSError as exc:
            raise UserInputError(f"--out {out}: cannot create {staging} ({exc})") from None
        atomic.write_json(staging / RUN_FILE, {"learning": learning})
        return staging
    stored = json.loads((staging / RUN_FILE).read_text())["learning"]
    for name, value in learning.items():
        if stored.get(name) != value:
            raise UserInputError(
                f"--{name.replace('_', '-')}: the run staged in {staging} was started with "
                f"{stored.get(name)!r}, not {value!r}; resume it with the same settings"
            )
    for leftover in atomic.remove_leftovers(staging):  # a write the interruption cut short
        log.info("removed %s, a file the interrupted run was writing", leftover)
    return staging


def finish(staging: Path, out: Path) -> None:
    """Rename the assembled run into place (--out was checked empty when the run started; if
    something took its place since, the run stays staged and the error names --out)."""
    try:
        if out.exists() and out.is_dir():
            out.rmdir()
        staging.rename(out)
    except OSError as exc:
        raise OutputWriteError(
            f"--out {out}", f"it was taken while the run went on ({exc.strerror})"
        ) from None


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
