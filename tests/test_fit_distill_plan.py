"""`fit` trains its student through the same plan as `edgedistill distill`: the recipe's
procedures (born-again here) run every stage, and --labels-fraction reaches the training."""

from __future__ import annotations

import json

import yaml

from tests.conftest import TINY_RECIPE, run_cli


def test_fit_runs_the_recipes_procedure_and_labels_fraction(tmp_path, tiny_budget_ms):
    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    recipe["distill"] = {
        "losses": [{"name": "kd"}, {"name": "born-again", "generations": 1}],
        "train": recipe["distill"]["train"],
    }
    path = tmp_path / "born-again.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    result = run_cli(
        "fit", "--device", "host-cpu", "--budget", f"{tiny_budget_ms:g}ms", "--task", str(path),
        "--epochs", "1", "--labels-fraction", "0.5", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    summary = json.loads(result.stdout)
    distilled = json.loads((out / "checkpoint" / "result.json").read_text())
    assert [stage["name"] for stage in distilled["stages"]] == ["generation-0", "generation-1"]
    assert distilled["method"] == "kd+born-again"
    assert summary["student"]["accuracy_fp32"] == distilled["accuracy"]
    assert any("2 stages" in note for note in summary["notes"]), summary["notes"]
    assert distilled["labels_fraction"] == 0.5
    assert 0.4 < distilled["labeled_samples"] / distilled["train_samples"] < 0.6
