"""`bundle verify --run`: run every host-runnable artifact of a bundle on its recorded validation
sample and compare with the outputs recorded when the run measured it.

The file checks (sha256 of every file) prove the bytes are the ones the manifest lists; this
proves the listed model still computes what was measured, so a model swapped in together with
a rewritten manifest is caught too.

Per artifact: "matches", "differs" (outputs moved beyond the tolerance or an argmax changed),
"fails" (missing, or its runtime refuses it), "skipped" (its runtime does not run on this host),
or "not recorded" (the sample holds no outputs for it). Tolerances, against the recorded outputs
(figures measured on the digits student, mbv2:d=1,r=16,w=0.5, 32 test samples, one AVX2 CPU):

- fp32: 1e-4 x the output spread (max - min). onnxruntime with and without graph fusion
  differed by 1.3e-7 x spread on the digits student; threads and repeats are bit-identical.
- fp16: 1e-2 x spread (half precision keeps ~3 significant digits; not measured on a CPU that
  computes in fp16).
- int8: 4 output quantization steps, the step read off the grid the recorded outputs lie on
  (else 4 x spread / 255). Integer kernels and float references requantize differently: up to
  2 steps between onnxruntime's int8 kernels and its QDQ reference, 2 steps between LiteRT's
  XNNPACK and reference kernels, on the same file and inputs.

The argmax must agree on every sample whose recorded top-two margin exceeds twice the tolerance
(a sample nearer a tie may flip while every output stays within it).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgedistill.bundle.manifest import MANIFEST_NAME
from edgedistill.bundle.sample import read_sample
from edgedistill.bundle.verify import find_bundle_dir, load_manifest
from edgedistill.errors import UserInputError, describe_validation
from edgedistill.export import EXPORTERS
from edgedistill.export.run_isolated import run_isolated

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

FP32_RELATIVE = 1e-4  # of the recorded output spread
FP16_RELATIVE = 1e-2
INT8_STEPS = 4  # output quantization steps
_GRID_SLACK = 0.01  # of a step: how far a recorded output may sit off the estimated grid

Status = Literal["matches", "differs", "fails", "skipped", "not recorded"]
FAILING: tuple[Status, ...] = ("differs", "fails")


class _RecordedOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")  # bundle/sample.py owns this section's fields

    array: str
    runtime: str


class _SampleSection(BaseModel):
    """The manifest's `validation_sample` section (bundle/sample.py writes it)."""

    model_config = ConfigDict(extra="ignore")

    path: str
    samples: int = Field(ge=0)
    outputs: dict[str, _RecordedOutput]


@dataclass(frozen=True)
class Tolerance:
    max_abs_diff: float
    basis: str  # in words, e.g. "4 output steps of 0.1261"


@dataclass
class ArtifactRerun:
    """One artifact re-run on the recorded sample; `detail` says why in words."""

    path: str
    format: str
    precision: str
    status: Status
    detail: str
    runtime: str | None = None  # what ran it here, or what it needs
    recorded_runtime: str | None = None
    max_abs_diff: float | None = None
    tolerance: float | None = None
    tolerance_basis: str | None = None
    argmax_agreement: float | None = None
    samples: int | None = None


@dataclass
class RerunReport:
    bundle_dir: Path
    sample: str | None  # the sample file, None when the manifest records none
    artifacts: list[ArtifactRerun] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # each names its file

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "sample": self.sample,
            "artifacts": [asdict(result) for result in self.artifacts],
            "problems": list(self.problems),
        }


def rerun_bundle(path: Path) -> RerunReport:
    """Re-run the artifacts of the bundle at `path` (bundle or run dir) on its validation sample.

    A manifest without a `validation_sample` section gives a report with one problem (nothing
    was recorded, so nothing can be checked); a malformed section is bad input.
    """
    bundle_dir = find_bundle_dir(Path(path))
    manifest = load_manifest(bundle_dir / MANIFEST_NAME)
    if manifest.validation_sample is None:
        return RerunReport(
            bundle_dir,
            None,
            problems=[
                f"{MANIFEST_NAME}: has no validation_sample section, so no outputs were "
                "recorded to re-run the artifacts against (the bundle predates them, or its "
                "run had no host runtime)"
            ],
        )
    section = _parse_section(bundle_dir, manifest.validation_sample)
    report = RerunReport(bundle_dir, section.path)
    listed = {entry.path for entry in manifest.files}
    if section.path not in listed:
        report.problems.append(
            f"{section.path}: the validation sample named in {MANIFEST_NAME} is not a file "
            "of the bundle"
        )
        return report
    artifact_paths = {artifact.get("path") for artifact in manifest.artifacts}
    for recorded_path in sorted(set(section.outputs) - artifact_paths):
        report.problems.append(
            f"{recorded_path}: {section.path} records outputs for it, but it is not an "
            f"artifact of {MANIFEST_NAME}"
        )
    try:
        inputs, recorded = read_sample(bundle_dir, section.model_dump())
    except UserInputError as exc:  # listed in the manifest, so a broken file is a corrupt bundle
        report.problems.append(str(exc))
        return report
    if len(inputs) != section.samples:
        report.problems.append(
            f"{section.path}: holds {len(inputs)} samples, {MANIFEST_NAME} says {section.samples}"
        )
    for artifact in manifest.artifacts:
        result = _rerun_artifact(bundle_dir, artifact, section, inputs, recorded)
        report.artifacts.append(result)
        if result.status in FAILING:
            report.problems.append(f"{result.path}: {result.status}: {result.detail}")
    return report


