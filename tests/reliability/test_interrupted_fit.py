"""Interrupted fits lose nothing: `kill -9` at seeded random points of every stage, a kill in the
middle of a checkpoint write, and Ctrl-C, each followed by `fit --resume`, which must end with
the metrics of an uninterrupted run (CPU, fixed seed) and lose at most the epoch in flight."""

from __future__ import annotations

import os
import random
import re
import shlex
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli, tiny_fit_args
from tests.reliability.fit_process import (
    STATE,
    FitProcess,
    checkpointed_epoch,
    learned,
    stage_reached,
    staging_of,
)
from tests.reliability.record import Tally

# Where a kill is aimed: wait for the marker in the staging folder, then a random delay in
# [0, longest) seconds. The stage really hit is read from the staging folder afterwards.
AIMS = {
    "search": (Path("run.json"), 1.0),
    "distill": (STATE, 1.5),
    "export": (Path("checkpoint") / "result.json", 1.5),
    "bundle": (Path("bundle") / "model.fp32.onnx", 3.0),
}
EPOCH_DONE = re.compile(r"(\S+) epoch (\d+) loss")
RESUMED_AT = re.compile(r"(\S+): resuming after epoch (\d+), step (\d+)")


@pytest.fixture(scope="module")
def reference(tiny_fit):
    """(what the uninterrupted run learned, the argv that made it): the session's shared fit."""
    result, out, budget_ms = tiny_fit
    assert result.returncode in (0, 1), result.stderr
    return learned(out), tiny_fit_args(budget_ms)


def _lost_epochs(killed_log: str, resumed_log: str) -> int:
    """Epochs the killed run reported finished that the resumed run trained again."""
    reported: dict[str, int] = {}
    for stage, epoch in EPOCH_DONE.findall(killed_log):
        reported[stage] = max(reported.get(stage, 0), int(epoch))
    lost = 0
    for stage, epochs in reported.items():
        resumed_at = [int(e) for s, e, _ in RESUMED_AT.findall(resumed_log) if s == stage]
        already = f"stage {stage}: already trained" in resumed_log
        start = epochs if already else max(resumed_at, default=0)
        lost = max(lost, epochs - start)
    return lost


def _resume(argv: tuple[str, ...], out: Path):
    return run_cli(*argv, "--out", str(out), "--resume", "--verbose", env={"COLUMNS": "400"})


def _judge_resumed(tally: Tally, case: str, resumed, out: Path, expected: dict) -> bool:
    """Record the resumed run's outcome: completed, unstaged, the same metrics."""
    if resumed.returncode not in (0, 1) or "Traceback" in resumed.stderr:
        tally.broke(case, f"resume exit {resumed.returncode}: {resumed.stderr[-600:]}")
        return False
    if staging_of(out).exists() or not (out / "summary.json").is_file():
        tally.broke(case, "the resumed run did not end in place")
        return False
    got = learned(out)
    if got != expected:
        differs = sorted(key for key in expected if got.get(key) != expected[key])
        tally.broke(case, f"metrics differ from the uninterrupted run: {differs}")
        return False
    leftovers = [str(p.relative_to(out)) for p in out.rglob("*") if p.name.endswith(".tmp")]
    if leftovers:
        tally.broke(case, f"half-written files shipped in the run: {leftovers}")
        return False
    return True


def _kill_at_random_points(seeds: range, reference, tmp_path: Path, request) -> None:
    expected, argv = reference
    tally = Tally(
        guarantee="A fit killed with SIGKILL at any point resumes with `fit --resume` to "
        "completion, with the metrics of an uninterrupted run, losing at most the epoch in flight.",
        how="Real fit processes on the tiny digits recipe killed at a seeded random delay after "
        "reaching search, distillation, export or bundling; the resumed run's accuracy, history "
        "and artifacts compared exactly with an uninterrupted run's, lost epochs read from logs.",
        area="interrupted",
    )
    stages = list(AIMS)
    for seed in seeds:
        rng = random.Random(seed)
        aim = stages[seed % len(stages)]
        marker, longest = AIMS[aim]
        out = tmp_path / f"kill{seed}"
        staging = staging_of(out)
        fit = FitProcess((*argv, "--out", str(out), "--verbose"))
        reached = fit.wait_for(staging / marker)
        time.sleep(rng.uniform(0, longest))
        if not reached or not fit.running():
            fit.finish()
            continue  # ended before the kill: nothing was interrupted
        fit.signal_group(signal.SIGKILL)
        _, killed_log = fit.finish()
        hit = stage_reached(staging)
        case = f"seed {seed} aimed at {aim}, killed in {hit}"
        resumed = _resume(argv, out)
        if not _judge_resumed(tally, case, resumed, out, expected):
            continue
        lost = _lost_epochs(killed_log, resumed.stderr)
        if lost > 0:
            tally.broke(case, f"{lost} finished epoch(s) trained again after the resume")
        else:
            tally.held(case)
    tally.report(request.node.nodeid)


def test_fit_killed_at_random_points_resumes_to_the_same_metrics(reference, tmp_path, request):
    _kill_at_random_points(range(2), reference, tmp_path, request)


@pytest.mark.slow
def test_fit_killed_at_many_random_points_resumes_to_the_same_metrics(reference, tmp_path, request):
    _kill_at_random_points(range(12), reference, tmp_path, request)


