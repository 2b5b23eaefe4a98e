"""report.html: one self-contained page per run, drawn from the run's summary.json and
search.json, that still renders where a run lacks figures (regression, nothing measured)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from edgedistill.bundle.report import render_report, write_report
from edgedistill.records.summary import RunSummary

SECTIONS = ("pareto", "comparison", "per-class", "latency", "prediction", "artifacts", "cascade")
HOSTILE = "<script>alert(1)</script>"
MAX_BYTES = 1_500_000


@pytest.fixture(scope="module")
def real_run(tiny_fit, tmp_path_factory) -> Path:
    """The session's real fit's summary.json and search.json, copied: the report is written
    beside them without touching the run other tests read."""
    result, out, _ = tiny_fit
    # 1: the measured p90 missed the budget (a loaded host); the run's outputs are kept, and
    # its report matters most then
    assert result.returncode in (0, 1) and (out / "summary.json").is_file(), result.stderr
    copy = tmp_path_factory.mktemp("report") / "run"
    copy.mkdir()
    for name in ("summary.json", "search.json"):
        shutil.copy(out / name, copy / name)
    return copy


@pytest.fixture(scope="module")
def real_summary(real_run) -> RunSummary:
    return RunSummary.model_validate_json((real_run / "summary.json").read_bytes())


@pytest.fixture(scope="module")
def real_search(real_run) -> dict:
    return json.loads((real_run / "search.json").read_text())


def sections(page: str) -> dict[str, str]:
    """Each `<section id=...>` of the page, by id."""
    found = re.findall(r'<section id="([^"]+)">(.*?)</section>', page, flags=re.S)
    return dict(found)


def assert_self_contained(page: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "<script" not in page.lower()  # no JavaScript at all, inline or not
    assert "<link" not in page.lower()
    assert "@import" not in page
    assert not re.search(r"""url\(\s*["']?(?!#)""", page)  # only in-page references: url(#id)


def test_report_of_a_real_fit_is_self_contained_and_names_what_shipped(real_run, real_summary):
    path = write_report(real_run)

    assert path == real_run / "report.html"
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert path.stat().st_size < MAX_BYTES
    assert html.escape(real_summary.device) in page
    assert html.escape(real_summary.student.spec) in page
    assert real_summary.artifacts
    for artifact in real_summary.artifacts:
        assert html.escape(artifact.path) in page
    assert "could not be drawn" not in page
    by_id = sections(page)
    assert set(by_id) == set(SECTIONS)
    # a host-cpu run measures the student on this host: every figure but the per-class and
    # cascade ones (classification evaluation) has its data
    assert real_summary.latency_ms.measured_on == "host"
    for name in ("pareto", "comparison", "latency", "prediction"):
        assert "<svg" in by_id[name], name
    if real_summary.evaluation is not None:
        assert "<svg" in by_id["per-class"] and "<svg" in by_id["cascade"]
    assert "<table>" in by_id["artifacts"]


def test_report_of_a_run_with_evaluation_shows_the_cascade_and_per_class_deltas(
    real_summary, real_search
):
    if real_summary.evaluation is None:
        pytest.skip(
            "this fit's summary.json has no `evaluation` section yet (fit is gaining it); "
            "the cascade and per-class sections need it"
        )
    page = render_report(real_summary, real_search)

    by_id = sections(page)
    cascade = real_summary.evaluation.cascade
    assert "<svg" in by_id["cascade"] and "<svg" in by_id["per-class"]
    assert f"at least τ = {cascade.threshold:.3g} stay on the device" in by_id["cascade"]
    assert f"({cascade.test.coverage:.1%} of test inputs)" in by_id["cascade"]
    assert f"vs teacher {cascade.test.teacher_accuracy:.2%}" in by_id["cascade"]
    for figures in real_summary.evaluation.per_class:
        assert f"<td>{html.escape(figures.label)}</td>" in by_id["per-class"]


def test_report_of_a_regression_run_renders_without_evaluation(real_summary, real_search):
    regression = real_summary.model_copy(
        update={
            "task": real_summary.task.model_copy(
                update={"task_type": "regression", "labels": ["x", "y"]}
            ),
            "teacher": real_summary.teacher.model_copy(update={"metric": "r2"}),
            "student": real_summary.student.model_copy(update={"metric": "r2"}),
            "evaluation": None,
        }
    )

    page = render_report(regression, real_search)

    by_id = sections(page)
    assert "could not be drawn" not in page
    assert "apply to classification tasks only" in by_id["per-class"]
    assert "apply to classification tasks only" in by_id["cascade"]
    assert "R²" in by_id["comparison"] and "<svg" in by_id["comparison"]


def test_report_of_a_run_nothing_measured_says_so_and_keeps_the_search(tmp_path, real_summary):
    from edgedistill.records.measurements import MeasuredLatency

    unmeasured = real_summary.model_copy(
        update={
            "fits_budget_basis": "predicted",
            "latency_ms": real_summary.latency_ms.model_copy(
                update={"p50": None, "p90": None, "p99": None, "measured_on": None,
                        "histogram": None}
            ),
            "teacher": real_summary.teacher.model_copy(update={"latency_ms": MeasuredLatency()}),
        }
    )  # fmt: skip
    (tmp_path / "summary.json").write_text(unmeasured.model_dump_json())

    page = write_report(tmp_path).read_text(encoding="utf-8")  # and no search.json

    by_id = sections(page)
    assert "could not be drawn" not in page
    assert "judged on the prediction" in page
    assert "search.json is not in this run directory" in by_id["pareto"]
    assert "Nothing timed the student" in by_id["latency"]
    assert "Only predicted" in by_id["prediction"]


def test_report_of_a_lab_run_shows_each_target_and_its_p95(real_summary, real_search):
    from edgedistill.records.measurements import MeasuredLatency

    # what a TFLite benchmark_model run on two lab phones records: p95, no p90, no per-run times
    phone = MeasuredLatency(p50=0.05, p95=0.07, measured_on="pixel1", target="pixel1",
                            runtime="tflite benchmark_model", validity="unverified",
                            validity_reasons=["thermal state unknown"])  # fmt: skip
    latency = real_summary.latency_ms.model_copy(
        update={**phone.model_dump(exclude={"by_target"}), "p90": None, "p99": None,
                "histogram": None, "by_target": {"pixel1": phone, "pixel2": phone}}
    )  # fmt: skip
    lab = real_summary.model_copy(
        update={"latency_ms": latency, "fits_budget_basis": "measured_p95_not_deployed"}
    )

    page = render_report(lab, real_search)

    by_id = sections(page)
    assert "could not be drawn" not in page
    assert "judged on the measured p95 0.07 ms (on pixel1" in page
    assert "stands in for the artifact that ships" in page
    assert "<td>pixel2</td>" in by_id["latency"] and "thermal state unknown" in by_id["latency"]
    assert "only the percentiles are drawn" in by_id["latency"]
    assert "<svg" in by_id["latency"] and "<svg" in by_id["prediction"]


def test_report_escapes_strings_from_the_files(real_summary, real_search):
    artifact = real_summary.artifacts[0].model_copy(update={"path": f"bundle/{HOSTILE}.onnx"})
    hostile = real_summary.model_copy(
        update={
            "task": real_summary.task.model_copy(update={"name": HOSTILE}),
            "artifacts": [artifact, *real_summary.artifacts[1:]],
            "warnings": [HOSTILE],
            "notes": [f"note {HOSTILE}"],
        }
    )
    if hostile.evaluation is not None:
        per_class = [c.model_copy(update={"label": HOSTILE}) for c in hostile.evaluation.per_class]
        hostile = hostile.model_copy(
            update={"evaluation": hostile.evaluation.model_copy(update={"per_class": per_class})}
        )
    search = {**real_search, "chosen": HOSTILE}
    search["candidates"] = [{**c, "spec": HOSTILE} for c in real_search["candidates"][:1]]
    search["candidates"] += real_search["candidates"][1:]

    page = render_report(hostile, search)

    assert "<script" not in page.lower()
    assert html.escape(HOSTILE) in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in sections(page)["pareto"]  # in the SVG


def run_browser(argv: list, cwd: Path, timeout_s: float = 120) -> subprocess.CompletedProcess:
    """Run the browser in its own process group, so a hung one is killed with its helpers."""
    with subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    ) as process:  # fmt: skip
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"the browser did not finish within {timeout_s:g} s")
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    find_chromium() is None,
    reason="no chromium or chromium-browser on PATH (Debian: apt-get install chromium)",
)
def test_report_renders_in_a_headless_browser_without_console_errors(real_run, tmp_path):
    import numpy as np
    from matplotlib.image import imread

    page = write_report(real_run)
    screenshot = tmp_path / "report.png"
    browser = run_browser(
        [
            find_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
            f"--screenshot={screenshot}", "--window-size=1200,3000", page.as_uri(),
        ],
        tmp_path,
    )  # fmt: skip

    assert browser.returncode == 0, browser.stderr[-3000:]
    console = [
        line
        for line in browser.stderr.splitlines()
        if "CONSOLE" in line or "Uncaught" in line or "Failed to load resource" in line
    ]
    assert not console, console
    pixels = imread(screenshot)[..., :3]  # float RGB in [0, 1]
    assert pixels.shape[:2] == (3000, 1200)
    inked = (pixels < 0.9).any(axis=-1).mean()
    colours = len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert inked > 0.03, f"only {inked:.1%} of the page is drawn"
    assert colours > 50, f"{colours} distinct colours: the figures did not render"
