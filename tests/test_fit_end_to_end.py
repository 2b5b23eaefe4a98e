"""An end-to-end `fit` on a tiny setting; the summary's figures must agree with the bundle files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_RECIPE, invoke, run_cli


@pytest.fixture(scope="module")
def fit_run(tiny_fit):
    """(result, out, budget_ms): the session's one real-process fit (shared with
    tests/test_fit_resume.py), at a budget this host can meet (conftest.tiny_budget_ms)."""
    return tiny_fit


def test_fit_exit_code_agrees_with_the_measured_fit(fit_run):
    result, out, budget_ms = fit_run
    assert "Traceback" not in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert result.returncode == (0 if summary["fits_budget"] else 1), result.stderr
    assert summary["fits_budget_basis"] == "measured_p90"
    assert summary["fits_budget"] == (summary["latency_ms"]["p90"] <= budget_ms)


def test_json_flag_prints_only_the_summary_on_stdout(fit_run):
    result, out, _ = fit_run
    assert json.loads(result.stdout) == json.loads((out / "summary.json").read_text())
    assert "distill" in result.stderr  # progress goes to stderr


def test_summary_has_the_documented_fields(fit_run):
    _, out, budget_ms = fit_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema_version"] == 1
    assert summary["device"] == "host-cpu"
    assert summary["budget_ms"] == pytest.approx(budget_ms)
    for key in ("params", "macs", "accuracy", "latency_ms"):
        assert key in summary["teacher"]
    for key in ("arch", "params", "macs", "precision", "accuracy_fp32", "accuracy"):
        assert key in summary["student"]
    assert set(summary["stages_s"]) == {
        "search",
        "teacher",
        "distill",
        "export",
        "bench",
        "evaluate",
    }
    latency = summary["latency_ms"]
    assert latency["measured_on"] == "host" and latency["threads"] == 1
    assert latency["runs"] >= 50
    assert latency["p50"] <= latency["p90"] <= latency["p99"]
    assert latency["calibrated"] is True


def test_chosen_student_is_the_most_capable_predicted_to_fit(fit_run):
    _, out, budget_ms = fit_run
    summary = json.loads((out / "summary.json").read_text())
    search = json.loads((out / "search.json").read_text())
    assert search["chosen"] == summary["student"]["spec"]
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    candidates = search["candidates"]
    fitting = [c for c in candidates if c["fits"]]
    assert fitting, "search.json must list the candidates predicted to fit"
    best = max(fitting, key=lambda c: c["macs"])
    assert summary["student"]["spec"] == best["spec"]
    assert best["predicted_ms"] <= budget_ms * (1 - summary["latency_ms"]["margin"])
    # The tiny test teacher is smaller than much of the space; which students a fixed budget
    # admits depends on the machine, so teacher-vs-student size is checked for the built-in
    # digits teacher against the whole space (tests/test_students.py), not here.


def test_bundle_files_match_the_summary(fit_run):
    from edgedistill.bundle import verify_bundle
    from edgedistill.hashing import sha256_file

    _, out, _ = fit_run
    summary = json.loads((out / "summary.json").read_text())
    report = verify_bundle(out)
    assert report.ok, report.problems
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    (artifact,) = summary["artifacts"]
    path = out / artifact["path"]
    assert artifact["path"] == "bundle/model.fp32.onnx"
    assert artifact["sha256"] == sha256_file(path)
    assert manifest["artifacts"][0]["sha256"] == artifact["sha256"]
    assert {f["path"] for f in manifest["files"]} >= {
        "model.fp32.onnx",
        "labels.txt",
        "README.md",
        "validation.npz",
    }
    assert (out / "bundle" / "labels.txt").read_text().split() == summary["task"]["labels"]
    assert "p90" in (out / "bundle" / "README.md").read_text()
    assert (
        manifest["schema_version"] == 2
        and manifest["student"]["spec"] == summary["student"]["spec"]
    )
    assert manifest["artifacts"][0]["runtime"]["name"] == "onnxruntime"
    report = (out / "report.html").read_text()
    assert summary["student"]["spec"] in report and "<svg" in report


def test_deployed_accuracy_is_the_onnx_artifacts_accuracy_on_the_test_split(fit_run):
    from edgedistill.export.validate import onnx_predictions
    from edgedistill.tasks.data import load_task_data
    from edgedistill.tasks.task import load_recipe

    _, out, _ = fit_run
    summary = json.loads((out / "summary.json").read_text())
    data = load_task_data(load_recipe(str(TINY_RECIPE)))
    logits = onnx_predictions(out / summary["artifacts"][0]["path"], data.test.x)
    accuracy = float((logits.argmax(1) == data.test.y.numpy()).mean())
    assert summary["student"]["accuracy"] == pytest.approx(accuracy)
    assert summary["artifacts"][0]["accuracy"] == pytest.approx(accuracy)
    assert summary["retention"] == pytest.approx(accuracy / summary["teacher"]["accuracy"])
    assert summary["artifacts"][0]["max_abs_diff"] < 1e-3


def test_checkpoint_rebuilds_the_exported_student(fit_run):
    import torch
    from safetensors.torch import load_file

    from edgedistill.export.validate import onnx_predictions
    from edgedistill.students import Candidate, build_student

    _, out, _ = fit_run
    meta = json.loads((out / "checkpoint" / "student.json").read_text())
    student = build_student(
        Candidate.parse(meta["spec"]), tuple(meta["input_shape"]), meta["num_classes"]
    )
    student.load_state_dict(load_file(out / "checkpoint" / "student.safetensors"))
    student.eval()
    x = torch.randn(4, *meta["input_shape"])
    with torch.no_grad():
        reference = student(x).numpy()
    exported = onnx_predictions(out / "bundle" / "model.fp32.onnx", x)
    assert np.abs(exported - reference).max() < 1e-3


def test_no_partial_directories_are_left_next_to_the_run(fit_run):
    _, out, _ = fit_run
    siblings = [p.name for p in Path(out).parent.iterdir()]
    assert siblings == ["run"]


def test_bundle_verify_cli_detects_a_tampered_model(fit_run, tmp_path):
    import shutil

    _, out, _ = fit_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    ok = invoke("bundle", "verify", str(copy))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    model = copy / "bundle" / "model.fp32.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    bad = run_cli("bundle", "verify", str(copy))  # a real process, as a user runs it
    assert bad.returncode == 1
    assert "model.fp32.onnx" in bad.stdout + bad.stderr


def test_verify_on_device_keeps_the_first_candidate_whose_measured_p90_fits(tmp_path):
    """The selection logic of --verify-on-device, with scripted p90 figures standing in for the
    device (real measurements are exercised by the end-to-end fit above)."""
    from edgedistill.fit.search import run_search
    from edgedistill.latency.model import LatencyModel
    from edgedistill.profiles import load_profile

    profile = load_profile("host-cpu")
    model = LatencyModel(
        profile, "fp32", [0.01, 0.002, 0.001, 1e-8, 5e-8, 4e-8, 3e-9, 0.004, 2e-9, 5e-9], 0.05
    )
    budget = 0.2
    scripted_p90s = iter([0.25, 0.21, 0.15])
    result = run_search(
        profile, model, (1, 32, 32), 10, budget, tmp_path, 3, lambda path: next(scripted_p90s)
    )
    reach = budget * (1 + model.margin())  # the prediction errs either way
    within = [s for s in result.scored if s.predicted_ms <= reach]
    assert any(not s.fits for s in within[:3]), "the first candidates measured lie in the margin"
    assert [v["spec"] for v in result.verified] == [s.candidate.spec for s in within[:3]]
    assert result.chosen is within[2]
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["verified_on_device"] == result.verified


def _scripted_model(fit_error: float = 0.05):
    from edgedistill.latency.model import LatencyModel
    from edgedistill.profiles import load_profile

    profile = load_profile("host-cpu")
    coefficients = [0.01, 0.002, 0.001, 1e-8, 5e-8, 4e-8, 3e-9, 0.004, 2e-9, 5e-9]
    return profile, LatencyModel(profile, "fp32", coefficients, fit_error)


def _verify_order(model, budget, k):
    """The candidates --verify-on-device K measures, in order: the K most capable predicted
    within the budget plus the margin, then the margin's own choice when it is not among them."""
    from edgedistill.students import enumerate_space
    from edgedistill.students.select import score

    scored = score(enumerate_space((1, 32, 32)), model, (1, 32, 32), 10, budget)
    pool = [s for s in scored if s.predicted_ms <= budget * (1 + model.margin())][:k]
    safe = next(s for s in scored if s.fits)
    return [s.candidate.spec for s in pool] + ([] if safe in pool else [safe.candidate.spec])


