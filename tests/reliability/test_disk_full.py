"""A full disk or an unwritable output never leaves a half-written run: `fit` starved of room
during training, export or bundling ends with a clean error naming the file it could not
write, nothing at --out, the run kept staged for `--resume`, and an earlier run untouched.

A full disk is a per-process file-size quota (RLIMIT_FSIZE, SIGXFSZ ignored, so writes past it
fail with EFBIG as on a full disk) set on the running fit with prlimit when it reaches the
stage: the suite runs as root and may not mount a small tmpfs."""

from __future__ import annotations

import hashlib
import re
import resource
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgedistill import atomic
from edgedistill.errors import OutputWriteError
from tests.conftest import invoke, run_cli, tiny_fit_args
from tests.reliability.fit_process import STATE, FitProcess, learned, staging_of
from tests.reliability.record import Tally

# Stage -> the file whose appearance says the stage has started.
STARTED = {
    "training": STATE,  # the second epoch's checkpoint is the next big write
    "export": Path("checkpoint") / "result.json",
    "bundling": Path("bundle") / "validation.npz",
}
NAMED = re.compile(r"cannot write (\S+?):")


def _ignore_sigxfsz() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def previous(tiny_fit, tmp_path_factory):
    """(a completed run beside the new ones, its files' sha256, what it learned, fit argv)."""
    result, out, budget_ms = tiny_fit
    assert result.returncode in (0, 1), result.stderr
    parent = tmp_path_factory.mktemp("runs")
    completed = parent / "previous"
    shutil.copytree(out, completed)
    return completed, _digests(completed), learned(out), tiny_fit_args(budget_ms)


def _judge_clean_failure(
    tally: Tally, case: str, returncode: int, stderr: str, out: Path, previous
) -> bool:
    completed, digests, _, _ = previous
    named = NAMED.search(stderr)
    if returncode != 2 or "Traceback" in stderr:
        tally.broke(case, f"exit {returncode}: {stderr[-600:]}")
    elif named is None:
        tally.broke(case, f"the error names no file: {stderr[-400:]}")
    elif out.exists():
        tally.broke(case, f"something was left at --out {out}")
    elif any(p.name.endswith(".tmp") for p in staging_of(out).rglob("*")):
        tally.broke(case, "half-written temporary files were left in the staged run")
    elif _digests(completed) != digests:
        tally.broke(case, "the earlier completed run changed")
    else:
        return True
    return False


def _fill_the_disk(limits: tuple[int, ...], previous, tmp_path: Path, request) -> None:
    """Per limit, one run starved of room in each stage in turn: the fresh fit once training
    has checkpointed, then `--resume` once distillation is done (export), then `--resume` once
    the artifacts are validated (bundling); finally `--resume` with room completes it."""
    completed, digests, expected, argv = previous
    tally = Tally(
        guarantee="A fit that runs out of disk during training, export or bundling exits 2 with "
        "a message naming the file it could not write, leaves nothing at --out, keeps the run "
        "staged, and `--resume` with room completes it with an uninterrupted run's metrics; "
        "earlier runs stay untouched.",
        how="Real fit processes given a file-size quota (RLIMIT_FSIZE via prlimit, writes fail "
        "with EFBIG like a full disk) once they reach each stage in turn; exit code, message, "
        "--out, the staged folder and an earlier run's sha256 checked, then the run resumed.",
        area="disk",
    )
    for limit in limits:
        out = tmp_path / f"run-{limit}"
        staging = staging_of(out)
        resume: tuple[str, ...] = ()
        for stage, started in STARTED.items():
            fit = FitProcess((*argv, "--out", str(out), *resume), preexec=_ignore_sigxfsz)
            resume = ("--resume",)
            if not fit.wait_for(staging / started):
                fit.finish()
                break  # the run ended before the stage: judged by what follows
            resource.prlimit(fit.pid, resource.RLIMIT_FSIZE, (limit, limit))
            returncode, stderr = fit.finish()
            if returncode in (0, 1):
                break  # every file it still had to write fitted under the quota
            named = NAMED.search(stderr)
            case = f"{stage}, {limit}-byte quota: {named.group(1) if named else '?'}"
            if _judge_clean_failure(tally, case, returncode, stderr, out, previous):
                tally.held(case)
        if not (out / "summary.json").is_file():
            resumed = run_cli(*argv, "--out", str(out), "--resume")
            case = f"{limit}-byte quota lifted, --resume"
            if resumed.returncode not in (0, 1) or not (out / "summary.json").is_file():
                tally.broke(case, f"the run did not complete: {resumed.stderr[-400:]}")
                continue
        if learned(out) != expected:
            tally.broke(f"{limit}-byte quota", "the completed run's metrics differ")
        elif _digests(completed) != digests:
            tally.broke(f"{limit}-byte quota", "the earlier completed run changed")
    tally.report(request.node.nodeid)


def test_a_full_disk_in_each_stage_fails_cleanly_and_resumes(previous, tmp_path, request):
    _fill_the_disk((0,), previous, tmp_path, request)


@pytest.mark.slow
def test_a_full_disk_at_many_sizes_fails_cleanly_and_resumes(previous, tmp_path, request):
    _fill_the_disk((0, 512, 16_384, 65_536), previous, tmp_path, request)


