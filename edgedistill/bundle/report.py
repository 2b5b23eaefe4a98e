"""report.html: one self-contained page (inline CSS and SVG, no script, no network) that tells
a reader what a `fit` run shipped and why, drawn from its summary.json and search.json."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgedistill import atomic
from edgedistill.bundle import plots
from edgedistill.errors import UserInputError, describe_validation
from edgedistill.records.evaluation import Evaluation
from edgedistill.records.measurements import MeasuredLatency
from edgedistill.records.quant import QuantResult
from edgedistill.records.summary import RunSummary

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
NOT_MEASURED = "not measured"

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       max-width: 1100px; margin: 0 auto; padding: 1.5em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f5f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 1.2em; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.92em; }
.verdict { padding: 0.8em 1em; border-radius: 6px; font-size: 1.1em; margin: 1em 0; }
.fits { background: #e6f4ea; border: 1px solid #34a853; }
.misses { background: #fce8e6; border: 1px solid #d93025; }
.warnings { background: #fff4ce; border: 2px solid #f9ab00; padding: 0.6em 1em;
            border-radius: 6px; }
.what { color: #444; font-style: italic; }
figure { margin: 0.8em 0; } figure svg { max-width: 100%; height: auto; }
.muted { color: #666; } nav { font-size: 0.9em; margin-top: 1em; }
"""


def write_report(run_dir: Path) -> Path:
    """Render run_dir/summary.json (and search.json, where present) into run_dir/report.html,
    written atomically; returns its path."""
    run_dir = Path(run_dir)
    summary = load_summary(run_dir / "summary.json")
    search = load_search(run_dir / "search.json")
    path = run_dir / REPORT_NAME
    atomic.write_text(path, render_report(summary, search))
    return path


def load_summary(path: Path) -> RunSummary:
    if not path.is_file():
        raise UserInputError(f"{path}: no run summary here (is this the --out of a fit run?)")
    try:
        return RunSummary.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise UserInputError(f"{path}: not a run summary: {describe_validation(exc)}") from exc


def load_search(path: Path) -> dict[str, Any] | None:
    """search.json as written by the search stage, or None where it is absent or unreadable."""
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("report: %s unreadable (%s); the candidates are left out", path, exc)
        return None
    return document if isinstance(document, dict) else None


def render_report(summary: RunSummary, search: dict[str, Any] | None = None) -> str:
    """The whole page as text: header, then one section per question a reader asks."""
    sections = [
        ("pareto", "1. Which student, and why this one", _pareto_section),
        ("comparison", "2. Teacher against student", _comparison_section),
        ("per-class", "3. Per-class accuracy against the teacher", _per_class_section),
        ("latency", "4. Latency distribution", _latency_section),
        ("prediction", "5. Predicted against measured latency", _prediction_section),
        ("artifacts", "6. Artifacts", _artifacts_section),
        ("cascade", "7. Student → teacher cascade", _cascade_section),
    ]
    links = " · ".join(f'<a href="#{anchor}">{_e(title[3:])}</a>' for anchor, title, _ in sections)
    body = [_header(summary), f"<nav>{links}</nav>\n"]
    for anchor, title, build in sections:
        body.append(f'<section id="{anchor}">\n<h2>{_e(title)}</h2>\n')
        body.append(_guarded(build, summary, search, title))
        body.append("</section>\n")
    title = f"edgedistill: {summary.task.name} on {summary.device}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "".join(body)
        + f'<p class="muted">edgedistill {_e(summary.edgedistill_version)}, seed {summary.seed}.'
        "</p>\n</body>\n</html>\n"
    )


Section = Callable[[RunSummary, "dict[str, Any] | None"], str]


def _guarded(build: Section, summary: RunSummary, search: dict | None, title: str) -> str:
    """One section; a figure that cannot be drawn costs that section, never the report."""
    try:
        return build(summary, search)
    except Exception as exc:  # noqa: BLE001 - the report of a finished run must still be written
        log.warning("report: section %r failed: %s", title, exc, exc_info=True)
        return f'<p class="warnings">This section could not be drawn: {_e(repr(exc))}</p>\n'


# ---------------------------------------------------------------------------------- formatting


def _e(value: Any) -> str:
    """Any value from the files as HTML text."""
    return html.escape(str(value), quote=True)


def _what(text: str) -> str:
    return f'<p class="what">{_e(text)}</p>\n'


