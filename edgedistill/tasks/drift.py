"""How far new inputs have moved from the validation split, seen through the shipped student:
its confidence distribution (population stability index over the validation deciles) and its
agreement with the teacher. Pure arithmetic on outputs already computed."""

from __future__ import annotations

from typing import Any

from edgedistill.records.evaluation import ConfidenceProfile

BINS = 10  # deciles of the validation confidences
FLOOR = 1e-4  # share given to an empty bin, so that the logarithm stays finite
# Population stability index bands in common use (credit scoring): below 0.1 stable, 0.1-0.25
# a moderate shift, above 0.25 a major one.
PSI_MODERATE = 0.1
PSI_MAJOR = 0.25


def profile(conf, student_pred, teacher_pred, threshold: float) -> ConfidenceProfile:
    """The validation profile: decile edges of the confidences (0 and 1 at the ends), the
    share per bin, agreement with the teacher and coverage at the cascade's threshold."""
    import numpy as np

    conf = np.asarray(conf, dtype=np.float64)
    inner = np.quantile(conf, np.linspace(0, 1, BINS + 1)[1:-1])
    edges = np.unique(np.concatenate([[0.0], inner, [1.0]]))
    return ConfidenceProfile(
        edges=[float(e) for e in edges],
        shares=[float(s) for s in shares(conf, list(edges))],
        agreement=float((np.asarray(student_pred) == np.asarray(teacher_pred)).mean()),
        coverage=float((conf >= threshold).mean()),
        samples=len(conf),
    )


def shares(conf, edges: list[float]) -> Any:
    """Share of `conf` per bin; the last bin holds 1.0 itself."""
    import numpy as np

    counts, _ = np.histogram(np.clip(conf, 0.0, 1.0), bins=np.asarray(edges))
    return counts / max(len(conf), 1)


def sampling_psi(bins: int, observed: int, expected: int) -> float:
    """The PSI two samples of the same distribution show on average, from their sizes alone:
    about (bins - 1) * (1/n + 1/m) (the statistic is a chi-square-like sum over the bins). A
    sample of 50 inputs against 270 validation ones shows ~0.2 with no shift at all."""
    return (bins - 1) * (1.0 / max(observed, 1) + 1.0 / max(expected, 1))


def population_stability(expected: list[float], observed: list[float]) -> float:
    """PSI = sum over bins of (observed - expected) * ln(observed / expected)."""
    import numpy as np

    e = np.maximum(np.asarray(expected, dtype=np.float64), FLOOR)
    o = np.maximum(np.asarray(observed, dtype=np.float64), FLOOR)
    return float(np.sum((o - e) * np.log(o / e)))