def test_verify_on_device_fails_when_no_measured_candidate_fits(tmp_path):
    from edgedistill.errors import GoalNotMetError
    from edgedistill.fit.search import run_search

    profile, model = _scripted_model()
    order = _verify_order(model, 0.2, 2)
    with pytest.raises(GoalNotMetError, match=f"none of the {len(order)} candidates measured"):
        run_search(profile, model, (1, 32, 32), 10, 0.2, tmp_path, 2, lambda path: 9.9)


def test_verify_on_device_falls_back_to_the_candidate_chosen_with_the_margin(tmp_path):
    from edgedistill.fit.search import run_search

    profile, model = _scripted_model(fit_error=0.2)  # a wide margin: 0.16-0.24 ms
    order = _verify_order(model, 0.2, 2)
    assert len(order) == 3, "the two most capable lie in the margin, outside the safe choice"
    scripted_p90s = iter([0.25, 0.22, 0.15])  # the two in the margin miss, the safe one fits
    result = run_search(
        profile, model, (1, 32, 32), 10, 0.2, tmp_path, 2, lambda path: next(scripted_p90s)
    )
    safe = next(s for s in result.scored if s.fits)
    assert [v["spec"] for v in result.verified] == order
    assert result.chosen is safe


def test_the_model_cards_python_code_runs_the_shipped_onnx(fit_run):
    """The card's onnxruntime snippet, copied as a device team would, runs against the bundle
    and prints one class per input."""
    import re
    import subprocess
    import sys

    _, out, _ = fit_run
    card = (out / "bundle" / "README.md").read_text()
    section = card.split("### `model.fp32.onnx`", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=out / "bundle", capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\[\d\]\n", result.stdout)
    assert "## When to ask the teacher" in card
