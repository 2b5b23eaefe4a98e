"""Shared fixtures: isolated cache/data directories and a host calibration made once per session."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
TINY_RECIPE = TESTS / "data" / "tiny_digits.yaml"


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory):
    """Teachers and calibrations of the test session never touch the user's own directories."""
    root = tmp_path_factory.mktemp("edgedistill-home")
    saved = {k: os.environ.get(k) for k in ("EDGEDISTILL_CACHE_DIR", "EDGEDISTILL_DATA_DIR")}
    os.environ["EDGEDISTILL_CACHE_DIR"] = str(root / "cache")
    os.environ["EDGEDISTILL_DATA_DIR"] = str(root / "data")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def host_calibration(isolated_dirs):
    """Calibrate host-cpu once (12 measured candidates) so later fits reuse it."""
    from edgedistill.fit.calibrate import calibrate_on_host
    from edgedistill.profiles import load_profile
    from edgedistill.students import enumerate_space

    profile = load_profile("host-cpu")
    return calibrate_on_host(profile, enumerate_space((1, 32, 32)), (1, 32, 32), 10, samples=12)


# The end-to-end `fit` the suite keeps as a real process (tests/test_fit_end_to_end.py,
# tests/test_fit_resume.py): run once per session, its outputs read by both. Its budget is
# TINY_BUDGET_MS where this host's calibration predicts a student within it with room, else
# the fastest prediction with the search margin and 30 % room: a budget no candidate fits on a
# slower host would test the refusal instead of the run.
TINY_BUDGET_MS = 0.06


def tiny_fit_args(budget_ms: float) -> tuple[str, ...]:
    return (
        "fit", "--device", "host-cpu", "--budget", f"{budget_ms:g}ms", "--task", str(TINY_RECIPE),
        "--epochs", "2",
    )  # fmt: skip


def budget_with_room(
    calibration, wanted_ms: float, shape: tuple[int, ...] = (1, 32, 32), classes: int = 10
) -> float:
    """`wanted_ms` where `calibration` (of any precision: the search scores every candidate
    from its fp32 cost, as here) predicts a student (of digits by default) within it with
    room, else the fastest prediction over the space with the search margin and 30 % room."""
    from edgedistill.students import enumerate_space
    from edgedistill.students.select import candidate_cost

    fastest = min(
        calibration.predict(candidate_cost(c.spec, shape, classes)) for c in enumerate_space(shape)
    )
    needed = fastest / (1 - calibration.margin()) * 1.3
    return max(wanted_ms, round(needed, 3))


@pytest.fixture(scope="session")
def tiny_budget_ms(host_calibration) -> float:
    return budget_with_room(host_calibration, TINY_BUDGET_MS)


# The text tests' fits share one host calibration on text students of this recipe's input
# (32 token ids); a budget from it leaves their fastest students room on any host.
TINY_TEXT_RECIPE = TESTS / "data" / "tiny_fortunes.yaml"
TEXT_CLASSES = 4


@pytest.fixture(scope="session")
def text_budget_ms(isolated_dirs) -> float:
    """Calibrate this host on text students of the task's input (12 measured candidates, kept
    for the fit to reuse), and a budget that leaves the fastest students room on any host."""
    from edgedistill.fit.calibrate import calibrate_on_host
    from edgedistill.profiles import load_profile
    from edgedistill.students import enumerate_space
    from edgedistill.students.select import candidate_cost
    from edgedistill.tasks.task import load_task

    data = load_task(str(TINY_TEXT_RECIPE)).data
    space = enumerate_space(data.input_shape, vocabulary=data.vocabulary)
    profile = load_profile("host-cpu")
    model = calibrate_on_host(profile, space, data.input_shape, TEXT_CLASSES, samples=12)
    shape = data.input_shape
    fastest = min(model.predict(candidate_cost(c.spec, shape, TEXT_CLASSES)) for c in space)
    return round(fastest / (1 - model.margin()) * 1.3, 3)


@pytest.fixture(scope="session")
def tiny_fit(tmp_path_factory, tiny_budget_ms):
    """(result, out, budget_ms) of `edgedistill fit ... --out OUT --json`, in a real process."""
    out = tmp_path_factory.mktemp("fit") / "run"
    return run_cli(*tiny_fit_args(tiny_budget_ms), "--out", str(out), "--json"), out, tiny_budget_ms


def run_cli(*args: str, env: dict | None = None):
    """Run `python -m edgedistill ARGS` as a user would; stdout and stderr kept apart."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "edgedistill", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
    )


@dataclass
class Invoked:
    """What `invoke` saw: the same three fields as a finished subprocess, kept apart."""

    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str, env: dict | None = None) -> Invoked:
    """Run the CLI in this process: for argument parsing and refusals, without the seconds a
    new interpreter spends importing torch. Use `run_cli` where the test is about what a real
    process shows (an end-to-end run, --help speed, signals).

    An exception that escapes the CLI is appended to stderr as the traceback a real process
    would print, so `"Traceback" not in result.stderr` checks the same thing either way.
    Root logging handlers (the CLI replaces them), sys.path and os.environ are restored
    afterwards."""
    import logging
    import traceback

    from typer.testing import CliRunner

    from edgedistill.cli import app

    root = logging.getLogger()
    saved_handlers, saved_level, saved_path = root.handlers[:], root.level, sys.path[:]
    try:
        result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=True)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        sys.path[:] = saved_path  # a user's teacher file puts its folder there
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return Invoked(result.exit_code, result.stdout, stderr)
