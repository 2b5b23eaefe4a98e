"""The report's figures as inline SVG text: matplotlib `Figure` objects (no pyplot state), each
drawn from plain numbers and records, text kept as text (small, selectable, escaped)."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgedistill.students.pareto import pareto_front

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from edgedistill.records.evaluation import CascadePolicy, ClassFigures, ConfidenceProfile
    from edgedistill.records.measurements import LatencyHistogram

TEACHER = "tab:blue"
STUDENT = "tab:orange"
BUDGET = "tab:red"
CHOSEN = "tab:orange"
FITS = "tab:green"
MISSES = "tab:gray"
_MAX_TICK_LABELS = 40


@dataclass(frozen=True)
class Candidate:
    """One scored candidate of search.json, as the Pareto plot needs it."""

    spec: str
    macs: int
    params: int
    predicted_ms: float
    fits: bool


@dataclass(frozen=True)
class Timing:
    """A predicted latency and what was measured for it (None: not measured)."""

    label: str
    predicted_ms: float
    measured_ms: float | None
    kind: str  # "p50" or "p90": which figure `measured_ms` is


@dataclass(frozen=True)
class LatencyPanel:
    """One latency distribution: the binned per-run times (if known) and its percentiles."""

    title: str
    histogram: LatencyHistogram | None
    percentiles: dict[str, float]  # "p50" -> ms, only those measured


def render(draw: Callable[[Figure], None], name: str, size: tuple[float, float]) -> str:
    """Draw a figure with `draw` and return it as an `<svg>` element (no XML prolog). `name`
    salts the element ids, so several figures can share one HTML page."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    style = {
        "svg.fonttype": "none",  # text stays text: a tenth of the size of glyph paths
        "svg.hashsalt": f"edgedistill-{name}",
        "text.parse_math": False,  # labels are user data: "$x$" is not mathtext
        "font.size": 9,
        "axes.titlesize": 10,
        "legend.fontsize": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with matplotlib.rc_context(style):
        figure = Figure(figsize=size, dpi=96, layout="constrained")
        FigureCanvasAgg(figure)  # never pyplot: no global figure registry, no GUI backend
        draw(figure)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :].strip()


def _fit_scale(axes: Axes, values: Sequence[float], axis: str = "x", span: float = 10) -> None:
    """Log scale where the values span more than `span`×, ticks in plain numbers (1, 2, 5 per
    decade): a loose budget beside fast candidates must not squash them into one column."""
    positive = [v for v in values if v > 0]
    if not positive or max(positive) / min(positive) <= span:
        return
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    getattr(axes, f"set_{axis}scale")("log")
    target = axes.xaxis if axis == "x" else axes.yaxis
    target.set_label_text(f"{target.get_label_text()} (log scale)")
    target.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    target.set_minor_formatter(NullFormatter())


def _empty(axes: Axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="0.4")
    axes.set_xticks([])
    axes.set_yticks([])


def pareto_svg(
    candidates: Sequence[Candidate],
    budget_ms: float,
    margin: float | None,
    chosen: Candidate | None,
    measured: Sequence[Timing] = (),
    macs_of: dict[str, int] | None = None,
) -> str:
    """Predicted latency (x) against MACs (y) of every candidate, the Pareto front, the budget
    and budget × (1 − margin) lines, the chosen candidate, and measured latencies (`measured`,
    placed at the MACs `macs_of` gives their label) joined to their prediction."""
    macs_of = macs_of or {}

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        if not candidates:
            _empty(axes, "search.json lists no candidates")
            return
        for fits, colour, label in ((True, FITS, "predicted to fit"), (False, MISSES, "too slow")):
            group = [c for c in candidates if c.fits is fits]
            if group:
                axes.scatter(
                    [c.predicted_ms for c in group],
                    [c.macs / 1e6 for c in group],
                    s=9,
                    color=colour,
                    alpha=0.55,
                    linewidths=0,
                    label=f"candidates {label} ({len(group)})",
                )
        front = pareto_front(candidates)
        axes.plot(
            [c.predicted_ms for c in front],
            [c.macs / 1e6 for c in front],
            color="tab:blue",
            linewidth=1,
            label="Pareto front",
        )
        axes.axvline(budget_ms, color=BUDGET, label=f"budget {budget_ms:g} ms")
        if margin:
            axes.axvline(
                budget_ms * (1 - margin),
                color=BUDGET,
                linestyle=":",
                label=f"budget × (1 − {margin:.0%} margin)",
            )
        if chosen is not None:
            axes.scatter(
                [chosen.predicted_ms],
                [chosen.macs / 1e6],
                s=160,
                marker="*",
                color=CHOSEN,
                edgecolors="black",
                zorder=5,
                label=f"chosen {chosen.spec} (predicted)",
            )
        for timing in measured:
            macs = macs_of.get(timing.label)
            if macs is None or timing.measured_ms is None:
                continue
            y = macs / 1e6
            axes.plot([timing.predicted_ms, timing.measured_ms], [y, y], color="black", lw=0.8)
            axes.scatter(
                [timing.measured_ms],
                [y],
                s=60,
                marker="D",
                facecolors="none",
                edgecolors="black",
                zorder=6,
                label=f"{timing.label}: measured {timing.kind}",
            )
        axes.set_xlabel("predicted p90 latency (ms)")
        axes.set_ylabel("MACs (millions)")
        xs = [c.predicted_ms for c in candidates] + [budget_ms]
        _fit_scale(axes, xs + [t.measured_ms for t in measured if t.measured_ms is not None])
        _fit_scale(axes, [c.macs / 1e6 for c in candidates], "y")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right")

    return render(draw, "pareto", (8.0, 4.8))


