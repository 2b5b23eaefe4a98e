"""A short Markdown model card rendered from a run summary; missing figures read "not measured"."""

from __future__ import annotations

import json
from typing import Any

from edgedistill.bundle.usage import USAGE, render_usage

NOT_MEASURED = "not measured"
_MAX_LABELS_SHOWN = 20


def _section(mapping: Any, key: str) -> dict[str, Any]:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, dict) else {}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ms(value: Any) -> str:
    return f"{value:.3f} ms" if _is_number(value) else NOT_MEASURED


def _fraction(value: Any) -> str:
    """Accuracy / retention: fractions in [0, 1] as percent, anything else as given."""
    if not _is_number(value):
        return NOT_MEASURED
    return f"{value * 100:.2f} %" if 0 <= value <= 1 else f"{value:g}"


def _decimal(value: Any) -> str:
    return f"{value:.4f}" if _is_number(value) else NOT_MEASURED


def _count(value: Any) -> str:
    if not _is_number(value):
        return "unknown"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {suffix}"
    return f"{value:g}"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _student_description(student: dict[str, Any]) -> str:
    spec = student.get("spec")
    if spec:
        return f"`{spec}`"
    arch = student.get("arch")
    if isinstance(arch, dict) and arch:
        return f"`{json.dumps(arch, sort_keys=True)}`"
    return "A student network"


def _what_it_is(summary: dict[str, Any], task: dict[str, Any]) -> list[str]:
    student = _section(summary, "student")
    fits = summary.get("fits_budget")
    fits_text = ("yes" if fits else "no") if isinstance(fits, bool) else NOT_MEASURED
    return [
        "## What it is",
        "",
        f"{_student_description(student)} for the task **{task.get('name', 'unknown')}**: "
        f"{_count(student.get('params'))} parameters, {_count(student.get('macs'))} MACs, "
        f"deployed at **{student.get('precision', 'unknown')}** precision.",
        "",
        f"- Fits the latency budget: {fits_text}",
    ]


def _intended_use(summary: dict[str, Any]) -> list[str]:
    budget = summary.get("budget_ms")
    budget_text = f"{budget:g} ms" if _is_number(budget) else "unknown"
    return [
        "## Intended use",
        "",
        f"- Device: **{summary.get('device', 'unknown')}**",
        f"- Latency budget: {budget_text} per inference (batch 1)",
        "- Use the artifact matching the device's runtime from the table below, with the "
        "preprocessing given here.",
    ]


_FEEDING = {
    "declared": "as its owner declared it",
    "detected": "as detected: the convention the teacher scored best under on the val split",
    "recipe": "as the task recipe states it",
    "trained-here": "the teacher was trained here on it",
    "dataset": "as the dataset's own transform produces it",
    "tokenizer": "the ids of its own tokenizer (shipped in tokenizer/)",
}


def _feeding_line(feeding: Any) -> list[str]:
    """Whose preprocessing this is: the teacher's, and how the run knew it."""
    if not isinstance(feeding, dict) or feeding.get("how") not in _FEEDING:
        return []
    preset = f" (`{feeding['preset']}`)" if feeding.get("preset") else ""
    return [
        f"- The teacher's preprocessing{preset}, {_FEEDING[feeding['how']]}; the student was "
        "trained and validated on the same, so feed it exactly this."
    ]


def _input_section(task: dict[str, Any], feeding: Any = None) -> list[str]:
    lines = ["## Input and preprocessing", "", *_feeding_line(feeding)]
    shape = task.get("input_shape")
    if isinstance(shape, (list, tuple)):
        lines.append(f"- Input shape: `{list(shape)}`")
    else:
        lines.append("- Input shape: not recorded")
    preprocessing = task.get("preprocessing")
    if isinstance(preprocessing, dict) and preprocessing:
        lines.append("- Preprocessing:")
        lines.extend(f"  - {key}: `{value}`" for key, value in preprocessing.items())
    else:
        lines.append("- Preprocessing: not recorded")
    labels = task.get("labels")
    if task.get("task_type") == "embedding" and isinstance(labels, list):
        lines.append(
            f"- Output: a sentence embedding of {len(labels)} values (compare embeddings by "
            "cosine similarity, as the student was distilled to match the teacher's)"
        )
    elif isinstance(labels, list) and labels:
        shown = ", ".join(str(label) for label in labels[:_MAX_LABELS_SHOWN])
        more = f", … ({len(labels)} in all)" if len(labels) > _MAX_LABELS_SHOWN else ""
        named = "Outputs (regression)" if task.get("task_type") == "regression" else "Labels"
        lines.append(f"- {named} ({len(labels)}): {shown}{more}")
    else:
        lines.append("- Labels: not recorded")
    return lines


