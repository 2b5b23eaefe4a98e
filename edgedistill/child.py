"""Run a job on an untrusted file in a child process with a time limit, so a runtime that
crashes (segfault, abort) or hangs on a damaged model ends as a record, never as a crash or a
hang of the toolkit.

The child is `python -m MODULE ARGS... RESULT`: an entry point of the package that writes one
JSON document to RESULT (a path in a fresh temporary folder). Nothing is pickled across.
`$EDGEDISTILL_MODEL_TIMEOUT_S` sets the limit (seconds) where a caller takes the default.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgedistill.errors import UserInputError

TIMEOUT_ENV = "EDGEDISTILL_MODEL_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 300.0
_STDERR_TAIL = 300  # characters of the child's stderr kept in a failure's words


@dataclass
class ChildOutcome:
    """What the child did: `result` (its JSON document) when it finished, else `failure` in
    words ("crashed with signal 11 (SIGSEGV)", "timed out after 60 s", "exited with code 1")."""

    result: dict[str, Any] | None
    failure: str | None = None
    stderr_tail: str = ""


def model_timeout_s() -> float:
    """The time limit of one child job: $EDGEDISTILL_MODEL_TIMEOUT_S, else 300 s."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UserInputError(f"${TIMEOUT_ENV}={text!r}: give a positive number of seconds")
    return value


def run_child(module: str, args: list[str], timeout_s: float, folder: Path) -> ChildOutcome:
    """Run `python -m module *args RESULT` (RESULT = folder/result.json) for at most
    `timeout_s` seconds; a child still running then is killed with its process group."""
    result_path = folder / "result.json"
    argv = [sys.executable, "-m", module, *args, str(result_path)]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return ChildOutcome(None, f"timed out after {timeout_s:g} s (killed)")
        except BaseException:  # Ctrl-C in the parent: leave no child behind
            _kill_group(process)
            raise
        stderr.seek(0)
        tail = stderr.read()[-4096:].decode("utf-8", "replace").strip()
    if code < 0:
        return ChildOutcome(None, f"crashed with signal {-code} ({_signal_name(-code)})", tail)
    result = _read_result(result_path)
    if code != 0 or result is None:
        last = tail.splitlines()[-1][-_STDERR_TAIL:] if tail else "no message"
        return ChildOutcome(None, f"exited with code {code} ({last})", tail)
    return ChildOutcome(result, None, tail)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def write_result(path: str, document: dict[str, Any]) -> None:
    """The child's side: write its one JSON document (temp name, then rename)."""
    temporary = Path(path).with_name(".result.json.tmp")
    temporary.write_text(json.dumps(document), encoding="utf-8")
    os.replace(temporary, path)