def comparison_svg(
    scores: Sequence[tuple[str, float | None, str]],
    metric: str,
    sizes: dict[str, tuple[float | None, float | None]],
    latency: dict[str, tuple[float | None, float | None]],
) -> str:
    """Teacher against student in three panels: the score (`scores`: label, value, colour),
    params and MACs (`sizes`: name -> (teacher, student)), latency p50/p90 (`latency`: same)."""

    def draw(figure: Figure) -> None:
        score_axes, size_axes, latency_axes = figure.subplots(1, 3, width_ratios=[1.4, 1, 1])
        shown = [(label, value, colour) for label, value, colour in scores if value is not None]
        if shown:
            bars = score_axes.bar(
                range(len(shown)), [v for _, v, _ in shown], color=[c for _, _, c in shown]
            )
            score_axes.bar_label(bars, fmt="%.3f", fontsize=7)
            score_axes.set_xticks(range(len(shown)), [label for label, _, _ in shown], rotation=20)
            low = min(v for _, v, _ in shown)
            score_axes.set_ylim(min(0.0, low), max(1.0, max(v for _, v, _ in shown)) * 1.08)
            score_axes.set_title(f"{metric} (test split)")
        else:
            _empty(score_axes, f"no {metric} recorded")
        _paired_bars(size_axes, sizes, "size (teacher / student, log scale)", log=True)
        _paired_bars(latency_axes, latency, "latency ms (teacher / student)", log=False)

    return render(draw, "comparison", (10.0, 3.6))


def _paired_bars(
    axes: Axes, pairs: dict[str, tuple[float | None, float | None]], title: str, log: bool
) -> None:
    """Teacher and student side by side for each name; a missing figure leaves a gap."""
    if not any(v is not None for pair in pairs.values() for v in pair):
        _empty(axes, "not measured")
        axes.set_title(title)
        return
    names = list(pairs)
    for offset, who, colour, index in ((-0.2, "teacher", TEACHER, 0), (0.2, "student", STUDENT, 1)):
        xs = [i + offset for i, name in enumerate(names) if pairs[name][index] is not None]
        ys = [pairs[name][index] for name in names if pairs[name][index] is not None]
        bars = axes.bar(xs, ys, width=0.4, color=colour, label=who)
        axes.bar_label(bars, labels=[_short(float(v)) for v in ys], fontsize=7)
    axes.set_xticks(range(len(names)), names)
    if log:
        from matplotlib.ticker import FuncFormatter, NullFormatter

        axes.set_yscale("log")
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _short(value)))
        axes.yaxis.set_minor_formatter(NullFormatter())
    axes.margins(y=0.2)
    axes.set_title(title)
    axes.legend(loc="best")


