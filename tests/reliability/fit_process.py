"""A real `fit` process the reliability tests can watch, kill, interrupt and starve of disk:
its stderr read line by line as it comes, its staging folder read to tell which stage it is in,
and what the finished run learned, to compare with an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

STATE = Path("checkpoint") / "stages" / "0-student" / "train-state.safetensors"

# Where a fit is, judged from its staging folder: the first stage whose marker is missing.
# (stage, marker the stage leaves when it is done)
STAGE_MARKERS = (
    ("search", Path("search.json")),
    ("distill", Path("checkpoint") / "result.json"),
    ("export", Path("bundle") / "model.fp32.onnx"),
    ("bundle", Path("bundle") / "manifest.json"),
)


def staging_of(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def stage_reached(staging: Path) -> str:
    """The stage the run in `staging` was in: the first whose marker is not written yet."""
    for stage, marker in STAGE_MARKERS:
        if not (staging / marker).exists():
            return stage
    return "report"


def checkpointed_epoch(staging: Path) -> int:
    """Epochs the student's train-state checkpoint in `staging` records (0: none yet)."""
    from safetensors import safe_open

    path = staging / STATE
    if not path.is_file():
        return 0
    with safe_open(str(path), "pt") as handle:
        return json.loads(handle.metadata()["edgedistill"])["epoch"]


def learned(out: Path) -> dict:
    """What a finished run learned and shipped: equal between an uninterrupted run and a
    resumed one on CPU with a fixed seed."""
    summary = json.loads((out / "summary.json").read_text())
    result = json.loads((out / "checkpoint" / "result.json").read_text())
    student = summary["student"]
    return {
        "spec": student["spec"],
        "accuracy_fp32": student["accuracy_fp32"],
        "accuracy": student["accuracy"],
        "best_epoch": student["best_epoch"],
        "epochs_run": student["epochs_run"],
        "history": [stage["history"] for stage in result["stages"]],
        "artifacts": [(a["format"], a["precision"], a["path"]) for a in summary["artifacts"]],
    }


class FitProcess:
    """`python -m edgedistill ARGV` in its own process group, stderr collected as it comes."""

    def __init__(self, argv: tuple[str, ...], preexec: Callable[[], None] | None = None) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edgedistill", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "400"},  # log lines unwrapped
            start_new_session=True,
            preexec_fn=preexec,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_for(self, path: Path, timeout_s: float = 600) -> bool:
        """Poll every 10 ms until `path` exists; False when the process ended first."""
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            if not self.running():
                return False
            assert time.monotonic() < deadline, f"fit took too long to write {path}"
            time.sleep(0.01)
        return True

    def signal_group(self, signum: int) -> None:
        os.killpg(self.pid, signum)

    def finish(self, timeout_s: float = 600) -> tuple[int, str]:
        """(exit code, stderr) once the process has ended."""
        returncode = self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=10)
        return returncode, "".join(self.lines)

    def kill(self) -> None:
        if self.running():
            self.signal_group(signal.SIGKILL)
        self.finish()