def _kill_mid_checkpoint_write(fit: FitProcess, folder: Path) -> Path | None:
    """Busy-poll `folder` for the checkpoint's temporary file; when it appears, freeze the
    process (SIGSTOP), and if the file is still there, SIGKILL it mid-write. The temporary
    file seen, or None when the run ended without one being caught."""
    prefix = f".{STATE.name}."
    while fit.running():
        try:
            names = [entry.name for entry in os.scandir(folder)]
        except FileNotFoundError:
            names = []
        partial = [name for name in names if name.startswith(prefix) and name.endswith(".tmp")]
        if not partial:
            continue
        fit.signal_group(signal.SIGSTOP)
        if (folder / partial[0]).exists():
            fit.signal_group(signal.SIGKILL)
            fit.finish()
            return folder / partial[0]
        fit.signal_group(signal.SIGCONT)
    return None


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint_loadable(
    reference, tmp_path, request
):
    from safetensors.torch import load_file

    expected, argv = reference
    tally = Tally(
        guarantee="A fit killed while it writes a checkpoint keeps the previous checkpoint "
        "loadable, and `fit --resume` completes from it with an uninterrupted run's metrics.",
        how="A real fit frozen (SIGSTOP) the moment its checkpoint's temporary file appears and "
        "killed with SIGKILL while the file exists; the checkpoint loaded, then the run resumed "
        "and its metrics compared exactly with an uninterrupted run's.",
        area="interrupted",
    )
    for attempt in range(3):  # the second epoch's write (the first has no previous one)
        out = tmp_path / f"write{attempt}"
        staging = staging_of(out)
        fit = FitProcess((*argv, "--out", str(out)))
        if not fit.wait_for(staging / STATE):
            fit.finish()
            continue
        partial = _kill_mid_checkpoint_write(fit, (staging / STATE).parent)
        if partial is None:
            fit.finish()
            continue
        case = f"killed writing {partial.name} after epoch {checkpointed_epoch(staging)}"
        try:
            tensors = load_file(str(staging / STATE))
            assert tensors and checkpointed_epoch(staging) >= 1
        except Exception as exc:  # any failure to load is what this case looks for
            tally.broke(case, f"the previous checkpoint does not load: {exc}")
            continue
        if _judge_resumed(tally, case, _resume(argv, out), out, expected):
            tally.held(case)
        break
    tally.report(request.node.nodeid)


def _resume_command(stderr: str) -> list[str] | None:
    match = re.search(r"^resume: (edgedistill fit .*)$", stderr, re.MULTILINE)
    if match is None:
        return None
    command = shlex.split(match.group(1))
    return [sys.executable, "-m", "edgedistill", *command[1:]]


@pytest.mark.parametrize("aim", ["distill", pytest.param("export", marks=pytest.mark.slow)])
def test_ctrl_c_stops_cleanly_and_prints_the_resume_command(aim, reference, tmp_path, request):
    import subprocess

    expected, argv = reference
    tally = Tally(
        guarantee="Ctrl-C stops a fit promptly with exit code 130, no traceback, the run kept "
        "staged and the exact command that resumes it printed; that command completes the run.",
        how="SIGINT sent to a real fit's process group during distillation or export; the "
        "printed resume command run as given, its metrics compared with an uninterrupted run's.",
        area="interrupted",
    )
    out = tmp_path / "run"
    staging = staging_of(out)
    marker = STATE if aim == "distill" else AIMS["export"][0]
    fit = FitProcess((*argv, "--out", str(out)))
    assert fit.wait_for(staging / marker), "fit ended before the point"
    fit.signal_group(signal.SIGINT)
    sent = time.monotonic()
    returncode, stderr = fit.finish()
    took = time.monotonic() - sent
    case = f"Ctrl-C during {aim}"
    command = _resume_command(stderr)
    if returncode != 130 or "Traceback" in stderr:
        tally.broke(case, f"exit {returncode}: {stderr[-600:]}")
    elif command is None or "--resume" not in command:
        tally.broke(case, f"no resume command printed: {stderr[-600:]}")
    elif out.exists() or not staging.is_dir():
        tally.broke(case, "the stopped run was not kept staged")
    elif took > 30:
        tally.broke(case, f"stopping took {took:.0f} s")
    else:
        resumed = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if _judge_resumed(tally, case, resumed, out, expected):
            tally.held(case)
    tally.report(request.node.nodeid)


def test_a_fit_whose_terminal_goes_away_finishes_its_run(reference, tmp_path, request):
    import subprocess

    expected, argv = reference
    tally = Tally(
        guarantee="A fit whose terminal goes away (a dropped ssh session, a dead `| tee`) keeps "
        "running and finishes its run as an uninterrupted one would; only its output is lost.",
        how="A real fit's stdout and stderr pipes closed by their reader during distillation; "
        "its exit code, the finished run in place and its metrics compared with an "
        "uninterrupted run's.",
        area="interrupted",
    )
    out = tmp_path / "run"
    fit = subprocess.Popen(
        [sys.executable, "-m", "edgedistill", *argv, "--out", str(out), "--verbose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    marker = staging_of(out) / STATE
    while not marker.exists() and fit.poll() is None:
        assert fit.stderr is not None
        fit.stderr.readline()  # keep the pipe drained until training is under way
    assert fit.stdout is not None and fit.stderr is not None
    fit.stdout.close()
    fit.stderr.close()
    returncode = fit.wait(timeout=900)
    case = "stdout and stderr readers gone during distillation"
    if returncode not in (0, 1):
        tally.broke(case, f"exit {returncode}")
    elif staging_of(out).exists() or not (out / "summary.json").is_file():
        tally.broke(case, "the run did not end in place")
    elif learned(out) != expected:
        tally.broke(case, "metrics differ from the uninterrupted run")
    else:
        tally.held(case)
    tally.report(request.node.nodeid)
