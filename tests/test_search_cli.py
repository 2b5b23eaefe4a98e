"""`edgedistill search` as a user runs it: JSON with every candidate, the Pareto plot, refusals."""

from __future__ import annotations

import json

from tests.conftest import invoke, run_cli


def test_search_json_lists_every_candidate_with_its_prediction(tmp_path):
    plot = tmp_path / "pareto.png"
    result = invoke(  # in-process: the candidates' costs stay memoised for later tests
        "search", "--device", "jetson-orin-nano", "--budget", "0.5ms", "--json", "--plot", str(plot)
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    candidates = document["candidates"]
    assert len(candidates) == 360
    assert {"spec", "params", "macs", "predicted_ms", "calibrated", "fits"} <= set(candidates[0])
    assert document["calibrated"] is False and document["margin"] == 0.3
    assert all(c["calibrated"] is False for c in candidates)
    fitting = [c for c in candidates if c["fits"]]
    assert document["chosen"] == max(fitting, key=lambda c: c["macs"])["spec"]
    assert all(c["predicted_ms"] <= 0.5 * 0.7 for c in fitting)
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_search_refuses_an_impossible_budget_naming_the_fastest_candidate():
    result = invoke("search", "--device", "rpi5", "--budget", "1us", "--top", "3")
    assert result.returncode == 1
    assert "no candidate fits" in result.stderr and "predicted at" in result.stderr
    assert "Traceback" not in result.stderr


def test_search_refuses_a_bad_budget_with_exit_2():
    result = run_cli("search", "--device", "rpi5", "--budget", "fast")  # a real process
    assert result.returncode == 2 and "--budget" in result.stderr
    assert "Traceback" not in result.stderr