def _write_under_quota(path: Path, data: bytes, limit: int) -> None:
    """atomic.write_bytes with this process's file-size quota at `limit` bytes for the call
    alone (CPython ignores SIGXFSZ, so a write past it fails with EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        atomic.write_bytes(path, data)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _replace_under_quota(examples: int, tmp_path: Path, request) -> None:
    tally = Tally(
        guarantee="A file replaced when the disk is full keeps its previous contents whole, "
        "leaves no temporary file, and the error names the file.",
        how="atomic.write_bytes (what checkpoints, exports' side files and bundles are written "
        "with) under a file-size quota below the new contents' size, sizes drawn by hypothesis; "
        "the file's bytes and its folder checked after each write.",
        area="disk",
    )

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None)
    @given(
        old_size=st.integers(0, 200_000),
        new_size=st.integers(1, 200_000),
        limit=st.integers(0, 100_000),
    )
    def replace(old_size: int, new_size: int, limit: int) -> None:
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        path = folder / "train-state.safetensors"
        old, new = b"o" * old_size, b"n" * new_size
        path.write_bytes(old)
        case = f"{old_size} -> {new_size} bytes under a {limit}-byte quota"
        try:
            _write_under_quota(path, new, limit)
            raised = None
        except (OutputWriteError, OSError) as exc:
            raised = exc
        expected = old if new_size > limit else new
        if path.read_bytes() != expected:
            tally.broke(case, "the file holds neither its old nor its new contents whole")
        elif sorted(p.name for p in folder.iterdir()) != [path.name]:
            tally.broke(case, f"left behind: {sorted(p.name for p in folder.iterdir())}")
        elif (raised is None) != (new_size <= limit):
            tally.broke(case, f"raised {raised!r}")
        elif raised is not None and not isinstance(raised, OutputWriteError):
            tally.broke(case, f"a bare {raised!r}, not an error naming the file")
        elif raised is not None and str(path) not in str(raised):
            tally.broke(case, f"the error does not name the file: {raised}")
        else:
            tally.held(case)

    replace()
    tally.report(request.node.nodeid)


def test_a_file_replaced_on_a_full_disk_keeps_its_old_contents(tmp_path, request):
    _replace_under_quota(60, tmp_path, request)


@pytest.mark.slow
def test_many_files_replaced_on_a_full_disk_keep_their_old_contents(tmp_path, request):
    _replace_under_quota(600, tmp_path, request)


def test_an_unwritable_out_is_refused_before_training(previous, tiny_budget_ms, tmp_path, request):
    completed, digests, _, argv = previous
    tally = Tally(
        guarantee="An --out that cannot be written (under a file, a file itself, a finished "
        "run) is refused before any training with exit 2 and a message naming --out, and "
        "nothing is written anywhere.",
        how="fit invoked with each kind of unwritable --out; exit code, message, the folder "
        "around it and an earlier run's sha256 checked.",
        area="disk",
    )
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    cases = {
        "under a regular file": blocker / "run",
        "deep under a regular file": blocker / "x" / "y" / "run",
        "a regular file": blocker,
        "an earlier completed run": completed,
    }
    for case, out in cases.items():
        before = sorted(p.name for p in tmp_path.iterdir())
        result = invoke(*argv, "--out", str(out))
        if result.returncode != 2 or "Traceback" in result.stderr:
            tally.broke(case, f"exit {result.returncode}: {result.stderr[-400:]}")
        elif "--out" not in result.stderr:
            tally.broke(case, f"the message does not name --out: {result.stderr[-300:]}")
        elif sorted(p.name for p in tmp_path.iterdir()) != before or blocker.read_text() != (
            "not a folder\n"
        ):
            tally.broke(case, "something was written beside --out")
        elif _digests(completed) != digests:
            tally.broke(case, "the earlier completed run changed")
        else:
            tally.held(case)
    tally.report(request.node.nodeid)


@pytest.mark.slow
def test_an_out_taken_during_the_run_keeps_the_finished_run_staged(previous, tmp_path, request):
    completed, digests, expected, argv = previous
    tally = Tally(
        guarantee="When --out is taken by another file while fit runs, fit exits 2 naming "
        "--out, keeps the finished run staged, and --resume completes it once the place is free.",
        how="A real fit whose --out is created as a regular file during export; exit code, "
        "message and staged run checked, the file removed and the run resumed.",
        area="disk",
    )
    out = tmp_path / "run"
    staging = staging_of(out)
    fit = FitProcess((*argv, "--out", str(out)))
    assert fit.wait_for(staging / STARTED["export"]), "fit ended before export"
    out.write_text("someone else's file\n")
    returncode, stderr = fit.finish()
    case = "--out created as a file during export"
    if returncode != 2 or "Traceback" in stderr or f"--out {out}" not in stderr:
        tally.broke(case, f"exit {returncode}: {stderr[-600:]}")
    elif not (staging / "summary.json").is_file() or out.read_text() != "someone else's file\n":
        tally.broke(case, "the finished run was not kept staged, or the file was touched")
    else:
        out.unlink()
        resumed = run_cli(*argv, "--out", str(out), "--resume")
        if resumed.returncode not in (0, 1) or learned(out) != expected:
            tally.broke(case, f"resume did not complete the run: {resumed.stderr[-400:]}")
        elif _digests(completed) != digests:
            tally.broke(case, "the earlier completed run changed")
        else:
            tally.held(case)
    tally.report(request.node.nodeid)
