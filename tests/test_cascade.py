"""The cascade and drift arithmetic (tasks/cascade.py, tasks/drift.py) on values worked out by
hand, and the figures a real fit run records (per-class, cascade, confidence profile)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgedistill.tasks.cascade import NEVER, SplitOutputs, cascade_at, choose_policy, confidence
from edgedistill.tasks.drift import population_stability, profile, shares

# Four inputs; student confidences 0.95, 0.85, 0.7, 0.55 (two classes, logits built for them).
CONF = np.array([0.95, 0.85, 0.7, 0.55])
STUDENT = np.array([0, 1, 1, 0])
TEACHER = np.array([0, 1, 0, 1])
LABELS = np.array([0, 1, 0, 1])  # the teacher is always right; the student on the first two


def _logits(conf: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Two-class logits whose softmax gives `conf` to class `pred`."""
    margin = np.log(conf / (1 - conf))
    logits = np.zeros((len(conf), 2))
    logits[np.arange(len(conf)), pred] = margin
    return logits


def test_confidence_is_the_largest_softmax_probability():
    assert confidence(_logits(CONF, STUDENT)) == pytest.approx(CONF)


def test_cascade_at_counts_student_answers_above_tau_and_teacher_answers_below():
    # tau 0.8: inputs 0, 1 stay (both right), 2, 3 go to the teacher (right): 4/4
    assert cascade_at(0.8, CONF, STUDENT, TEACHER, LABELS) == (0.5, 1.0)
    # tau 0.6: input 2 stays and is wrong: 3/4
    assert cascade_at(0.6, CONF, STUDENT, TEACHER, LABELS) == (0.75, 0.75)
    # tau 0: the student alone, right on 2 of 4
    assert cascade_at(0.0, CONF, STUDENT, TEACHER, LABELS) == (1.0, 0.5)


def test_policy_takes_the_highest_coverage_within_the_target():
    split = SplitOutputs(_logits(CONF, STUDENT), np.eye(2)[TEACHER] * 5, LABELS)
    policy = choose_policy(split, split, target_drop=0.0)
    # thresholds are quantiles of the confidences: the lowest giving 4/4 lies above 0.7
    assert policy.met and 0.7 < policy.threshold <= 0.85
    assert (policy.val.coverage, policy.val.accuracy) == (0.5, 1.0)
    assert (policy.val.student_accuracy, policy.val.teacher_accuracy) == (0.5, 1.0)
    looser = choose_policy(split, split, target_drop=0.25)  # 3/4 is allowed now
    assert 0.55 < looser.threshold <= 0.7 and looser.val.coverage == 0.75


def test_policy_sends_everything_to_the_teacher_when_no_threshold_meets_the_target():
    # the student is wrong wherever it is sure, right only where it is not: every threshold
    # that keeps an input on the device loses accuracy against the (always right) teacher
    student = np.array([1, 0, 0, 1])
    split = SplitOutputs(_logits(CONF, student), np.eye(2)[LABELS] * 5, LABELS)
    policy = choose_policy(split, split, target_drop=0.1)
    assert policy.met is False and policy.threshold == NEVER
    assert (policy.val.coverage, policy.val.accuracy) == (0.0, 1.0)


def test_population_stability_by_hand():
    assert population_stability([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert population_stability([0.5, 0.5], [0.8, 0.2]) == pytest.approx(expected)


def test_profile_bins_are_validation_deciles_and_shares_sum_to_one():
    conf = np.linspace(0.1, 1.0, 100)
    found = profile(conf, np.zeros(100), np.r_[np.zeros(90), np.ones(10)], threshold=0.55)
    assert found.edges[0] == 0.0 and found.edges[-1] == 1.0
    assert found.edges == sorted(found.edges) and len(found.shares) == len(found.edges) - 1
    assert sum(found.shares) == pytest.approx(1.0)
    assert max(found.shares) <= 0.11  # deciles: about a tenth in each bin
    assert found.agreement == pytest.approx(0.9) and found.coverage == pytest.approx(0.5)
    assert shares(np.array([1.0]), found.edges)[-1] == 1.0  # 1.0 falls in the last bin


def test_a_fit_run_records_per_class_cascade_and_confidence(tiny_fit):
    _, out, _ = tiny_fit
    summary = json.loads((out / "summary.json").read_text())
    evaluation = summary["evaluation"]
    assert evaluation["artifact"] == "model.fp32.onnx"
    assert "onnxruntime" in evaluation["runtime"]
    per_class = evaluation["per_class"]
    assert [c["label"] for c in per_class] == summary["task"]["labels"]
    assert sum(c["count"] for c in per_class) == summary["task"]["split_sizes"]["test"]
    # the per-class figures add up to the deployed artifact's measured test accuracy
    right = sum(c["student_accuracy"] * c["count"] for c in per_class)
    assert right / summary["task"]["split_sizes"]["test"] == pytest.approx(
        summary["student"]["accuracy"], abs=1e-6
    )
    cascade = evaluation["cascade"]
    assert cascade["test"]["student_accuracy"] == pytest.approx(summary["student"]["accuracy"])
    assert cascade["test"]["teacher_accuracy"] == pytest.approx(summary["teacher"]["accuracy"])
    assert cascade["target_drop"] == pytest.approx(0.005)
    if cascade["met"]:
        assert cascade["val"]["accuracy"] >= cascade["val"]["teacher_accuracy"] - 0.005 - 1e-9
    curve = cascade["curve"]
    assert curve[0]["coverage"] == 1.0 and curve[-1]["coverage"] == 0.0
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    assert manifest["evaluation"] == evaluation
    assert manifest["validation_sample"]["outputs"]["model.fp32.onnx"]["runtime"].startswith(
        "onnxruntime"
    )


def test_sampling_psi_is_the_bias_two_samples_of_one_distribution_show():
    from edgedistill.tasks.drift import sampling_psi

    assert sampling_psi(10, 50, 270) == pytest.approx(9 * (1 / 50 + 1 / 270))
    rng = np.random.default_rng(0)  # and it is what PSI between two same-law samples averages
    edges = list(np.quantile(rng.random(20000), np.linspace(0, 1, 11)))
    edges[0], edges[-1] = 0.0, 1.0
    seen = [
        population_stability(shares(rng.random(270), edges), shares(rng.random(270), edges))
        for _ in range(400)
    ]
    assert np.mean(seen) == pytest.approx(sampling_psi(10, 270, 270), rel=0.25)
