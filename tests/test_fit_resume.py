"""`fit --resume`: a run killed with SIGKILL mid-distillation continues from its last epoch
checkpoint and ends with the same metrics as an uninterrupted run (CPU, fixed seed); a staged
run is never silently replaced, and a resumed run keeps its settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY_RECIPE, invoke, run_cli, tiny_fit_args

ARGS = ("fit", "--device", "host-cpu", "--budget", "0.06ms", "--task", str(TINY_RECIPE))


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _learned(out: Path) -> dict:
    summary = _summary(out)
    result = json.loads((out / "checkpoint" / "result.json").read_text())
    return {
        "spec": summary["student"]["spec"],
        "accuracy_fp32": summary["student"]["accuracy_fp32"],
        "accuracy": summary["student"]["accuracy"],
        "best_epoch": summary["student"]["best_epoch"],
        "epochs_run": summary["student"]["epochs_run"],
        "history": result["stages"][0]["history"],
    }


@pytest.fixture(scope="module")
def uninterrupted(tiny_fit):
    """(out, argv) of the session's shared fit, two epochs: the resumed run is killed after
    the first and resumed for the second with the same argv."""
    result, out, budget_ms = tiny_fit
    assert result.returncode in (0, 1), result.stderr
    return out, tiny_fit_args(budget_ms)


def _kill_after_first_epoch(out: Path, argv: tuple[str, ...]) -> None:
    """Start fit, SIGKILL it once its first epoch checkpoint is on disk."""
    state = out.parent / f".{out.name}.partial" / "checkpoint" / "stages" / "0-student"
    process = subprocess.Popen(
        [sys.executable, "-m", "edgedistill", *argv, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 600
    while not (state / "train-state.safetensors").is_file():
        assert process.poll() is None, "fit ended before its first epoch checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_fit_killed_mid_distillation_resumes_to_the_same_metrics(uninterrupted, tmp_path):
    reference, argv = uninterrupted
    out = tmp_path / "run"
    _kill_after_first_epoch(out, argv)
    assert not out.exists() and (tmp_path / ".run.partial" / "run.json").is_file()

    resumed = run_cli(*argv, "--out", str(out), "--resume", "--json")
    assert resumed.returncode in (0, 1), resumed.stderr
    assert not (tmp_path / ".run.partial").exists()
    assert json.loads((out / "checkpoint" / "result.json").read_text())["resumed"] is True
    assert _learned(out) == _learned(reference)


def test_a_staged_run_is_not_replaced_without_resume(tmp_path, host_calibration):
    (tmp_path / ".run.partial").mkdir()
    (tmp_path / ".run.partial" / "run.json").write_text('{"learning": {}}')
    result = invoke(*ARGS, "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--resume" in result.stderr and ".run.partial" in result.stderr


def test_resume_without_a_staged_run_is_refused(tmp_path):
    result = invoke(*ARGS, "--out", str(tmp_path / "run"), "--resume")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--resume" in result.stderr
    assert "no interrupted run" in result.stderr


def test_resume_with_a_changed_setting_is_refused_naming_it(tmp_path, host_calibration):
    staged = tmp_path / ".run.partial"
    staged.mkdir()
    learning = {"device": "host-cpu", "budget": "0.06ms", "task": str(TINY_RECIPE), "seed": 0}
    (staged / "run.json").write_text(json.dumps({"learning": learning}))
    result = invoke(*ARGS, "--seed", "3", "--out", str(tmp_path / "run"), "--resume")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--seed" in result.stderr and "0" in result.stderr
