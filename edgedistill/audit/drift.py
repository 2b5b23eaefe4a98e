"""`edgedistill audit RUN --data SPEC`: is the shipped student still the model that was
measured, on today's inputs? The bundled artifact (run by its runtime on this host, in a
child process with a time limit) and the run's teacher answer every sample of SPEC; their
agreement, the student's coverage at the cascade's τ and its confidence distribution are
compared with the validation figures the run recorded in the bundle's manifest (`evaluation`).

The audit fails (exit 1) when agreement or coverage falls more than `tolerance` below the
validation figure, or when the population stability index of the confidences passes
`max_psi` (0.25, the usual "major shift" band) plus what two samples of these sizes show
with no shift at all (tasks/drift.sampling_psi): the inputs have moved away from what the
student learned, and the run should be distilled again on data like them. (A weak student
and teacher can keep agreeing on inputs they both misread, so the confidences are the third
witness.) Labels, where the data has them, add the accuracies of student, teacher and
cascade.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgedistill.bundle.manifest import MANIFEST_NAME, Manifest
from edgedistill.bundle.verify import load_manifest, verify_bundle
from edgedistill.errors import UserInputError
from edgedistill.export.run_isolated import run_isolated
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.tasks.cascade import cascade_at, confidence
from edgedistill.tasks.data import read_samples
from edgedistill.tasks.drift import (
    PSI_MAJOR,
    PSI_MODERATE,
    population_stability,
    sampling_psi,
    shares,
)
from edgedistill.tasks.evaluate import predict_logits
from edgedistill.tasks.task import load_task
from edgedistill.teachers.feeding import feed_teacher

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 0.05  # five points of agreement or coverage below the validation figure
DEFAULT_MAX_PSI = PSI_MAJOR
RUN_FILE = "run.json"  # fit's record of the options it ran with (fit/run_dir.py)


@dataclass
class AuditReport:
    run: str
    data: str
    samples: int
    labeled: int
    artifact: str
    runtime: str
    tolerance: float
    agreement: float
    agreement_val: float
    coverage: float
    coverage_val: float
    threshold: float
    psi: float
    psi_band: str
    psi_limit: float  # max_psi plus the PSI samples of these sizes show unshifted
    accuracy: dict[str, float] = field(default_factory=dict)  # labeled samples only
    reasons: list[str] = field(default_factory=list)  # why it failed; empty: passed

    @property
    def ok(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


def audit_run(
    run_dir: Path,
    data: str,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: ProgressFn = no_progress,
    max_psi: float = DEFAULT_MAX_PSI,
) -> AuditReport:
    """Audit the run in `run_dir` on every sample of the data source `data`."""
    if not 0 <= tolerance <= 1:
        raise UserInputError(f"--tolerance: {tolerance:g} is not a share between 0 and 1")
    if max_psi <= 0:
        raise UserInputError(f"--max-psi: {max_psi:g} must be above 0")
    run_dir = Path(run_dir)
    bundle = run_dir / "bundle"
    if not (bundle / MANIFEST_NAME).is_file() or not (run_dir / RUN_FILE).is_file():
        raise UserInputError(
            f"{run_dir}: not a fit run directory (needs {RUN_FILE} and bundle/{MANIFEST_NAME})"
        )
    verified = verify_bundle(bundle)
    if not verified.ok:
        raise UserInputError(
            f"{bundle}: does not verify, so it is not the bundle that was measured: "
            + "; ".join(verified.problems[:3])
        )
    manifest = load_manifest(bundle / MANIFEST_NAME)
    evaluation = manifest.evaluation
    if not evaluation:
        raise UserInputError(
            f"{bundle / MANIFEST_NAME}: no field evaluation (a classification run records the "
            "cascade and confidence profile an audit compares with)"
        )
    progress("audit", 0, 3, "teacher")
    learning = json.loads((run_dir / RUN_FILE).read_text())["learning"]
    fed = feed_teacher(
        load_task(
            learning.get("task"),
            learning.get("data"),
            learning.get("teacher"),
            learning.get("teacher_weights"),
            0,
            learning.get("teacher_preprocess"),
        )
    )
    recipe = fed.task.recipe
    if recipe.preprocessing.model_dump(mode="json") != manifest.preprocessing:
        raise UserInputError(
            f"{run_dir}: the task and teacher no longer read as the run did (preprocessing "
            f"now {recipe.preprocessing.model_dump(mode='json')}, the bundle's "
            f"{manifest.preprocessing}); audit with the inputs the run was made with"
        )
    teacher = fed.teacher.load(int(learning.get("seed", 0)))
    progress("audit", 1, 3, "data")
    samples = read_samples(recipe, data)
    progress("audit", 2, 3, "student and teacher")
    artifact, student_logits, runtime = _student(bundle, manifest, evaluation["artifact"], samples)
    teacher_logits = predict_logits(teacher.model, samples.x).numpy()
    report = _compare(
        student_logits, teacher_logits, samples.y.numpy(), evaluation, tolerance, max_psi
    )
    progress("audit", 3, 3, "done")
    return AuditReport(
        run=str(run_dir), data=data, artifact=artifact, runtime=runtime, tolerance=tolerance,
        **report,
    )  # fmt: skip


def _student(bundle: Path, manifest: Manifest, artifact: str, samples) -> tuple[str, Any, str]:
    """(artifact, its outputs on the samples, the runtime that ran it): the shipped file the run
    evaluated, run by its host runtime in a child process with a time limit, so that a file
    that crashes or hangs the runtime ends as a message, not as the toolkit's crash."""
    if artifact == "pytorch":
        raise UserInputError(
            f"{bundle}: the run evaluated its PyTorch student (no artifact of the bundle runs on "
            "this host), so there is no shipped file to audit here"
        )
    entry = next((a for a in manifest.artifacts if a.get("path") == artifact), None)
    if entry is None:
        raise UserInputError(f"{bundle / MANIFEST_NAME}: evaluation names {artifact}, not listed")
    ran = run_isolated(entry["format"], bundle / artifact, samples.x.numpy())
    if ran.status == "skipped":
        raise UserInputError(f"{bundle / artifact}: cannot run on this host: {ran.detail}")
    if ran.status == "fails":  # the detail names the file where the check that refused it did
        where = "" if str(bundle / artifact) in ran.detail else f"{bundle / artifact}: "
        raise UserInputError(f"{where}the shipped student does not run: {ran.detail}")
    assert ran.outputs is not None and ran.runtime is not None
    return artifact, ran.outputs, ran.runtime


