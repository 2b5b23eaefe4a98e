"""The search stage of `fit`: score the space on the device, optionally verify by measuring,
pick the most capable candidate that fits, and leave search.json and pareto.png behind.
(`edgedistill search` runs the scoring alone.) The latency model is the one of the run's
precision: an int8 search is predicted, calibrated and verified with int8 artifacts."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgedistill import atomic
from edgedistill.budget import format_ms
from edgedistill.errors import GoalNotMetError, UserInputError
from edgedistill.fit.calibrate import (
    DEFAULT_SAMPLES,
    calibrate_on_host,
    calibration_precision,
    latency_model_for,
    precision_note,
)
from edgedistill.fit.probe import probe_artifact, timed_format
from edgedistill.inputs import Vocabulary
from edgedistill.lab.devices import DeviceEntry
from edgedistill.lab.fit_bench import slowest_p90
from edgedistill.lab.host_bench import BenchProtocol
from edgedistill.lab.measure import can_measure, measure_artifact, measure_on_lab
from edgedistill.lab.timing import TimedArtifact
from edgedistill.latency.calibration import PROBE_FORMAT
from edgedistill.latency.model import LatencyModel
from edgedistill.profiles import DeviceProfile
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.quant.scheme import QuantScheme, scheme_for
from edgedistill.students import enumerate_space
from edgedistill.students.candidate import Candidate
from edgedistill.students.pareto import plot_pareto
from edgedistill.students.select import ScoredCandidate, pick, score

log = logging.getLogger(__name__)

# Measures a probe on the target in its format; returns its p90 in ms, or None if unreachable.
MeasureP90 = Callable[[TimedArtifact], "float | None"]
PRECISIONS = ("fp32", "fp16", "int8")


def resolve_precision(requested: str | None, profile: DeviceProfile) -> str:
    """--precision, else the profile's deploy precision; refused when unknown, or int8 on a
    device whose profile gives no int8 rate (the rule fit's plan applies)."""
    precision = requested or profile.deploy.precision
    if precision not in PRECISIONS:
        raise UserInputError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    if precision == "int8" and precision not in profile.compute.peak_ops_per_s:
        runs = ", ".join(profile.compute.peak_ops_per_s)
        raise UserInputError(
            f"--precision {precision}: {profile.name}'s runtimes ({', '.join(profile.runtimes)}) "
            f"compute in {runs} only (profile field compute.peak_ops_per_s)"
        )
    return precision


@dataclass
class SearchResult:
    chosen: ScoredCandidate
    model: LatencyModel
    scored: list[ScoredCandidate]
    verified: list[dict] = field(default_factory=list)  # {"spec", "predicted_ms", "p90_ms"}

    @property
    def margin(self) -> float:
        return self.model.margin()


def latency_model(
    profile: DeviceProfile,
    precision: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    threads: int,
    calibration_samples: int,
    progress: ProgressFn = no_progress,
    vocabulary: Vocabulary | None = None,
) -> LatencyModel:
    """The device's latency model of `precision`; the host calibrates itself on first use (at
    int8 with int8 artifacts) on the space of the task's input (token ids: its vocabulary)."""

    model = latency_model_for(profile, precision, threads, input_shape)
    measured = calibration_precision(profile, precision)
    if profile.is_host and not model.calibrated and measured is not None:
        log.info("calibrating the %s latency model on this host (first use)", measured)
        model = calibrate_on_host(
            profile,
            enumerate_space(input_shape, vocabulary=vocabulary),
            input_shape,
            num_classes,
            samples=calibration_samples,
            threads=threads,
            progress=progress,
            precision=measured,
        )
    return model


def verification_order(
    ranked: list[ScoredCandidate], budget_ms: float, margin: float, verify_k: int
) -> list[ScoredCandidate]:
    """What --verify-on-device K measures, in order: the K most capable candidates predicted
    within the budget plus the margin (the prediction errs either way, and measuring is what
    replaces the margin), then the candidate chosen with the margin, when it is not among them,
    as the fallback."""
    order = [s for s in ranked if s.predicted_ms <= budget_ms * (1 + margin)][:verify_k]
    safe = next((s for s in ranked if s.fits), None)
    if safe is not None and safe not in order:
        order.append(safe)
    return order


def _verify(
    ranked: list[ScoredCandidate],
    budget_ms: float,
    margin: float,
    verify_k: int,
    measure_p90: MeasureP90,
    input_shape: tuple[int, ...],
    num_classes: int,
    progress: ProgressFn,
    precision: str,
    scheme: QuantScheme | None,
    fmt: str = PROBE_FORMAT,
) -> tuple[ScoredCandidate | None, list[dict]]:
    """Measure the verification_order's candidates (random weights: they do not change
    latency) in `fmt` at `precision`, as the device runs them, and keep the first whose
    measured p90 is within the budget."""

    verified: list[dict] = []
    pool = verification_order(ranked, budget_ms, margin, verify_k)
    for index, item in enumerate(pool):
        progress("verify", index, len(pool), item.candidate.spec)
        timed = probe_artifact(item.candidate, input_shape, num_classes, precision, scheme, fmt)
        p90 = measure_p90(timed)
        verified.append(
            {
                "spec": item.candidate.spec,
                "predicted_ms": item.predicted_ms,
                "p90_ms": p90,
                "format": timed.format,
                "precision": timed.precision,
            }
        )
        if p90 is not None and p90 <= budget_ms:
            progress("verify", len(pool), len(pool), f"kept {item.candidate.spec}")
            return item, verified
    return None, verified


def run_search(
    profile: DeviceProfile,
    model: LatencyModel,
    input_shape: tuple[int, ...],
    num_classes: int,
    budget_ms: float,
    out_dir: Path,
    verify_k: int = 0,
    measure_p90: MeasureP90 | None = None,
    progress: ProgressFn = no_progress,
    precision: str | None = None,
    scheme: QuantScheme | None = None,
    verify_format: str = PROBE_FORMAT,
    vocabulary: Vocabulary | None = None,
) -> SearchResult:
    """Score, pick (and verify); write search.json and pareto.png into `out_dir`. `precision`:
    the run's (default: the model's), what verification exports; `scheme`: its int8 scheme;
    `verify_format`: the format verification times (the device's shipped one on a lab);
    `vocabulary`: a text task's (its students' vocabulary knob)."""
    precision = precision or model.precision
    space = enumerate_space(input_shape, vocabulary=vocabulary)
    scored = score(space, model, input_shape, num_classes, budget_ms, progress)
    chosen = pick(scored)
    verified: list[dict] = []
    if chosen is not None and verify_k > 0 and measure_p90 is not None:
        chosen, verified = _verify(
            scored,
            budget_ms,
            model.margin(),
            verify_k,
            measure_p90,
            input_shape,
            num_classes,
            progress,
            precision,
            scheme,
            verify_format,
        )
    atomic.write_json(
        out_dir / "search.json",
        {
            "device": profile.name,
            "budget_ms": budget_ms,
            "precision": precision,
            "latency_model_precision": model.precision,
            "margin": model.margin(),
            "calibrated": model.calibrated,
            "calibration_error": model.fit_error,
            "chosen": chosen.candidate.spec if chosen else None,
            "verified_on_device": verified,
            "candidates": [s.to_dict() for s in scored],
        },
    )
    title = f"{profile.name} {precision}: {len(scored)} candidates, budget {format_ms(budget_ms)}"
    plot_pareto(scored, budget_ms, model.margin(), chosen, out_dir / "pareto.png", title)
    if chosen is None:
        fastest = min(scored, key=lambda s: s.predicted_ms)
        if verified:
            measured = ", ".join(f"{v['spec']} p90 {v['p90_ms']} ms" for v in verified)
            raise GoalNotMetError(
                f"none of the {len(verified)} candidates measured on {profile.name} fits "
                f"{format_ms(budget_ms)} ({measured}); raise --budget or --verify-on-device"
            )
        raise GoalNotMetError(
            f"no candidate fits {format_ms(budget_ms)} on {profile.name}: the fastest, "
            f"{fastest.candidate.spec}, is predicted at {fastest.predicted_ms:.4f} ms "
            f"(and the budget keeps a {model.margin():.0%} safety margin); "
            "raise --budget or pick a faster device"
        )
    log.info(
        "picked %s: %d params, %.2fM MACs, predicted %.4f ms",
        chosen.candidate.spec,
        chosen.params,
        chosen.macs / 1e6,
        chosen.predicted_ms,
    )
    return SearchResult(chosen, model, scored, verified)


@dataclass(frozen=True)
class SearchSettings:
    threads: int = 1
    calibration_samples: int = DEFAULT_SAMPLES
    verify_on_device: int = 0
    quant_scheme: QuantScheme | None = None  # int8: the run's (default: the device's runtimes')
    targets: tuple[DeviceEntry, ...] = ()  # lab devices (fit --lab --target): verify there
    vocabulary: Vocabulary | None = None  # a text task's: its students' vocabulary


@dataclass
class ChosenStudent:
    """What the search stage hands on: the student to train and how it was chosen."""

    scored: ScoredCandidate
    margin: float
    notes: list[str] = field(default_factory=list)

    @property
    def candidate(self) -> Candidate:
        return self.scored.candidate


def search_stage(
    profile: DeviceProfile,
    precision: str,
    budget_ms: float,
    input_shape: tuple[int, ...],
    num_classes: int,
    staging: Path,
    settings: SearchSettings,
    progress: ProgressFn = no_progress,
) -> ChosenStudent:
    """Score the space on the device (calibrating the host on first use), verify, pick; a
    resumed run keeps the choice its search.json records (measurements are not repeatable)."""
    recorded = _recorded_choice(staging / "search.json")
    if recorded is not None:
        log.info("search: resumed with %s (from search.json)", recorded.candidate.spec)
        return recorded
    model = latency_model(
        profile,
        precision,
        input_shape,
        num_classes,
        settings.threads,
        settings.calibration_samples,
        progress,
        settings.vocabulary,
    )
    notes: list[str] = []
    note = precision_note(profile, precision, model)
    if note:
        notes.append(note)
    scheme = settings.quant_scheme or scheme_for(profile.runtimes)
    measure_p90: MeasureP90 | None = None
    verify_format = PROBE_FORMAT  # this host times ONNX
    protocol = BenchProtocol(threads=settings.threads)
    if settings.verify_on_device and settings.targets:
        targets = list(settings.targets)
        verify_format = timed_format(profile)

        def measure_p90(timed: TimedArtifact) -> float | None:
            return slowest_p90(measure_on_lab(targets, [timed], protocol, strict=True))

    elif settings.verify_on_device and can_measure(profile):

        def measure_p90(timed: TimedArtifact) -> float | None:
            result = measure_artifact(profile, timed, protocol)
            return None if result is None else result.p90

    elif settings.verify_on_device:
        notes.append(
            f"--verify-on-device skipped: {profile.name} cannot be measured here "
            "(give --lab FILE --target NAME to measure on the device)"
        )
    result = run_search(
        profile,
        model,
        input_shape,
        num_classes,
        budget_ms,
        staging,
        settings.verify_on_device,
        measure_p90,
        progress,
        precision,
        scheme if precision == "int8" else None,
        verify_format,
        settings.vocabulary,
    )
    notes += _verified_notes(result.verified)
    return ChosenStudent(result.chosen, result.margin, notes)


def _verified_notes(verified: list[dict]) -> list[str]:
    return [
        f"verified before training: {entry['spec']} measured p90 {entry['p90_ms']:.4f} ms "
        f"(predicted {entry['predicted_ms']:.4f} ms"
        + (f"; {entry['format']} {entry['precision']})" if "format" in entry else ")")
        for entry in verified
    ]


def _recorded_choice(path: Path) -> ChosenStudent | None:
    """The choice a search.json records (a resumed run), with its verification notes."""
    if not path.is_file():
        return None
    document = json.loads(path.read_text())
    chosen = next((c for c in document["candidates"] if c["spec"] == document["chosen"]), None)
    if chosen is None:
        return None
    notes = _verified_notes(document["verified_on_device"])
    return ChosenStudent(ScoredCandidate.from_dict(chosen), document["margin"], notes)
