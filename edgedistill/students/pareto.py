"""The Pareto view of a search: predicted latency against MACs, the budget line, the choice."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from edgedistill import atomic

if TYPE_CHECKING:
    from edgedistill.students.select import ScoredCandidate


class _Costed(Protocol):
    predicted_ms: float
    macs: int


C = TypeVar("C", bound=_Costed)


def pareto_front(scored: Sequence[C]) -> list[C]:
    """Candidates no other candidate beats on both MACs (more) and predicted latency (less)."""
    front: list[C] = []
    best_macs = -1
    for item in sorted(scored, key=lambda s: (s.predicted_ms, -s.macs)):
        if item.macs > best_macs:
            front.append(item)
            best_macs = item.macs
    return front


def plot_pareto(
    scored: list[ScoredCandidate],
    budget_ms: float,
    margin: float,
    chosen: ScoredCandidate | None,
    path: Path,
    title: str,
) -> None:
    """Save a PNG: every candidate, the Pareto front, the budget (and margin) lines, the choice."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    axes.scatter(
        [s.predicted_ms for s in scored],
        [s.macs / 1e6 for s in scored],
        s=10,
        c=["tab:green" if s.fits else "tab:gray" for s in scored],
        alpha=0.6,
        label="candidates (green: predicted to fit)",
    )
    front = pareto_front(scored)
    axes.plot(
        [s.predicted_ms for s in front],
        [s.macs / 1e6 for s in front],
        "-",
        color="tab:blue",
        linewidth=1,
        label="Pareto front",
    )
    axes.axvline(budget_ms, color="tab:red", linestyle="-", label=f"budget {budget_ms:g} ms")
    axes.axvline(
        budget_ms * (1 - margin),
        color="tab:red",
        linestyle=":",
        label=f"budget minus {margin:.0%} margin",
    )
    if chosen is not None:
        axes.scatter(
            [chosen.predicted_ms],
            [chosen.macs / 1e6],
            s=120,
            marker="*",
            color="tab:orange",
            edgecolor="black",
            zorder=5,
            label=f"chosen {chosen.candidate.spec}",
        )
    axes.set_xlabel("predicted p90 latency (ms)")
    axes.set_ylabel("MACs (millions)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic.write_bytes(path, buffer.getvalue())