def _compare(
    student_logits, teacher_logits, labels, evaluation: dict, tolerance: float, max_psi: float
) -> dict:
    import numpy as np

    profile, cascade = evaluation["confidence"], evaluation["cascade"]
    threshold = float(cascade["threshold"])
    conf = confidence(student_logits)
    student_pred, teacher_pred = student_logits.argmax(1), teacher_logits.argmax(1)
    agreement = float((student_pred == teacher_pred).mean())
    coverage = float((conf >= threshold).mean())
    psi = population_stability(profile["shares"], list(shares(conf, profile["edges"])))
    limit = max_psi + sampling_psi(len(profile["shares"]), len(conf), int(profile["samples"]))
    band = (
        "stable" if psi < PSI_MODERATE else "moderate shift" if psi < PSI_MAJOR else "major shift"
    )
    reasons = []
    for name, now, then in (("agreement with the teacher", agreement, profile["agreement"]),
                            ("coverage at τ", coverage, profile["coverage"])):  # fmt: skip
        if now < then - tolerance:
            reasons.append(
                f"{name} {now:.3f} is {then - now:.3f} below the validation split's {then:.3f} "
                f"(tolerance {tolerance:g})"
            )
    if psi > limit:
        reasons.append(
            f"the student's confidence distribution moved: PSI {psi:.3f} against the "
            f"validation split's deciles, above {limit:.3f} ({max_psi:g} plus "
            f"{limit - max_psi:.3f} that {len(conf)} and {profile['samples']} samples show "
            "with no shift)"
        )
    labeled = labels >= 0
    accuracy: dict[str, float] = {}
    if labeled.any():
        truth = labels[labeled]
        accuracy = {
            "student": float((student_pred[labeled] == truth).mean()),
            "teacher": float((teacher_pred[labeled] == truth).mean()),
            "cascade": cascade_at(
                threshold, conf[labeled], student_pred[labeled], teacher_pred[labeled], truth
            )[1],  # fmt: skip
        }
    log.info("audit: agreement %.3f (val %.3f), coverage %.3f (val %.3f), PSI %.3f",
             agreement, profile["agreement"], coverage, profile["coverage"], psi)  # fmt: skip
    return {
        "samples": len(conf),
        "labeled": int(np.count_nonzero(labeled)),
        "agreement": agreement,
        "agreement_val": float(profile["agreement"]),
        "coverage": coverage,
        "coverage_val": float(profile["coverage"]),
        "threshold": threshold,
        "psi": psi,
        "psi_band": band,
        "psi_limit": limit,
        "accuracy": accuracy,
        "reasons": reasons,
    }
