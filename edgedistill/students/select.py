"""Score every candidate of the search space on a device and pick the most capable that fits."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from edgedistill.latency.costs import ModelCost
from edgedistill.latency.model import LatencyModel
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.students import FAMILIES, Candidate


@dataclass(frozen=True)
class ScoredCandidate:
    candidate: Candidate
    params: int
    macs: int
    predicted_ms: float
    calibrated: bool
    fits: bool

    def to_dict(self) -> dict:
        return {
            "spec": self.candidate.spec,
            "family": self.candidate.family,
            "arch": dict(self.candidate.knobs),
            "params": self.params,
            "macs": self.macs,
            "predicted_ms": round(self.predicted_ms, 5),
            "calibrated": self.calibrated,
            "fits": self.fits,
        }

    @classmethod
    def from_dict(cls, entry: dict) -> ScoredCandidate:
        """The candidate as `to_dict` wrote it (search.json)."""
        return cls(
            Candidate.parse(entry["spec"]),
            entry["params"],
            entry["macs"],
            entry["predicted_ms"],
            entry["calibrated"],
            entry["fits"],
        )


@lru_cache(maxsize=4096)
def candidate_cost(
    spec: str, input_shape: tuple[int, ...], num_classes: int, precision: str = "fp32"
) -> ModelCost:
    """Per-layer cost of a candidate, from its family (memoised: costs depend on the
    architecture only)."""
    candidate = Candidate.parse(spec)
    return FAMILIES.get(candidate.family).cost(candidate, input_shape, num_classes, precision)


def score(
    candidates: list[Candidate],
    model: LatencyModel,
    input_shape: tuple[int, ...],
    num_classes: int,
    budget_ms: float,
    progress: ProgressFn = no_progress,
) -> list[ScoredCandidate]:
    """Every candidate with its cost and predicted latency, most capable (most MACs) first."""
    limit = budget_ms * (1 - model.margin())
    scored = []
    for index, candidate in enumerate(candidates):
        cost = candidate_cost(candidate.spec, tuple(input_shape), num_classes, "fp32")
        predicted = float(model.predict(cost))
        scored.append(
            ScoredCandidate(
                candidate,
                cost.params,
                cost.macs,
                predicted,
                model.calibrated,
                bool(predicted <= limit),
            )
        )
        if index % 20 == 0 or index == len(candidates) - 1:
            progress("search", index + 1, len(candidates), candidate.spec)
    return sorted(scored, key=lambda s: (-s.macs, s.predicted_ms))


def pick(scored: list[ScoredCandidate]) -> ScoredCandidate | None:
    """The most capable candidate that fits (capacity proxy: MACs), or None."""
    return next((s for s in scored if s.fits), None)
