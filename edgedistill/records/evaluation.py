"""What a run learned about its shipped student beside accuracy: per-class figures against the
teacher, the student -> teacher cascade policy, and the confidence profile a drift audit
compares new data with. Classification runs only (regression: None)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassFigures(_Strict):
    """One class of the test split: how often teacher and shipped student get it right."""

    label: str
    count: int
    teacher_accuracy: float | None  # None: the class has no test sample
    student_accuracy: float | None


class CascadePoint(_Strict):
    """The cascade at one threshold τ (validation split): inputs whose student max-probability
    is at least τ stay on the device, the rest go to the teacher."""

    threshold: float
    coverage: float  # share of inputs the student answers
    accuracy: float  # accuracy of the cascade's answers over all inputs


class CascadeSplit(_Strict):
    """The chosen τ applied to one split."""

    samples: int
    coverage: float
    accuracy: float  # of the cascade
    student_accuracy: float  # the student alone
    teacher_accuracy: float  # the teacher alone


class CascadePolicy(_Strict):
    """τ for "cascade accuracy >= teacher accuracy - target at the highest coverage", chosen on
    the validation split, reported on the test split too."""

    threshold: float
    target_drop: float  # allowed accuracy drop below the teacher (fraction: 0.005 = 0.5 points)
    met: bool  # False: no τ met the target on val; τ then sends every input to the teacher
    val: CascadeSplit
    test: CascadeSplit
    curve: list[CascadePoint] = Field(default_factory=list)  # validation split, τ ascending


class ConfidenceProfile(_Strict):
    """The shipped student's max-probability on the validation split, binned: what `audit`
    compares new data with (population stability index over the same bins)."""

    edges: list[float]  # bin edges, ascending, first 0 and last 1
    shares: list[float]  # share of validation inputs per bin (len(edges) - 1 of them)
    agreement: float  # student and teacher predict the same class (validation split)
    coverage: float  # share at or above the cascade's τ (validation split)
    samples: int


class Evaluation(_Strict):
    """Computed from the outputs of the shipped artifact (run by its runtime on this host, or
    the PyTorch student it was exported from where no runtime runs here) and the teacher's."""

    artifact: str  # path of the artifact in the bundle, or "pytorch" for the student
    runtime: str
    per_class: list[ClassFigures]
    cascade: CascadePolicy
    confidence: ConfidenceProfile
