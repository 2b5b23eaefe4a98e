"""`fit --lab FILE --target NAME`: the student and teacher timed on a lab device over real SSH."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY_RECIPE, run_cli
from tests.lab_fixtures import free_port, running_sshd

BUDGET = "0.1ms"  # for the refusals, which stop before any candidate is chosen


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    yield from running_sshd(tmp_path_factory)


def fit(out: Path, *extra: str, budget: str = BUDGET):
    return run_cli(
        "fit", "--device", "host-cpu", "--budget", budget, "--task", str(TINY_RECIPE),
        "--epochs", "1", "--out", str(out), "--json", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def lab_fit(sshd, tmp_path_factory, tiny_budget_ms):
    """A small student (the test is about where it was measured), with room on any host: the
    budget comes from the session's host calibration, which this fit predicts with."""
    root = tmp_path_factory.mktemp("lab-fit")
    lab = sshd.write_lab(root / "devices.yaml", sshd.device("loopback"))
    result = fit(
        root / "run", "--lab", str(lab), "--target", "loopback", budget=f"{tiny_budget_ms:g}ms"
    )
    return result, root / "run"


def test_fit_on_a_lab_device_writes_measured_on_as_an_ssh_uri(lab_fit, sshd):
    result, out = lab_fit
    assert "Traceback" not in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert result.returncode == (0 if summary["fits_budget"] else 1), result.stderr
    latency = summary["latency_ms"]
    uri = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}"
    assert latency["measured_on"] == uri and latency["target"] == "loopback"
    assert summary["teacher"]["latency_ms"]["measured_on"] == uri
    assert summary["fits_budget_basis"] == "measured_p90"
    assert summary["fits_budget"] == (latency["p90"] <= summary["budget_ms"])
    assert latency["runs"] >= 50 and latency["p50"] <= latency["p90"] <= latency["p99"]


def test_fit_on_a_lab_device_passes_the_on_device_audit(lab_fit):
    _, out = lab_fit
    summary = json.loads((out / "summary.json").read_text())
    for latency in (summary["latency_ms"], summary["teacher"]["latency_ms"]):
        assert latency["audit"] == "passed", latency["audit_detail"]
        assert latency["validity"] in ("valid", "unverified")
    if summary["latency_ms"]["validity"] == "unverified":
        assert any("unverified" in note for note in summary["notes"])


def test_fit_refuses_an_unreachable_target_before_training(sshd, tmp_path):
    lab = sshd.write_lab(
        tmp_path / "devices.yaml",
        sshd.device("gone", port=free_port(), retries=0, connect_timeout_s=3),
    )
    result = fit(tmp_path / "run", "--lab", str(lab), "--target", "gone")
    assert result.returncode == 3, result.stderr
    assert "cannot connect" in flat(result.stderr)
    assert "distill" not in result.stderr, "refused before any training"
    assert not (tmp_path / "run").exists()


def test_fit_refuses_an_unknown_host_key_before_training(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    lab = sshd.write_lab(tmp_path / "devices.yaml", sshd.device(known_hosts=str(empty)))
    result = fit(tmp_path / "run", "--lab", str(lab), "--target", "loopback")
    assert result.returncode == 2
    assert sshd.host_fingerprint in flat(result.stderr)
    assert not (tmp_path / "run").exists()


def test_fit_refuses_a_target_without_a_lab_file(tmp_path):
    result = fit(tmp_path / "run", "--target", "loopback")
    assert result.returncode == 2 and "--target: needs --lab" in flat(result.stderr)
