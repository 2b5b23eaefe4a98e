"""Results that flag themselves: each check provoked by a constructed case, and a real run."""

from __future__ import annotations

import json

import pytest

from edgedistill.fit.flags import (
    difference_error,
    result_flags,
    small_test_split,
    student_beats_teacher,
    student_bigger_than_teacher,
    teacher_meets_budget,
)
from edgedistill.records.summary import RunSummary


@pytest.fixture(scope="module")
def base(tiny_fit) -> RunSummary:
    """The session's real tiny fit, with a test split large enough to mean something and a
    student as good as its teacher: no flag at all."""
    _, out, _ = tiny_fit
    summary = RunSummary.model_validate(json.loads((out / "summary.json").read_text()))
    task = summary.task.model_copy(update={"split_sizes": {"train": 1, "val": 1, "test": 5000}})
    student = summary.student.model_copy(update={"accuracy": 0.95, "accuracy_fp32": 0.95})
    teacher = summary.teacher.model_copy(
        update={
            "accuracy": 0.95,
            "latency_ms": summary.teacher.latency_ms.model_copy(
                update={"p90": summary.budget_ms * 10}
            ),
            "params": summary.student.params * 10,
            "macs": summary.student.macs * 10,
        }
    )
    return summary.model_copy(update={"task": task, "student": student, "teacher": teacher})


def changed(summary: RunSummary, **sections) -> RunSummary:
    """`summary` with some fields of its sections replaced: changed(s, student={...})."""
    update = {
        name: getattr(summary, name).model_copy(update=fields) for name, fields in sections.items()
    }
    return summary.model_copy(update=update)


def test_a_sound_run_raises_no_flag(base):
    assert result_flags(base) == []


def test_student_that_beats_its_teacher_by_more_than_a_point_is_flagged(base):
    summary = changed(base, student={"accuracy": 0.97}, teacher={"accuracy": 0.70})
    flag = student_beats_teacher(summary)
    assert flag is not None
    assert "0.9700" in flag and "0.7000" in flag and "27.0 points" in flag
    assert "fed wrongly" in flag and "--teacher-preprocess" in flag and "5000 test" in flag
    assert student_beats_teacher(changed(base, student={"accuracy": 0.955})) is None


def test_teacher_within_the_budget_is_flagged_with_its_p90(base):
    latency = base.teacher.latency_ms.model_copy(update={"p90": base.budget_ms / 2})
    flag = teacher_meets_budget(changed(base, teacher={"latency_ms": latency}))
    assert flag is not None and f"{base.budget_ms / 2:.4f} ms" in flag
    assert "distillation may not be needed" in flag
    unmeasured = base.teacher.latency_ms.model_copy(update={"p90": None})
    assert teacher_meets_budget(changed(base, teacher={"latency_ms": unmeasured})) is None


def test_student_bigger_than_its_teacher_is_flagged(base):
    flag = student_bigger_than_teacher(changed(base, teacher={"params": 10}))
    assert flag is not None and "parameters" in flag and "MACs" not in flag
    flag = student_bigger_than_teacher(changed(base, teacher={"macs": 10}))
    assert flag is not None and "MACs" in flag


def test_small_test_split_is_flagged_with_the_binomial_standard_error(base):
    summary = changed(base, task={"split_sizes": {"train": 1, "val": 1, "test": 100}})
    flag = small_test_split(summary)
    expected = difference_error(0.95, 0.95, 100)
    assert expected == pytest.approx((2 * 0.95 * 0.05 / 100) ** 0.5)
    assert flag is not None and f"{100 * expected:.1f} points" in flag and "100 samples" in flag
    assert small_test_split(base) is None


def test_a_real_run_on_digits_flags_its_small_test_split_on_the_console(tiny_fit):
    result, out, _ = tiny_fit
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"]["split_sizes"]["test"] < 300
    assert any("standard error" in warning for warning in summary["warnings"])
    assert set(summary["warnings"]) <= set(summary["notes"])
    assert "standard error" in result.stderr  # logged as a warning while the run finishes