def _how_it_was_made(summary: dict[str, Any]) -> list[str]:
    teacher = _section(summary, "teacher")
    precision = _section(summary, "student").get("precision")
    quantization = _section(summary, "quantization")
    then = ""
    if precision == "int8" and quantization.get("method") == "qat":
        then = "fine-tuned quantization-aware at int8 with the same loss (QAT), "
    elif precision == "int8":
        then = "quantized to int8 by calibration only (post-training quantization), "
    return [
        "## How it was made",
        "",
        "Distilled by edgedistill from a teacher with "
        f"{_count(teacher.get('params'))} parameters and {_count(teacher.get('macs'))} MACs "
        "(soft targets at a temperature, Hinton et al. 2015, plus any configured feature "
        f"terms), {then}then exported; each artifact is checked against the PyTorch student "
        "where a host runtime exists.",
        *_quantization_lines(quantization),
    ]


def _quantization_lines(quantization: dict[str, Any]) -> list[str]:
    figures = [
        f"{name} {quantization[key]:.4f}"
        for name, key in (
            ("fp32", "accuracy_fp32"),
            ("PTQ", "accuracy_ptq"),
            ("QAT", "accuracy_qat"),
        )
        if _is_number(quantization.get(key))
    ]
    if not figures:
        return []
    return [
        "",
        f"int8 scheme: {quantization.get('scheme', 'not recorded')}. Test accuracy of the "
        f"PyTorch student (fake-quantized for PTQ and QAT): {', '.join(figures)}; "
        f"ships {quantization.get('method', '?')} ({quantization.get('reason', '')}).",
    ]


_METRIC_LABELS = {"neighbour_agreement": "Nearest-neighbour agreement with the teacher"}
_SCORE_NAMES = {
    "accuracy": "Accuracy",
    "r2": "R²",
    "cosine": "Mean cosine to the teacher's embedding",
}


def _measured_figures(summary: dict[str, Any]) -> list[str]:
    latency = _section(summary, "latency_ms")
    teacher = _section(summary, "teacher")
    student = _section(summary, "student")
    where = latency.get("measured_on")
    threads = latency.get("threads")
    source = f"measured on {where}" if where else "measured (place not recorded)"
    if threads is not None:
        source += f", {threads} thread{'' if threads == 1 else 's'}"
    rows = [
        (f"Latency {key}", _ms(latency.get(key)), source if _is_number(latency.get(key)) else "")
        for key in ("p50", "p90", "p99")
    ]
    metric = student.get("metric", "accuracy")
    score = _SCORE_NAMES.get(metric, "Score")
    shown = _fraction if metric == "accuracy" else _decimal  # R² and cosines as numbers
    rows += [
        ("Latency (predicted)", _ms(latency.get("predicted")), "predicted by the latency model"),
        (f"{score}, deployed artifact", shown(student.get("accuracy")), "held-out split"),
        (f"{score}, fp32 student", shown(student.get("accuracy_fp32")), "held-out split"),
        (f"{score}, teacher", shown(teacher.get("accuracy")), "held-out split"),
        ("Retention (student / teacher)", _fraction(summary.get("retention")), "held-out split"),
    ]
    for name, value in (student.get("metrics") or {}).items():
        if name != student.get("metric"):
            rows.append(
                (
                    f"{_METRIC_LABELS.get(name, name.upper())}, shipped student (PyTorch)",
                    f"{value:.4g}",
                    "held-out split",
                )  # fmt: skip
            )
    lines = ["## Measured figures", "", "| Figure | Value | Source |", "|---|---|---|"]
    lines.extend(f"| {name} | {_cell(value)} | {_cell(src)} |" for name, value, src in rows)
    lines += ["", "Predicted figures are estimates, never measurements."]
    return lines


