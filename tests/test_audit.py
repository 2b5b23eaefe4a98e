"""`edgedistill audit`: the session's real fit run, its shipped ONNX and its teacher on the
digits test split as stored, and on shifted copies of it (inverted, noised); refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgedistill.bundle import write_manifest
from edgedistill.child import TIMEOUT_ENV
from tests.conftest import TINY_RECIPE, invoke
from tests.lab_fixtures import manifest_fields, runaway_onnx


@pytest.fixture(scope="module")
def run(tiny_fit) -> Path:
    result, out, _ = tiny_fit
    assert result.returncode in (0, 1), result.stderr
    return out


@pytest.fixture(scope="module")
def test_split() -> tuple[np.ndarray, np.ndarray]:
    """The raw 8x8 images (0..16 grey levels) and labels of the run's test split."""
    from edgedistill.tasks.task import load_task

    task = load_task(str(TINY_RECIPE))
    rows = np.asarray(task.parts["test"])
    images = np.stack([task.table.read(int(row)) for row in rows]).astype(np.float32)
    return images, np.asarray(task.table.labels)[rows]


def _npz(folder: Path, name: str, x: np.ndarray, y: np.ndarray | None = None) -> str:
    path = folder / f"{name}.npz"
    arrays = {"x": x} if y is None else {"x": x, "y": y}
    np.savez(path, **arrays)
    return f"npz:{path}"


def _audit(run: Path, data: str, *extra: str):
    result = invoke("audit", str(run), "--data", data, "--json", *extra)
    document = json.loads(result.stdout) if result.stdout.strip() else None
    return result, document


def test_the_test_split_as_stored_passes_with_the_validation_figures(run, test_split, tmp_path):
    images, labels = test_split
    result, report = _audit(run, _npz(tmp_path, "same", images, labels))
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((run / "summary.json").read_text())["evaluation"]
    assert report["ok"] is True and report["reasons"] == []
    assert report["psi"] <= report["psi_limit"]  # the test split against the val deciles
    assert report["samples"] == report["labeled"] == len(labels)
    assert report["agreement_val"] == pytest.approx(evaluation["confidence"]["agreement"])
    assert report["threshold"] == pytest.approx(evaluation["cascade"]["threshold"])
    # the same inputs the run scored on its test split: the same figures
    assert report["coverage"] == pytest.approx(evaluation["cascade"]["test"]["coverage"])
    assert report["accuracy"]["cascade"] == pytest.approx(evaluation["cascade"]["test"]["accuracy"])
    assert report["artifact"] == evaluation["artifact"] and "onnxruntime" in report["runtime"]


@pytest.mark.parametrize("shift", ["inverted", "blank"])
def test_shifted_inputs_fail_the_audit_naming_the_drop(run, test_split, tmp_path, shift):
    """Shifts any student shows, even the suite's two-epoch one (a weak student and teacher
    keep agreeing on inputs both misread, so their confidences carry the verdict): inverted
    digits, and a blank input (a covered camera). Milder shifts (noise) need a real run:
    benchmarks/drift_audit.py."""
    images, _ = test_split
    shifted = 16.0 - images if shift == "inverted" else np.zeros_like(images)
    result, report = _audit(run, _npz(tmp_path, shift, shifted))  # unlabeled, as in production
    assert result.returncode == 1, result.stderr
    assert report["ok"] is False and report["labeled"] == 0 and report["accuracy"] == {}
    # each reason names the figure that fell, and every figure that fell has its reason
    tolerance = report["tolerance"]
    expected = {
        "agreement with the teacher": report["agreement"] < report["agreement_val"] - tolerance,
        "coverage at τ": report["coverage"] < report["coverage_val"] - tolerance,
        "confidence distribution moved": report["psi"] > report["psi_limit"],
    }
    assert any(expected.values())
    for name, fell in expected.items():
        assert fell == any(name in reason for reason in report["reasons"]), name


def test_human_output_says_drift_and_why(run, test_split, tmp_path):
    images, _ = test_split
    result = invoke("audit", str(run), "--data", _npz(tmp_path, "inv", 16.0 - images))
    assert result.returncode == 1
    assert "DRIFT" in result.stdout and "agreement with the teacher" in result.stdout


def test_refusals_name_what_is_wrong(run, test_split, tmp_path):
    images, _ = test_split
    data = _npz(tmp_path, "same", images)
    not_a_run = invoke("audit", str(tmp_path), "--data", data)
    assert not_a_run.returncode == 2 and "not a fit run directory" in not_a_run.stderr
    bad_tolerance = invoke("audit", str(run), "--data", data, "--tolerance", "3")
    assert bad_tolerance.returncode == 2 and "--tolerance" in bad_tolerance.stderr
    bad_psi = invoke("audit", str(run), "--data", data, "--max-psi", "0")
    assert bad_psi.returncode == 2 and "--max-psi" in bad_psi.stderr
    missing = invoke("audit", str(run), "--data", f"npz:{tmp_path / 'absent.npz'}")
    assert missing.returncode == 2 and "absent.npz" in missing.stderr
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "bundle" / "extra.bin").write_bytes(b"x")
    tampered = invoke("audit", str(copy), "--data", data)
    assert tampered.returncode == 2 and "extra.bin" in tampered.stderr
    for result in (not_a_run, bad_tolerance, missing, tampered):
        assert "Traceback" not in result.stderr


def test_a_swapped_student_that_never_finishes_is_stopped_and_reported(
    run, test_split, tmp_path, monkeypatch
):
    """A shipped file replaced together with a manifest rewritten to match it verifies, so the
    audit runs it: in a child process with a time limit, whose failure becomes the message."""
    images, _ = test_split
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    bundle = copy / "bundle"
    fields = manifest_fields(bundle)
    shipped = bundle / fields["evaluation"]["artifact"]
    runaway_onnx(shipped, tuple(fields["input"]["shape"][1:]))
    write_manifest(bundle, **fields)
    monkeypatch.setenv(TIMEOUT_ENV, "3")
    result = invoke("audit", str(copy), "--data", _npz(tmp_path, "same", images))
    assert result.returncode == 2, result.stderr
    said = " ".join(result.stderr.split())
    assert f"{shipped}: the shipped student does not run" in said and "timed out after 3 s" in said
    assert "Traceback" not in result.stderr
