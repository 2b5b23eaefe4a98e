"""summary.json of a `fit` run, built from the stages' records (no stage writes into it)."""

from __future__ import annotations

from pathlib import Path

from edgedistill import __version__
from edgedistill.fit.distill_stage import DistilledStudent
from edgedistill.fit.plan import FitPlan
from edgedistill.fit.search import ChosenStudent
from edgedistill.records.artifact import Artifact
from edgedistill.records.measurements import Measurements
from edgedistill.records.summary import (
    RunSummary,
    StudentInfo,
    StudentLatency,
    TaskInfo,
    TeacherInfo,
)
from edgedistill.tasks.evaluate import metrics
from edgedistill.tasks.kinds import TASK_KINDS


def fits_budget(chosen: ChosenStudent, measured: Measurements, budget_ms: float):
    """(fits, basis): the measured p90 (p95 where a tool gives no p90), else the prediction."""
    latency = measured.student
    stand_in = "_not_deployed" if latency.deployed is False else ""
    if latency.p90 is not None:
        return latency.p90 <= budget_ms, f"measured_p90{stand_in}"
    if latency.p95 is not None:
        return latency.p95 <= budget_ms, f"measured_p95{stand_in}"
    return chosen.scored.predicted_ms <= budget_ms, "predicted"


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 6) for name, value in figures.items()}


def build_summary(
    plan: FitPlan,
    chosen: ChosenStudent,
    distilled: DistilledStudent,
    artifacts: list[Artifact],
    measured: Measurements,
    notes: list[str],
    stages_s: dict[str, float],
    staging: Path,
) -> RunSummary:
    recipe, data, teacher = plan.recipe, plan.task.data, distilled.teacher
    metric = TASK_KINDS.get(recipe.task_type).metric
    # The artifact of the chain's last format is the deployed one; when that format waits for
    # a device (a TensorRT engine), no deployed accuracy is claimed.
    deployed = artifacts[-1] if artifacts and artifacts[-1].format == plan.deploy_format else None
    accuracy = deployed.accuracy if deployed else None
    fits, basis = fits_budget(chosen, measured, plan.budget_ms)
    quantization = distilled.quantization
    relative = [
        a.model_copy(update={"path": Path(a.path).relative_to(staging).as_posix()})
        for a in artifacts
    ]
    return RunSummary(
        edgedistill_version=__version__,
        device=plan.profile.name,
        budget_ms=plan.budget_ms,
        fits_budget=bool(fits),
        fits_budget_basis=basis,
        task=TaskInfo(
            name=recipe.name,
            task_type=recipe.task_type,
            input_name=recipe.input.name,
            input_shape=[1, *data.input_shape],
            labels=recipe.labels,
            preprocessing=recipe.preprocessing.model_dump(mode="json"),
            split_sizes={"train": len(data.train), "val": len(data.val), "test": len(data.test)},
            data_source=data.source,
            split=data.split,
        ),
        teacher=TeacherInfo(
            form=teacher.form,
            source=teacher.source or None,
            params=teacher.params,
            macs=teacher.macs,
            accuracy=teacher.test_accuracy or 0.0,
            metric=metric,
            metrics=_rounded(metrics(teacher.model, data.test)),
            latency_ms=measured.teacher,
            cache_path=teacher.cache_path,
            trained_now=teacher.trained_now,
            feeding=plan.feeding,
        ),
        student=StudentInfo(
            spec=chosen.candidate.spec,
            family=chosen.candidate.family,
            arch=dict(chosen.candidate.knobs),
            params=chosen.scored.params,
            macs=chosen.scored.macs,
            precision=plan.precision,
            metric=metric,
            metrics=_rounded(metrics(distilled.shipped, data.test)),
            accuracy_fp32=distilled.result.accuracy,
            accuracy_ptq=quantization.accuracy_ptq if quantization else None,
            accuracy=accuracy,
            epochs_run=distilled.result.epochs_run,
            best_epoch=distilled.result.best_epoch,
        ),
        retention=(accuracy / teacher.test_accuracy)
        if accuracy is not None and teacher.test_accuracy
        else None,
        latency_ms=StudentLatency(
            **measured.student.model_dump(exclude_defaults=True),
            predicted=chosen.scored.predicted_ms,
            calibrated=chosen.scored.calibrated,
            margin=chosen.margin,
        ),
        artifacts=relative,
        quantization=quantization,
        pending=plan.pending,
        notes=notes,
        seed=plan.options.seed,
        stages_s={k: round(v, 3) for k, v in stages_s.items()},
    )
