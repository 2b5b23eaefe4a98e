"""Results that flag themselves: a finished run's figures checked for what usually means a
mistake upstream, each flag saying which figures led to it.

- the deployed student beats the teacher by more than a point: the teacher is probably fed
  wrongly, or the test split is too small to tell them apart;
- the teacher's own measured p90 already meets the budget: distillation may not be needed;
- the chosen student is bigger (parameters or MACs) than the teacher;
- the test split is too small for the student-teacher difference to mean anything: the
  binomial standard error of that difference is above a point.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from edgedistill.records.summary import RunSummary

BEATS_TEACHER_BY = 0.01  # accuracy points (as a fraction) above which a student is suspect
NOISY_ERROR = 0.01  # standard error of the student-teacher difference that makes it noise

Check = Callable[[RunSummary], str | None]


def _student_accuracy(summary: RunSummary) -> float:
    student = summary.student
    return student.accuracy if student.accuracy is not None else student.accuracy_fp32


def difference_error(student: float, teacher: float, samples: int) -> float:
    """Binomial standard error of (student accuracy - teacher accuracy) on `samples` samples,
    the two treated as independent (an upper bound for paired predictions that agree often)."""
    if samples <= 0:
        return math.inf
    return math.sqrt((student * (1 - student) + teacher * (1 - teacher)) / samples)


def _feeding(summary: RunSummary) -> str:
    feeding = summary.teacher.feeding
    if feeding is None:
        return "how the teacher is fed is not recorded"
    preset = f" ({feeding.preset})" if feeding.preset else ""
    return f"the teacher's preprocessing was {feeding.how}{preset}"


def student_beats_teacher(summary: RunSummary) -> str | None:
    student, teacher = _student_accuracy(summary), summary.teacher.accuracy
    if student - teacher <= BEATS_TEACHER_BY:
        return None
    samples = summary.task.split_sizes.get("test", 0)
    metric = summary.student.metric
    error = ""
    if metric == "accuracy":
        spread = 100 * difference_error(student, teacher, samples)
        error = f" (standard error of the difference {spread:.1f} points)"
    return (
        f"the student ({metric} {student:.4f}) beats its teacher ({teacher:.4f}) by "
        f"{100 * (student - teacher):.1f} points on {samples} test samples{error}: the teacher "
        "is probably fed wrongly "
        f"({_feeding(summary)}; declare it with --teacher-preprocess), or the test split is "
        "too small to tell them apart"
    )


def teacher_meets_budget(summary: RunSummary) -> str | None:
    p90 = summary.teacher.latency_ms.p90
    if p90 is None or p90 > summary.budget_ms:
        return None
    where = summary.teacher.latency_ms.measured_on or "here"
    return (
        f"the teacher itself measured p90 {p90:.4f} ms on {where}, within the "
        f"{summary.budget_ms:g} ms budget: distillation may not be needed (the teacher scores "
        f"{summary.teacher.accuracy:.4f})"
    )


def student_bigger_than_teacher(summary: RunSummary) -> str | None:
    student, teacher = summary.student, summary.teacher
    bigger = [
        f"{what} {mine:,} vs the teacher's {theirs:,}"
        for what, mine, theirs in (
            ("parameters", student.params, teacher.params),
            ("MACs", student.macs, teacher.macs),
        )
        if theirs and mine > theirs
    ]
    if not bigger:
        return None
    return (
        f"the student is bigger than its teacher ({'; '.join(bigger)}): a budget this loose "
        "may not need distillation, or the teacher is smaller than a student should be"
    )


def small_test_split(summary: RunSummary) -> str | None:
    if summary.student.metric != "accuracy":  # the binomial error is for accuracies
        return None
    samples = summary.task.split_sizes.get("test", 0)
    student, teacher = _student_accuracy(summary), summary.teacher.accuracy
    error = difference_error(student, teacher, samples)
    if error <= NOISY_ERROR:
        return None
    return (
        f"the test split has {samples} samples: the standard error of the student-teacher "
        f"accuracy difference is {100 * error:.1f} points, so differences below "
        f"{200 * error:.1f} points (retention {summary.retention or 0:.3f}) are noise; give "
        "more test data for figures that mean something"
    )


CHECKS: tuple[Check, ...] = (
    student_beats_teacher,
    teacher_meets_budget,
    student_bigger_than_teacher,
    small_test_split,
)


def result_flags(summary: RunSummary) -> list[str]:
    """The warnings a run's figures raise, in CHECKS order."""
    return [flag for check in CHECKS if (flag := check(summary)) is not None]
