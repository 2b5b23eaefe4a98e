"""`edgedistill bench` on this host: a model file, or a candidate with its prediction."""

from __future__ import annotations

import json

from tests.conftest import invoke, run_cli


def test_bench_candidate_measures_and_predicts(host_calibration):
    result = run_cli("bench", "--candidate", "mbv2:d=1,r=16,w=0.25", "--json", "--runs", "50")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["candidate"] == "mbv2:d=1,e=4,k=3,r=16,se=0,w=0.25"
    assert document["calibrated"] is True
    assert document["measured_on"] == "host" and document["runs"] >= 50
    assert document["p50"] <= document["p90"] <= document["p99"]
    assert document["predicted_ms"] > 0 and document["macs"] > 0


def test_bench_needs_exactly_one_of_file_or_candidate(tmp_path):
    neither = invoke("bench")
    assert neither.returncode == 2 and "--candidate" in neither.stderr
    assert "Traceback" not in neither.stderr
    (tmp_path / "m.onnx").write_bytes(b"not a model")
    both = invoke("bench", str(tmp_path / "m.onnx"), "--candidate", "mbv2:d=1,r=16,w=0.25")
    assert both.returncode == 2 and "Traceback" not in both.stderr


def test_bench_refuses_an_unreadable_model_with_exit_2(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"not a model")
    result = invoke("bench", str(tmp_path / "m.onnx"))
    assert result.returncode == 2 and "m.onnx" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_refuses_a_bad_candidate_spec_naming_the_flag():
    result = invoke("bench", "--candidate", "mbv2:w=0.5,zz=1,d=1,r=16")
    assert result.returncode == 2 and "zz" in result.stderr
    assert "Traceback" not in result.stderr
