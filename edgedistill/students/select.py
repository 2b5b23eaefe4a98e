"""Score every candidate of the search space on a device and pick the most capable that fits."""

from __future__ import annotations

from dataclasses import dataclass

from edgedistill.latency.costs import ModelCost
from edgedistill.latency.model import LatencyModel
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.students import Candidate
from edgedistill.students.cost_table import costs_for


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


def candidate_cost(
    spec: str, input_shape: tuple[int, ...], num_classes: int, precision: str = "fp32"
) -> ModelCost:
    """Per-layer cost of a candidate, from its family (kept on disk: costs depend on the
    architecture only, students/cost_table.py)."""
    return costs_for([spec], tuple(input_shape), num_classes, precision)[spec]


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
    progress("search", 0, len(candidates), "pricing the candidates")
    table = costs_for([c.spec for c in candidates], tuple(input_shape), num_classes, "fp32")
    for index, candidate in enumerate(candidates):
        cost = table[candidate.spec]
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