def _artifacts_table(summary: dict[str, Any]) -> list[str]:
    artifacts = [a for a in summary.get("artifacts") or [] if isinstance(a, dict)]
    lines = ["## Artifacts", ""]
    if not artifacts:
        return [*lines, "No artifacts recorded."]
    lines += [
        "| Format | Precision | Path | sha256 | Max abs diff vs PyTorch | Accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for artifact in artifacts:
        diff = artifact.get("max_abs_diff")
        cells = [
            artifact.get("format", "?"),
            artifact.get("precision", "?"),
            f"`{artifact.get('path', '?')}`",
            f"`{str(artifact.get('sha256', ''))[:12]}…`" if artifact.get("sha256") else "—",
            f"{diff:.3g}" if _is_number(diff) else NOT_MEASURED,
            _fraction(artifact.get("accuracy")),
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return lines


def _how_to_run(summary: dict[str, Any]) -> list[str]:
    """A few lines per shipped file: the runtime, its minimum version, the code that calls it."""
    lines = ["## How to load and call it", ""]
    artifacts = [a for a in summary.get("artifacts") or [] if isinstance(a, dict)]
    shown = 0
    for artifact in artifacts:
        if artifact.get("format") not in USAGE:
            continue
        file = str(artifact.get("path", "model")).removeprefix("bundle/")
        classes = len(_section(summary, "task").get("labels") or [])
        usage, snippets = render_usage(artifact["format"], file, artifact, classes)
        checked = artifact.get("validated_with")
        lines += [f"### `{file}`: {usage.runtime}", "", f"Needs {usage.minimum}."]
        lines += [f"Validated here with {checked}.", ""] if checked else [""]
        for language, code in snippets:
            lines += [f"```{language}", code, "```", ""]
        shown += 1
    if not shown:
        lines.append("No artifact of this bundle has a recorded way to run it.")
    pending = summary.get("pending") or []
    if pending:
        lines += ["Not built here (see why):", *[f"- {_cell(item)}" for item in pending]]
    return lines


def _cascade(summary: dict[str, Any]) -> list[str]:
    """The student -> teacher policy and the drift check, where the run computed them."""
    evaluation = _section(summary, "evaluation")
    cascade = _section(evaluation, "cascade")
    if not cascade:
        return []
    test = _section(cascade, "test")
    tau = cascade.get("threshold")
    lines = ["## When to ask the teacher", ""]
    if cascade.get("met") and _is_number(tau):
        lines += [
            f"Send an input to the teacher when the student's largest softmax probability is "
            f"below **τ = {tau:.4f}**. On the test split that keeps "
            f"{_fraction(test.get('coverage'))} of inputs on the device, with cascade accuracy "
            f"{_fraction(test.get('accuracy'))} against the teacher's "
            f"{_fraction(test.get('teacher_accuracy'))} and the student's alone "
            f"{_fraction(test.get('student_accuracy'))} (τ chosen on the validation split for "
            f"at most {_number(cascade.get('target_drop'), 100)} accuracy points below the "
            "teacher).",
        ]
    else:
        lines.append(
            "No confidence threshold kept the cascade within "
            f"{_number(cascade.get('target_drop'), 100)} accuracy points of the teacher on the "
            "validation split: the student alone is what was measured."
        )
    lines += [
        "",
        "On new data, `edgedistill audit RUN_DIR --data SPEC` compares the student's agreement "
        "with the teacher and its coverage at τ with these validation figures, and exits 1 "
        "when they fall: time to distill again.",
    ]
    return lines


def _number(value: Any, scale: float = 1.0) -> str:
    return f"{value * scale:g}" if _is_number(value) else NOT_MEASURED


def _limitations(summary: dict[str, Any]) -> list[str]:
    where = _section(summary, "latency_ms").get("measured_on") or "the measuring host"
    return [
        "## Limitations",
        "",
        f"- Latency holds for {where} with the runtime and thread count above; other devices, "
        "runtimes, clocks or thermal states give other numbers.",
        "- Accuracy is measured on the task's held-out split only; inputs unlike the training "
        "data, or preprocessed differently, can do much worse.",
        "- Quantized artifacts can disagree with the PyTorch student on individual inputs "
        "(see max abs diff).",
    ]


def render_model_card(summary: dict[str, Any]) -> str:
    """Render a Markdown model card from a summary.json-shaped dict; never raises on gaps."""
    summary = summary if isinstance(summary, dict) else {}
    task = _section(summary, "task")
    name = task.get("name", "edgedistill student")
    title = f"# Model card: {name} on {summary.get('device', 'unknown device')}"
    sections = [
        [title],
        _what_it_is(summary, task),
        _intended_use(summary),
        _input_section(task, _section(summary, "teacher").get("feeding")),
        _how_it_was_made(summary),
        _measured_figures(summary),
        _artifacts_table(summary),
        _how_to_run(summary),
        _cascade(summary),
        _limitations(summary),
    ]
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"