def _short(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def per_class_svg(per_class: Sequence[ClassFigures]) -> str:
    """Student accuracy minus teacher accuracy per class, in points; classes without a test
    sample are left empty and marked."""
    count = len(per_class)

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        deltas = [
            None
            if c.student_accuracy is None or c.teacher_accuracy is None
            else (c.student_accuracy - c.teacher_accuracy) * 100
            for c in per_class
        ]
        xs = [i for i, d in enumerate(deltas) if d is not None]
        ys = [d for d in deltas if d is not None]
        colours = [FITS if d >= 0 else BUDGET for d in ys]
        axes.bar(xs, ys, color=colours)
        for i, delta in enumerate(deltas):
            if delta is None:
                axes.text(i, 0, "no test\nsample", ha="center", va="bottom", fontsize=6)
        axes.axhline(0, color="black", linewidth=0.8)
        step = max(1, -(-count // _MAX_TICK_LABELS))
        ticks = list(range(0, count, step))
        names = [_clip(per_class[i].label) for i in ticks]
        rotate = count > 12 or max((len(n) for n in names), default=0) > 3
        axes.set_xticks(ticks, names, rotation=90 if rotate else 0)
        axes.set_xlim(-0.6, count - 0.4)
        axes.set_ylabel("student − teacher (points)")
        axes.set_xlabel("class")
        axes.grid(axis="y", alpha=0.3)
        if ys and all(abs(d) < 1e-9 for d in ys):
            axes.set_ylim(-1, 1)

    width = min(14.0, max(6.0, 0.3 * count))
    return render(draw, "per-class", (width, 3.6 if count <= 12 else 4.2))


def _clip(label: str, limit: int = 18) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def latency_svg(panels: Sequence[LatencyPanel], budget_ms: float) -> str:
    """One panel per distribution: the histogram of per-run times where known (else the
    percentiles alone), p50/p90/p99 and the budget as vertical lines."""

    def draw(figure: Figure) -> None:
        axes_list = figure.subplots(1, len(panels), squeeze=False)[0]
        for axes, panel in zip(axes_list, panels, strict=True):
            _latency_panel(axes, panel, budget_ms)

    return render(draw, "latency", (5.0 * len(panels) if len(panels) > 1 else 8.0, 3.6))


_PERCENTILE_STYLE = {"p50": "-", "p90": "--", "p95": "-.", "p99": ":"}


def _latency_panel(axes: Axes, panel: LatencyPanel, budget_ms: float) -> None:
    histogram = panel.histogram
    shown = list(panel.percentiles.values())
    if histogram is not None and histogram.counts:
        axes.stairs(histogram.counts, histogram.edges_ms, fill=True, color="tab:blue", alpha=0.5)
        axes.set_ylabel("runs")
        shown += [histogram.edges_ms[0], histogram.edges_ms[-1]]
        # a few slow outliers beside thousands of runs in one bin: log counts show both
        _fit_scale(axes, [c for c in histogram.counts if c > 0], "y", span=50)
    else:
        axes.set_yticks([])
        axes.text(
            0.02, 0.95, "per-run times not recorded", transform=axes.transAxes, va="top", fontsize=7
        )
    for name, value in panel.percentiles.items():
        axes.axvline(
            value,
            color="black",
            linestyle=_PERCENTILE_STYLE.get(name, "-"),
            linewidth=1,
            label=f"{name} {value:.4g} ms",
        )
    if not shown or budget_ms <= 3 * max(shown):
        axes.axvline(budget_ms, color=BUDGET, linewidth=1.5, label=f"budget {budget_ms:g} ms")
        shown.append(budget_ms)
    else:  # a budget far to the right would squash the distribution into one bar
        axes.plot([], [], color=BUDGET, label=f"budget {budget_ms:g} ms (off the scale, right)")
    if shown:
        spread = max(shown) - min(shown) or max(shown) * 0.1 or 1.0
        axes.set_xlim(max(0.0, min(shown) - 0.1 * spread), max(shown) + 0.1 * spread)
    axes.set_xlabel("latency per run (ms)")
    axes.set_title(panel.title)
    axes.legend(loc="upper right")


def predicted_measured_svg(timings: Sequence[Timing], budget_ms: float) -> str:
    """Measured (y) against predicted (x) latency: the diagonal is a perfect prediction; the
    budget is drawn on both axes."""

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        shown = [t for t in timings if t.measured_ms is not None]
        values = [budget_ms]
        values += [t.predicted_ms for t in shown] + [t.measured_ms or 0.0 for t in shown]
        low, high = min(values) / 1.3, max(values) * 1.3
        log = high / low > 20 * 1.3 * 1.3
        if not log:
            low = 0.0
        axes.plot(
            [low, high], [low, high], color="0.5", linewidth=0.8, label="measured = predicted"
        )
        axes.axvline(budget_ms, color=BUDGET, linestyle=":", linewidth=1)
        axes.axhline(budget_ms, color=BUDGET, linewidth=1, label=f"budget {budget_ms:g} ms")
        markers = {"p50": "o", "p90": "s", "p95": "s", "p99": "^"}
        for timing in shown:
            axes.scatter(
                [timing.predicted_ms],
                [timing.measured_ms],
                marker=markers.get(timing.kind, "D"),
                s=45,
                zorder=5,
                label=f"{timing.label} ({timing.kind})",
            )
        axes.set_xlim(low, high)
        axes.set_ylim(low, high)
        axes.set_xlabel("predicted p90 (ms)")
        axes.set_ylabel("measured (ms)")
        if log:
            _fit_scale(axes, values, "x")
            _fit_scale(axes, values, "y")
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left")

    return render(draw, "predicted-measured", (6.4, 4.4))


def cascade_svg(cascade: CascadePolicy, confidence: ConfidenceProfile | None) -> str:
    """Left: the validation curve, coverage (x) against cascade accuracy (y), the teacher and
    the target lines, the chosen τ on validation and test. Right: the student's max-probability
    distribution with τ (where the run recorded it)."""

    def draw(figure: Figure) -> None:
        if confidence is not None:
            curve_axes, confidence_axes = figure.subplots(1, 2, width_ratios=[1.5, 1])
        else:
            curve_axes, confidence_axes = figure.add_subplot(), None
        _cascade_curve(curve_axes, cascade)
        if confidence_axes is not None and confidence is not None:
            _confidence(confidence_axes, confidence, cascade.threshold)

    return render(draw, "cascade", (10.0 if confidence is not None else 7.0, 4.0))


def _cascade_curve(axes: Axes, cascade: CascadePolicy) -> None:
    teacher = cascade.val.teacher_accuracy
    if cascade.curve:
        axes.plot(
            [p.coverage for p in cascade.curve],
            [p.accuracy for p in cascade.curve],
            marker=".",
            markersize=3,
            color="tab:purple",
            label="cascade (validation, one point per τ)",
        )
    axes.axhline(teacher, color=TEACHER, label=f"teacher alone {teacher:.3f}")
    axes.axhline(
        teacher - cascade.target_drop,
        color=TEACHER,
        linestyle=":",
        label=f"target: teacher − {cascade.target_drop * 100:g} points",
    )
    axes.scatter(
        [cascade.val.coverage],
        [cascade.val.accuracy],
        s=160,
        marker="*",
        color=CHOSEN,
        edgecolors="black",
        zorder=5,
        label=f"chosen τ = {cascade.threshold:.3g} (validation)",
    )
    axes.scatter(
        [cascade.test.coverage],
        [cascade.test.accuracy],
        s=50,
        marker="D",
        facecolors="none",
        edgecolors="black",
        zorder=6,
        label="chosen τ on the test split",
    )
    # the curve often spans a few points of coverage near 1: zoom on it, keep 1 in view
    coverages = [p.coverage for p in cascade.curve] + [cascade.val.coverage, cascade.test.coverage]
    low = min(coverages)
    axes.set_xlim(max(-0.02, low - 0.05 * (1.0 - low) - 0.005), 1.005)
    axes.set_xlabel("coverage: share of inputs answered on the device")
    axes.set_ylabel("cascade accuracy")
    axes.grid(alpha=0.3)
    axes.legend(loc="best")


def _confidence(axes: Axes, confidence: ConfidenceProfile, threshold: float) -> None:
    """The cumulative share of inputs below each max-probability (the bins may be quantiles,
    so a cumulative curve reads right whatever their widths): the device keeps what lies
    at or above τ."""
    if len(confidence.edges) == len(confidence.shares) + 1 and confidence.shares:
        cumulative = [0.0]
        for share in confidence.shares:
            cumulative.append(cumulative[-1] + share)
        axes.plot(confidence.edges, cumulative, color=STUDENT, marker=".", markersize=4)
        axes.set_ylim(0, 1.02)
        # most inputs sit near 1: start just left of τ or of the first decile, whichever is less
        axes.set_xlim(max(0.0, min(threshold, confidence.edges[1]) - 0.05), 1.005)
    else:
        _empty(axes, "confidence bins not recorded")
    axes.axvline(threshold, color="black", linestyle="--", label=f"τ = {threshold:.3g}")
    axes.set_xlabel("student max probability (validation)")
    axes.set_ylabel("share of inputs below")
    axes.set_title(f"device answers {confidence.coverage:.0%} (at or above τ)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