def _figure(svg: str) -> str:
    return f"<figure>\n{svg}\n</figure>\n"


def _ms(value: float | None) -> str:
    return NOT_MEASURED if value is None else f"{value:.4g} ms"


def _score(value: float | None, metric: str) -> str:
    if value is None:
        return NOT_MEASURED
    return f"{value * 100:.2f} %" if metric == "accuracy" else f"{value:.4f}"


OUTPUT_WORDS = {"regression": "outputs", "embedding": "embedding values"}


def _metric_name(metric: str) -> str:
    return {"accuracy": "accuracy", "r2": "R²", "cosine": "mean cosine"}.get(metric, metric)


def _count(value: float | None) -> str:
    if value is None:
        return "unknown"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {suffix}"
    return f"{value:g}"


def _bytes(value: int | None) -> str:
    if value is None:
        return "unknown"
    for scale, suffix in ((1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= scale:
            return f"{value / scale:.1f} {suffix}"
    return f"{value} B"


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    numeric: frozenset[int] | set[int] = frozenset(),
) -> str:
    """A table of escaped cells; columns in `numeric` are right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    lines = [f"<table>\n<tr>{head}</tr>"]
    for row in rows:
        cells = "".join(
            f'<td class="num">{_e(cell)}</td>' if i in numeric else f"<td>{_e(cell)}</td>"
            for i, cell in enumerate(row)
        )
        lines.append(f"<tr>{cells}</tr>")
    return "\n".join(lines) + "\n</table>\n"


def _list(items: Sequence[str], css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<ul{attribute}>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>\n"


# -------------------------------------------------------------------------------------- header


def _where(latency: MeasuredLatency) -> str:
    """Where and how a measurement was taken, in words."""
    parts = [f"on {latency.measured_on or 'an unnamed machine'}"]
    if latency.target and latency.target != latency.measured_on:
        parts.append(f"target {latency.target}")
    if latency.runtime:
        parts.append(latency.runtime)
    if latency.threads:
        parts.append(f"{latency.threads} thread{'s' if latency.threads > 1 else ''}")
    if latency.runs:
        parts.append(f"{latency.runs} runs")
    if latency.validity:
        parts.append(f"validity {latency.validity}")
    return ", ".join(parts)


def _basis(summary: RunSummary) -> str:
    """Why `fits_budget` says what it says, in one sentence."""
    latency = summary.latency_ms
    basis = summary.fits_budget_basis
    if basis == "predicted":
        return (
            f"judged on the prediction: predicted p90 {_ms(latency.predicted)} "
            f"({'calibrated' if latency.calibrated else 'uncalibrated'} latency model); "
            "nothing timed the shipped artifact on the device"
        )
    figure = "p95" if basis.startswith("measured_p95") else "p90"
    value = latency.p95 if figure == "p95" else latency.p90
    sentence = f"judged on the measured {figure} {_ms(value)} ({_where(latency)})"
    if basis.endswith("_not_deployed"):
        timed = " ".join(v for v in (latency.format, latency.precision) if v) or "another file"
        sentence += f"; the timed file ({timed}) stands in for the artifact that ships"
    return sentence


def _student_scores(summary: RunSummary) -> str:
    """The deployed score, then the fp32 one (and PTQ / QAT ones of an int8 run)."""
    student, quant, metric = summary.student, summary.quantization, summary.student.metric
    scores = [
        f"{_score(student.accuracy, metric)} (deployed artifact)",
        f"fp32 PyTorch {_score(student.accuracy_fp32, metric)}",
    ]
    ptq = quant.accuracy_ptq if quant else student.accuracy_ptq
    if ptq is not None:
        scores.append(f"int8 PTQ {_score(ptq, metric)}")
    if quant is not None and quant.accuracy_qat is not None:
        scores.append(f"int8 QAT {_score(quant.accuracy_qat, metric)}")
    return "; ".join(scores)


def _header(summary: RunSummary) -> str:
    student, teacher, latency = summary.student, summary.teacher, summary.latency_ms
    metric = student.metric
    verdict = "fits" if summary.fits_budget else "misses"
    verdict_text = (
        f"{'Fits' if summary.fits_budget else 'Does not fit'} the budget of "
        f"{summary.budget_ms:g} ms on {summary.device}: {_basis(summary)}."
    )
    shipped = [
        f"{a.format} {a.precision}: {a.path}"
        + (" (the file timed)" if a.sha256 and a.sha256 == latency.artifact_sha256 else "")
        for a in summary.artifacts
    ]
    teacher_name = teacher.source or teacher.form
    facts = [
        ("device", summary.device),
        ("latency budget", f"{summary.budget_ms:g} ms per inference (batch 1)"),
        ("task", f"{summary.task.name} ({summary.task.task_type}, {len(summary.task.labels)} "
                 f"{OUTPUT_WORDS.get(summary.task.task_type, 'classes')})"),
        ("shipped", "; ".join(shipped) or "no artifact was written"),
        ("precision", student.precision),
        ("student", f"{student.spec}: {_count(student.params)} params, "
                    f"{_count(student.macs)} MACs"),
        ("teacher", f"{teacher_name}: {_count(teacher.params)} params, "
                    f"{_count(teacher.macs)} MACs, {_metric_name(teacher.metric)} "
                    f"{_score(teacher.accuracy, teacher.metric)}"),
        (f"student {_metric_name(metric)}", _student_scores(summary)),
        ("retention", "unknown" if summary.retention is None
         else f"{summary.retention * 100:.1f} % of the teacher's {_metric_name(metric)}"),
        ("latency", f"predicted p90 {_ms(latency.predicted)}; measured p50 {_ms(latency.p50)}, "
                    f"p90 {_ms(latency.p90)}"
                    + (f" ({_where(latency)})" if latency.measured_on else "")),
    ]  # fmt: skip
    parts = [
        f"<header>\n<h1>{_e(summary.task.name)} → {_e(summary.device)}</h1>\n",
        f'<div class="verdict {verdict}">{_e(verdict_text)}</div>\n',
    ]
    if summary.warnings:
        parts.append(
            '<div class="warnings" id="warnings"><strong>Warnings: figures that point at a '
            "likely mistake</strong>\n" + _list(summary.warnings) + "</div>\n"
        )
    parts.append('<dl class="facts">\n')
    parts.extend(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>\n" for k, v in facts)
    parts.append("</dl>\n</header>\n")
    return "".join(parts)


# ------------------------------------------------------------------------------------ sections


def _candidates(search: dict[str, Any]) -> list[plots.Candidate]:
    found = []
    for entry in search.get("candidates") or []:
        try:
            found.append(
                plots.Candidate(
                    spec=str(entry["spec"]),
                    macs=int(entry["macs"]),
                    params=int(entry["params"]),
                    predicted_ms=float(entry["predicted_ms"]),
                    fits=bool(entry["fits"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return found


def _verified(search: dict[str, Any] | None) -> list[plots.Timing]:
    """Candidates `--verify-on-device` measured (search.json), as timings."""
    timings = []
    for entry in (search or {}).get("verified_on_device") or []:
        if isinstance(entry, dict) and entry.get("predicted_ms") is not None:
            measured = entry.get("p90_ms")
            timings.append(
                plots.Timing(
                    label=str(entry.get("spec", "?")),
                    predicted_ms=float(entry["predicted_ms"]),
                    measured_ms=None if measured is None else float(measured),
                    kind="p90",
                )
            )
    return timings


def _pareto_section(summary: RunSummary, search: dict[str, Any] | None) -> str:
    latency = summary.latency_ms
    if search is None:
        return _what(
            "search.json is not in this run directory, so the candidates the search scored "
            f"cannot be shown; the chosen student {summary.student.spec} was predicted at "
            f"{_ms(latency.predicted)}."
        )
    candidates = _candidates(search)
    margin = search.get("margin", latency.margin)
    chosen = next((c for c in candidates if c.spec == search.get("chosen")), None)
    measured = _verified(search)
    if latency.p90 is not None:
        measured.append(
            plots.Timing(summary.student.spec, latency.predicted, latency.p90, "p90 (shipped)")
        )
    macs_of = {c.spec: c.macs for c in candidates}
    fitting = sum(c.fits for c in candidates)
    text = (
        f"Each dot is one of the {len(candidates)} candidate students the search scored: its "
        "predicted p90 latency on the device (x) against its capacity in multiply-accumulates "
        f"(y). {fitting} are predicted within the budget minus the safety margin "
        f"({float(margin or 0):.0%}, the dotted line); the search picks the one with the most "
        f"MACs among them (the star). "
    )
    if latency.p90 is not None:
        text += "The diamond is the shipped student's measured p90, joined to its prediction."
    return _what(text) + _figure(
        plots.pareto_svg(candidates, summary.budget_ms, margin, chosen, measured, macs_of)
    )


def _comparison_section(summary: RunSummary, search: dict[str, Any] | None) -> str:
    teacher, student, quant = summary.teacher, summary.student, summary.quantization
    metric = student.metric
    scores: list[tuple[str, float | None, str]] = [
        ("teacher", teacher.accuracy, plots.TEACHER),
        ("student fp32", student.accuracy_fp32, "tab:olive"),
    ]
    if quant is not None or student.accuracy_ptq is not None:
        ptq = quant.accuracy_ptq if quant else student.accuracy_ptq
        scores.append(("int8 PTQ", ptq, "tab:gray"))
    if quant is not None and quant.accuracy_qat is not None:
        scores.append(("int8 QAT", quant.accuracy_qat, "tab:brown"))
    scores.append((f"deployed {student.precision}", student.accuracy, plots.STUDENT))
    sizes = {"params": (teacher.params, student.params), "MACs": (teacher.macs, student.macs)}
    latency = {
        "p50": (teacher.latency_ms.p50, summary.latency_ms.p50),
        "p90": (teacher.latency_ms.p90, summary.latency_ms.p90),
    }
    name = _metric_name(metric)
    rows = [[label, _score(value, metric)] for label, value, _ in scores]
    text = (
        f"What the teacher costs and scores against the student that ships: {name} on the test "
        "split (the deployed figure is the exported artifact run by its runtime on this host), "
        "size on a log scale, and latency timed the same way for both."
    )
    parts = [
        _what(text),
        _figure(plots.comparison_svg(scores, name, sizes, latency)),
        _table([name, "test split"], rows, {1}),
        _cost_table(summary),
    ]
    if quant is not None:
        parts.append(_quantization(quant, metric))
    return "".join(parts)


def _cost_table(summary: RunSummary) -> str:
    """Params, MACs and latency of teacher and student, and their ratio."""
    teacher, student = summary.teacher, summary.student
    teacher_ms, student_ms = summary.teacher.latency_ms, summary.latency_ms
    rows = [
        ["params", f"{teacher.params:,}", f"{student.params:,}",
         _ratio(student.params, teacher.params)],
        ["MACs", f"{teacher.macs:,}", f"{student.macs:,}", _ratio(student.macs, teacher.macs)],
    ]  # fmt: skip
    for figure in ("p50", "p90"):
        teacher_value, student_value = getattr(teacher_ms, figure), getattr(student_ms, figure)
        rows.append(
            [f"latency {figure}", _ms(teacher_value), _ms(student_value),
             _ratio(student_value, teacher_value)]
        )  # fmt: skip
    return _table(["", "teacher", "student", "student / teacher"], rows, {1, 2, 3})


def _quantization(quant: QuantResult, metric: str) -> str:
    """An int8 run's fp32, PTQ, QAT and shipped figures, and why the shipped one."""
    rows = [
        ["fp32", _score(quant.accuracy_fp32, metric), ""],
        [f"PTQ (calibrated on {quant.calibration_samples} samples)",
         _score(quant.accuracy_ptq, metric), _score(quant.val_accuracy_ptq, metric)],
        ["QAT", _score(quant.accuracy_qat, metric), _score(quant.val_accuracy_qat, metric)],
        ["shipped (fake-quantized, PyTorch)", _score(quant.accuracy, metric), ""],
    ]  # fmt: skip
    return (
        "<h3>int8 quantization</h3>\n"
        + _what(
            f"{quant.scheme}; the shipped student is the {quant.method.upper()} one: {quant.reason}"
        )
        + _table(["figure", "test", "validation"], rows, {1, 2})
        + (_list(quant.notes) if quant.notes else "")
    )


def _ratio(student: float | None, teacher: float | None) -> str:
    if student is None or not teacher:
        return ""
    return f"{student / teacher:.3g}×"


def _evaluation_missing(summary: RunSummary, what: str) -> str:
    if summary.task.task_type != "classification":
        kind = summary.task.task_type
        article = "An" if kind[:1] in "aeiou" else "A"
        return _what(f"{article} {kind} run: {what} apply to classification tasks only.")
    return _what(f"This run's summary has no evaluation section, so {what} are not shown.")


def _per_class_section(summary: RunSummary, search: dict[str, Any] | None) -> str:
    evaluation: Evaluation | None = summary.evaluation
    if evaluation is None or not evaluation.per_class:
        return _evaluation_missing(summary, "per-class figures")
    worst = min(
        (c for c in evaluation.per_class if c.student_accuracy is not None
         and c.teacher_accuracy is not None),
        key=lambda c: c.student_accuracy - c.teacher_accuracy,  # type: ignore[operator]
        default=None,
    )  # fmt: skip
    text = (
        "Each bar is one class of the test split: the student's accuracy minus the teacher's, "
        "in percentage points (below zero: the student loses that class more often than the "
        f"teacher). Figures from {evaluation.artifact} run by {evaluation.runtime}."
    )
    delta = (
        None
        if worst is None or worst.student_accuracy is None or worst.teacher_accuracy is None
        else (worst.student_accuracy - worst.teacher_accuracy) * 100
    )
    if worst is not None and delta is not None and delta < 0:
        text += f" Largest loss: class {worst.label} ({delta:+.1f} points)."
    elif delta is not None:
        text += " No class does worse than with the teacher."
    rows = [
        [c.label, c.count, _score(c.teacher_accuracy, "accuracy"),
         _score(c.student_accuracy, "accuracy"),
         "" if c.student_accuracy is None or c.teacher_accuracy is None
         else f"{(c.student_accuracy - c.teacher_accuracy) * 100:+.1f}"]
        for c in evaluation.per_class
    ]  # fmt: skip
    return (
        _what(text)
        + _figure(plots.per_class_svg(evaluation.per_class))
        + "<details><summary>per-class table</summary>\n"
        + _table(["class", "test samples", "teacher", "student", "Δ points"], rows, {1, 2, 3, 4})
        + "</details>\n"
    )


def _percentiles(latency: MeasuredLatency) -> dict[str, float]:
    figures = {"p50": latency.p50, "p90": latency.p90, "p95": latency.p95, "p99": latency.p99}
    return {name: value for name, value in figures.items() if value is not None}


def _latency_section(summary: RunSummary, search: dict[str, Any] | None) -> str:
    latency, teacher = summary.latency_ms, summary.teacher.latency_ms
    if latency.measured_on is None and not _percentiles(latency):
        return _what(
            f"Nothing timed the student on {summary.device} in this run; fits_budget rests on "
            f"the predicted p90 ({_ms(latency.predicted)})."
        )
    timed = " ".join(v for v in (latency.format, latency.precision) if v)
    panels = [plots.LatencyPanel(f"student {timed}".strip(), latency.histogram,
                                 _percentiles(latency))]  # fmt: skip
    if _percentiles(teacher):
        panels.append(plots.LatencyPanel("teacher", teacher.histogram, _percentiles(teacher)))
    text = (
        "How long one inference took over the timed runs (batch 1), binned; the lines mark "
        f"the percentiles and the budget. Student: {_where(latency)}."
    )
    if _percentiles(teacher):
        text += f" Teacher: {_where(teacher)}."
    if latency.histogram is None:
        text += " The per-run times were not recorded, so only the percentiles are drawn."
    parts = [_what(text), _figure(plots.latency_svg(panels, summary.budget_ms))]
    if latency.by_target:
        parts.append("<h3>By lab target</h3>\n" + _by_target_table(latency.by_target))
    if latency.validity_reasons or latency.audit_detail:
        parts.append(_list([*latency.validity_reasons, *filter(None, [latency.audit_detail])]))
    return "".join(parts)


def _by_target_table(by_target: dict[str, MeasuredLatency]) -> str:
    """Each lab target's figures, and how far to trust them (validity, output audit)."""
    rows = []
    for name, measured in by_target.items():
        validity = "; ".join([measured.validity or "", *measured.validity_reasons]).strip("; ")
        rows.append(
            [name, _ms(measured.p50), _ms(measured.p90), _ms(measured.p95), _ms(measured.p99),
             measured.runtime or "", validity, measured.audit or ""]
        )  # fmt: skip
    headers = ["target", "p50", "p90", "p95", "p99", "runtime", "validity", "audit"]
    return _table(headers, rows, {1, 2, 3, 4})


def _prediction_section(summary: RunSummary, search: dict[str, Any] | None) -> str:
    latency = summary.latency_ms
    timings = [
        plots.Timing("shipped student", latency.predicted, latency.p50, "p50"),
        plots.Timing("shipped student", latency.predicted, latency.p90 or latency.p95,
                     "p90" if latency.p90 is not None else "p95"),
    ]  # fmt: skip
    for name, measured in latency.by_target.items():
        timings.append(plots.Timing(f"target {name}", latency.predicted, measured.p90, "p90"))
    timings += _verified(search)
    model = f"{'calibrated' if latency.calibrated else 'uncalibrated'} latency model"
    if not any(t.measured_ms is not None for t in timings):
        return _what(
            f"Only predicted: the {model} put the student at {_ms(latency.predicted)} p90; "
            "nothing was measured to compare with."
        )
    text = (
        f"Each point is a latency the {model} predicted (x) against what was measured (y); on "
        "the diagonal the prediction was exact, above it the device was slower than predicted. "
        "Candidates measured by --verify-on-device appear too."
    )
    measured = latency.p90 if latency.p90 is not None else latency.p95
    if measured is not None and latency.predicted:
        error = (measured - latency.predicted) / latency.predicted
        text += (
            f" The shipped student's measured {'p90' if latency.p90 is not None else 'p95'} is "
            f"{abs(error):.0%} {'above' if error > 0 else 'below'} its prediction (the search "
            f"kept a {latency.margin:.0%} margin)."
        )
    return _what(text) + _figure(plots.predicted_measured_svg(timings, summary.budget_ms))


def _artifacts_section(summary: RunSummary, search: dict[str, Any] | None) -> str:
    rows = [
        [
            a.format, a.precision, a.path, _bytes(a.bytes),
            (a.sha256 or "")[:12], a.validation or "not validated",
            "" if a.max_abs_diff is None else f"{a.max_abs_diff:.3g}",
            "" if a.argmax_agreement is None else f"{a.argmax_agreement:.2%}",
            _score(a.accuracy, summary.student.metric) if a.accuracy is not None else "",
            a.validated_with or "", a.built_from or "",
        ]
        for a in summary.artifacts
    ]  # fmt: skip
    headers = ["format", "precision", "path", "size", "sha256", "validation", "max |diff|",
               "argmax agreement", _metric_name(summary.student.metric), "validated with",
               "built from"]  # fmt: skip
    artifact_notes = [f"{a.path}: {note}" for a in summary.artifacts for note in a.notes]
    parts = [
        _what(
            "The files that ship (paths relative to the run directory), each run by its own "
            "runtime on this host where one exists and compared with the PyTorch student: "
            "max |diff| of the outputs, how often the top class agrees, and the test-split "
            "score of the file itself. sha256 is shortened; bundle/manifest.json has it whole."
        ),
        _table(headers, rows, {3, 6, 7, 8}),
        _list(artifact_notes) if artifact_notes else "",
    ]
    if summary.pending:
        parts.append("<h3>Pending: not produced here</h3>\n" + _list(summary.pending))
    if summary.warnings or summary.notes:
        warned = set(summary.warnings)
        notes = [n for n in summary.notes if n not in warned]
        parts.append(
            "<h3>Notes</h3>\n"
            + ('<div class="warnings">' + _list(summary.warnings) + "</div>\n" if warned else "")
            + (_list(notes) if notes else "")
        )
    return "".join(parts)


def _cascade_section(summary: RunSummary, search: dict[str, Any] | None) -> str:
    evaluation = summary.evaluation
    if evaluation is None:
        return _evaluation_missing(summary, "the cascade and its curve")
    cascade = evaluation.cascade
    test = cascade.test
    sentence = (
        f"Inputs whose max probability is at least τ = {cascade.threshold:.3g} stay on the "
        f"device ({test.coverage:.1%} of test inputs), the rest go to the teacher; cascade "
        f"accuracy {test.accuracy:.2%} vs teacher {test.teacher_accuracy:.2%} (student alone "
        f"{test.student_accuracy:.2%}, {test.samples} test inputs)."
    )
    how = (
        "The curve is the validation split: each point is one threshold τ, its coverage (x) "
        "and the accuracy of the cascade's answers over all inputs (y). τ is the one with the "
        "highest coverage whose cascade accuracy stays within "
        f"{cascade.target_drop * 100:g} points of the teacher (the dotted line)."
    )
    if not cascade.met:
        how += " No τ met that target on validation, so τ sends every input to the teacher."
    return (
        f'<p class="cascade-sentence"><strong>{_e(sentence)}</strong></p>\n'
        + _what(how)
        + _figure(plots.cascade_svg(cascade, evaluation.confidence))
    )