def _parse_section(bundle_dir: Path, section: dict[str, Any]) -> _SampleSection:
    try:
        return _SampleSection.model_validate(section)
    except ValidationError as exc:
        fields = describe_validation(exc, "validation_sample.")
        raise UserInputError(f"{bundle_dir / MANIFEST_NAME}: {fields}") from None


def _rerun_artifact(
    bundle_dir: Path,
    artifact: dict[str, Any],
    section: _SampleSection,
    inputs: np.ndarray,
    recorded: dict[str, np.ndarray],
) -> ArtifactRerun:
    path = str(artifact.get("path"))
    result = ArtifactRerun(
        path=path,
        format=str(artifact.get("format", "?")),
        precision=str(artifact.get("precision", "?")),
        status="not recorded",
        detail=f"{section.path} holds no outputs for it",
    )
    if path not in section.outputs:
        return result
    result.recorded_runtime = section.outputs[path].runtime
    if result.format not in EXPORTERS:
        result.status, result.detail = "skipped", f"no exporter for format {result.format!r}"
        return result
    file = bundle_dir / path
    if not file.is_file():
        result.status, result.detail = "fails", "the file is missing"
        return result
    run = run_isolated(result.format, file, inputs)  # a crash or hang there is a record here
    result.runtime = run.runtime
    if run.status != "ran":
        result.status, result.detail = run.status, run.detail
        return result
    return _compare(result, run.outputs, recorded[path])


def _compare(result: ArtifactRerun, produced: Any, expected: np.ndarray) -> ArtifactRerun:
    import numpy as np

    produced = np.asarray(produced, dtype=np.float32)
    result.samples = len(expected)
    if produced.shape != expected.shape:
        result.status = "differs"
        result.detail = f"outputs of shape {produced.shape}, recorded {expected.shape}"
        return result
    tolerance = tolerance_for(result.precision, expected)
    result.tolerance, result.tolerance_basis = tolerance.max_abs_diff, tolerance.basis
    if not np.array_equal(np.isfinite(produced), np.isfinite(expected)):
        result.status, result.detail = "differs", "non-finite outputs where none were recorded"
        return result
    finite = np.isfinite(expected)
    diff = float(np.abs(produced[finite] - expected[finite]).max()) if finite.any() else 0.0
    result.max_abs_diff = diff
    agreement, clear_flips = _argmax_agreement(produced, expected, tolerance.max_abs_diff)
    result.argmax_agreement = agreement
    figures = f"max |diff| {diff:.3g} (tolerance {tolerance.max_abs_diff:.3g}: {tolerance.basis})"
    if agreement is not None:
        figures += f", argmax agreement {agreement:.1%}"
    if diff > tolerance.max_abs_diff or clear_flips:
        result.status = "differs"
        flips = f", {clear_flips} clear winner(s) changed class" if clear_flips else ""
        result.detail = (
            f"{figures}{flips}; recorded with {result.recorded_runtime}, "
            f"re-run with {result.runtime}"
        )
    else:
        result.status, result.detail = "matches", figures
    return result


def tolerance_for(precision: str, recorded: np.ndarray) -> Tolerance:
    """How far a re-run of an artifact of `precision` may be from its `recorded` outputs."""
    import numpy as np

    values = np.asarray(recorded, dtype=np.float64)
    values = values[np.isfinite(values)]
    spread = float(values.max() - values.min()) if values.size else 0.0
    if spread <= 0.0:  # one value everywhere: scale by its size instead
        spread = max(float(np.abs(values).max()) if values.size else 0.0, 1.0)
    if precision == "int8":
        step = output_step(values)
        if step is not None:
            return Tolerance(INT8_STEPS * step, f"{INT8_STEPS} output steps of {step:.4g}")
        return Tolerance(
            INT8_STEPS * spread / 255, f"{INT8_STEPS} x spread {spread:.4g} / 255 (no output grid)"
        )
    relative = FP16_RELATIVE if precision == "fp16" else FP32_RELATIVE
    return Tolerance(relative * spread, f"{relative:g} x output spread {spread:.4g}")


def output_step(values: np.ndarray) -> float | None:
    """The quantization step of dequantized int8 outputs: the smallest gap between distinct
    values, if every value lies on that grid; None for outputs that are not on one."""
    import numpy as np

    levels = np.unique(np.asarray(values, dtype=np.float64))
    if len(levels) < 2:
        return None
    step = float(np.diff(levels).min())
    offsets = (levels - levels[0]) / step
    if np.abs(offsets - np.round(offsets)).max() > _GRID_SLACK:
        return None
    return step


def _argmax_agreement(
    produced: np.ndarray, expected: np.ndarray, tolerance: float
) -> tuple[float | None, int]:
    """(share of samples whose argmax agrees, samples with a clear recorded winner that changed
    class); (None, 0) for outputs that are not a row of scores per sample."""
    import numpy as np

    if expected.ndim < 2 or expected.shape[-1] < 2 or not np.isfinite(expected).all():
        return None, 0
    rows_expected = expected.reshape(len(expected), -1)
    rows_produced = produced.reshape(len(produced), -1)
    same = rows_expected.argmax(1) == rows_produced.argmax(1)
    top_two = np.sort(rows_expected, axis=1)[:, -2:]
    clear = (top_two[:, 1] - top_two[:, 0]) > 2 * tolerance
    return float(same.mean()), int((~same & clear).sum())
