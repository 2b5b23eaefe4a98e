"""The student -> teacher cascade: the student answers inputs it is confident about, the teacher
the rest. Pure arithmetic on outputs already computed (probabilities, predictions, labels).

At threshold τ an input stays on the device when the student's largest softmax probability is
at least τ. Coverage is the share that stays; cascade accuracy counts the student's answers on
those and the teacher's on the rest. τ is chosen on the validation split as the lowest (highest
coverage) threshold whose cascade accuracy is at least the teacher's minus `target_drop`
(Wang et al. 2017 and the "early exit" literature use the same rule); where none that keeps
any input on the device meets it, τ = 1 + ε sends everything to the teacher and `met` is
False.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgedistill.records.evaluation import CascadePoint, CascadePolicy, CascadeSplit

DEFAULT_TARGET_DROP = 0.005  # half an accuracy point below the teacher
CURVE_POINTS = 101  # thresholds kept for the curve (quantiles of the validation confidences)
NEVER = 1.0 + 1e-9  # a threshold no probability reaches: every input goes to the teacher


def softmax(logits: Any) -> Any:
    import numpy as np

    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def confidence(logits: Any) -> Any:
    """The largest softmax probability of each row."""
    return softmax(logits).max(axis=1)


def cascade_at(threshold: float, conf, student_pred, teacher_pred, labels) -> tuple[float, float]:
    """(coverage, cascade accuracy) at `threshold`."""
    import numpy as np

    kept = conf >= threshold
    answers = np.where(kept, student_pred, teacher_pred)
    return float(kept.mean()), float((answers == labels).mean())


def cascade_curve(conf, student_pred, teacher_pred, labels) -> list[CascadePoint]:
    """Coverage and cascade accuracy over thresholds from every input kept to none."""
    import numpy as np

    candidates = np.unique(np.concatenate([np.quantile(conf, np.linspace(0, 1, CURVE_POINTS)),
                                           [NEVER]]))  # fmt: skip
    points = []
    for threshold in candidates:
        coverage, accuracy = cascade_at(float(threshold), conf, student_pred, teacher_pred, labels)
        points.append(
            CascadePoint(threshold=float(threshold), coverage=coverage, accuracy=accuracy)
        )
    return points


def split_figures(threshold: float, conf, student_pred, teacher_pred, labels) -> CascadeSplit:
    coverage, accuracy = cascade_at(threshold, conf, student_pred, teacher_pred, labels)
    return CascadeSplit(
        samples=len(labels),
        coverage=coverage,
        accuracy=accuracy,
        student_accuracy=float((student_pred == labels).mean()),
        teacher_accuracy=float((teacher_pred == labels).mean()),
    )


@dataclass(frozen=True)
class SplitOutputs:
    """What the cascade needs of one split: both models' logits and the true labels."""

    student_logits: Any  # N x K
    teacher_logits: Any  # N x K
    labels: Any  # N

    def figures(self) -> tuple[Any, Any, Any, Any]:
        """(student confidence, student prediction, teacher prediction, labels)."""
        import numpy as np

        student = np.asarray(self.student_logits)
        return (confidence(student), student.argmax(1),
                np.asarray(self.teacher_logits).argmax(1), np.asarray(self.labels))  # fmt: skip


def choose_policy(
    val: SplitOutputs, test: SplitOutputs, target_drop: float = DEFAULT_TARGET_DROP
) -> CascadePolicy:
    """τ chosen on `val`, applied to `test`."""
    val_figures, test_figures = val.figures(), test.figures()
    curve = cascade_curve(*val_figures)
    teacher_accuracy = float((val_figures[2] == val_figures[3]).mean())
    meeting = [
        p for p in curve if p.coverage > 0 and p.accuracy >= teacher_accuracy - target_drop - 1e-12
    ]
    met = bool(meeting)
    threshold = min(p.threshold for p in meeting) if met else NEVER
    return CascadePolicy(
        threshold=threshold,
        target_drop=target_drop,
        met=met,
        val=split_figures(threshold, *val_figures),
        test=split_figures(threshold, *test_figures),
        curve=curve,
    )
