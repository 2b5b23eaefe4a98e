"""After measuring: how the shipped student compares with its teacher beyond one accuracy
figure, from the outputs of the artifact that ships, run by its runtime on this host.

- per-class test accuracy of teacher and student;
- the student -> teacher cascade: τ chosen on the validation split (tasks/cascade.py), reported
  on the test split;
- the student's confidence profile on the validation split, what `edgedistill audit` compares
  new data with (tasks/drift.py);
- the validation sample a bundle carries (bundle/sample.py): SAMPLE_SIZE test inputs and every
  host-runnable artifact's outputs to them, for `bundle verify --run`.

The artifact judged is the deployed one where its runtime runs here; otherwise the nearest
one before it in the chain that does (the ONNX a TensorRT engine was built from, the TFLite an
Edge TPU file was compiled from), else the PyTorch student it was exported from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgedistill.bundle.sample import SAMPLE_SIZE, write_sample
from edgedistill.export import EXPORTERS, HostRunner
from edgedistill.inputs import as_array
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.records.artifact import Artifact
from edgedistill.records.evaluation import ClassFigures, Evaluation
from edgedistill.tasks.cascade import DEFAULT_TARGET_DROP, SplitOutputs, choose_policy
from edgedistill.tasks.data import iter_batches
from edgedistill.tasks.drift import profile
from edgedistill.tasks.evaluate import predict_logits

log = logging.getLogger(__name__)


@dataclass
class Evaluated:
    evaluation: Evaluation | None  # None: a regression task
    validation_sample: dict[str, Any]  # the manifest section
    notes: list[str] = field(default_factory=list)


def split_inputs(dataset, limit: int | None = None) -> tuple[Any, Any]:
    """(inputs array: N x C x H x W float32 or N x L int64 token ids, labels array) of a split,
    in order."""
    import numpy as np

    xs, ys = [], []
    for x, y in iter_batches(dataset, batch_size=256, limit=limit):
        xs.append(as_array(x))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)


def host_runners(artifacts: list[Artifact], bundle: Path) -> dict[str, HostRunner]:
    """Path inside the bundle -> runner, for every artifact whose runtime runs on this host,
    in chain order (each model loaded once for the sample and the evaluation)."""
    runners = {}
    for artifact in artifacts:
        runner = EXPORTERS.get(artifact.format).host_runner(Path(artifact.path))
        if runner is not None:
            runners[Path(artifact.path).relative_to(bundle).as_posix()] = runner
    return runners


def evaluation_stage(
    artifacts: list[Artifact],
    student,
    teacher_model,
    data,
    task_type: str,
    labels: list[str],
    bundle: Path,
    target_drop: float = DEFAULT_TARGET_DROP,
    progress: ProgressFn = no_progress,
) -> Evaluated:
    """Evaluate the shipped student against the teacher and record the validation sample.
    `artifacts` hold absolute paths inside `bundle`."""
    progress("evaluate", 0, 2)
    runners = host_runners(artifacts, bundle)
    sample = _record_sample(runners, data, bundle)
    progress("evaluate", 1, 2)
    if task_type != "classification":
        progress("evaluate", 2, 2)
        return Evaluated(None, sample)
    val_x, val_y = split_inputs(data.val)
    test_x, test_y = split_inputs(data.test)
    if not runners:
        predict = lambda x: predict_logits(student, _tensor(x)).numpy()  # noqa: E731
        where, runtime = "pytorch", "PyTorch (no artifact of this run runs on this host)"
    else:  # the last of the chain that runs here: the deployed file, or the one it came from
        where, runner = list(runners.items())[-1]
        predict, runtime = runner.predict, runner.runtime
    val = SplitOutputs(predict(val_x), _teacher(teacher_model, val_x), val_y)
    test = SplitOutputs(predict(test_x), _teacher(teacher_model, test_x), test_y)
    policy = choose_policy(val, test, target_drop)
    conf, student_pred, teacher_pred, _ = val.figures()
    evaluation = Evaluation(
        artifact=where,
        runtime=runtime,
        per_class=per_class(test, labels),
        cascade=policy,
        confidence=profile(conf, student_pred, teacher_pred, policy.threshold),
    )
    progress("evaluate", 2, 2)
    notes = [] if policy.met else [
        f"cascade: no threshold keeps the cascade within {target_drop * 100:g} accuracy points "
        "of the teacher on the validation split; every input would go to the teacher"
    ]  # fmt: skip
    log.info(
        "cascade: tau %.3f keeps %.0f%% of test inputs on the device, cascade accuracy %.4f "
        "(teacher %.4f, student %.4f)",
        policy.threshold, policy.test.coverage * 100, policy.test.accuracy,
        policy.test.teacher_accuracy, policy.test.student_accuracy,
    )  # fmt: skip
    return Evaluated(evaluation, sample, notes)


def per_class(test: SplitOutputs, labels: list[str]) -> list[ClassFigures]:
    import numpy as np

    _, student_pred, teacher_pred, truth = test.figures()
    figures = []
    for index, label in enumerate(labels):
        mask = truth == index
        count = int(mask.sum())
        figures.append(
            ClassFigures(
                label=label,
                count=count,
                teacher_accuracy=float(np.mean(teacher_pred[mask] == index)) if count else None,
                student_accuracy=float(np.mean(student_pred[mask] == index)) if count else None,
            )
        )
    return figures


def _record_sample(runners: dict[str, HostRunner], data, bundle: Path) -> dict[str, Any]:
    inputs, _ = split_inputs(data.test, limit=SAMPLE_SIZE)
    outputs = {path: (runner.predict(inputs), runner.runtime) for path, runner in runners.items()}
    return write_sample(bundle, inputs, outputs)


def _tensor(x):
    import torch

    return torch.from_numpy(x)


def _teacher(model, x) -> Any:
    return predict_logits(model, _tensor(x)).numpy()
