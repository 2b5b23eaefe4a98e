"""Quantization-aware distillation (Jacob et al. 2018, with the teacher's soft targets as in
Polino et al. 2018): the distilled fp32 student is prepared for int8 (batch norm folded,
fake-quantized weights and activations), calibrated on training samples (post-training
quantization, PTQ), then fine-tuned while quantized with the run's own loss recipe.

PTQ alone is the result when QAT is switched off, when the train split is too small to
fine-tune on, or when QAT did not beat it on the validation split. Resumable like a stage:
a finished QAT in the run folder is loaded, an interrupted one continues from its epoch
checkpoint.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill import atomic, ddp
from edgedistill.distill.losses.ce import CrossEntropyTerm
from edgedistill.distill.objective import WeightedTerm, build_objective, uses_layers
from edgedistill.distill.plan import DistillPlan
from edgedistill.distill.run import load_task_teachers
from edgedistill.distill.train_stage import teacher_outputs_for
from edgedistill.distill.trainer import TrainOptions, train
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.quant.checkpoint import save_quantized
from edgedistill.quant.fake import set_mode
from edgedistill.quant.prepare import calibrate, plan_summary, prepare
from edgedistill.quant.scheme import QuantScheme
from edgedistill.records.quant import QuantResult
from edgedistill.tasks.data import iter_batches
from edgedistill.tasks.evaluate import score
from edgedistill.weights import load_safetensors

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.ddp import DistContext
    from edgedistill.distill.interrupt import StopFlag

log = logging.getLogger(__name__)
RESULT_FILE = "quant.json"
LR_FRACTION = 0.1  # QAT's default learning rate: a tenth of the fp32 run's


@dataclass(frozen=True)
class QatRequest:
    scheme: QuantScheme
    enabled: bool = True  # False (--qat off): calibration only


def run_qat(
    plan: DistillPlan,
    student: nn.Module,
    request: QatRequest,
    folder: Path,
    accuracy_fp32: float,
    progress: ProgressFn = no_progress,
    stop: StopFlag | None = None,
    context: DistContext | None = None,
) -> tuple[nn.Module, QuantResult]:
    """(the quantized student, fake-quantized and in eval mode; what quantizing found)."""
    import torch

    spec = plan.recipe.distill.qat
    data = plan.task.data
    digest = _digest(plan, request)
    torch.manual_seed(plan.options.seed or 0)
    quantized = prepare(student, request.scheme)
    done = folder / RESULT_FILE
    if done.is_file() and json.loads(done.read_text()).get("digest") == digest:
        quantized.load_state_dict(load_safetensors(folder / "student.safetensors"))
        set_mode(quantized, "qat")
        log.info("quantization: already done in %s", folder)
        stored = json.loads(done.read_text())["result"]
        return quantized.eval(), QuantResult.model_validate(stored)

    started = time.perf_counter()
    progress("calibrate", 0, 1, f"int8 ranges from {spec.calibration_samples} train samples")
    seen = calibrate(
        quantized,
        (x for x, _ in iter_batches(data.train, limit=spec.calibration_samples)),
    )
    progress("calibrate", 1, 1, "done")
    ptq_state = copy.deepcopy(quantized.state_dict())
    ptq_val = score(quantized, data.val)
    ptq_test = score(quantized, data.test)
    method, reason = _method(request, spec, len(data.train))
    result = QuantResult(
        scheme=f"{request.scheme.name}; {plan_summary(quantized)}",
        method="ptq",
        reason=reason,
        calibration_samples=seen,
        accuracy_fp32=accuracy_fp32,
        accuracy_ptq=ptq_test,
        accuracy=ptq_test,
        val_accuracy_ptq=ptq_val,
    )
    if method == "qat":
        result = _fine_tune(plan, quantized, folder, digest, result, progress, stop, context)
        if result.val_accuracy_qat is not None and result.val_accuracy_qat < ptq_val:
            quantized.load_state_dict(ptq_state)
            set_mode(quantized, "qat")
            result.notes.append(
                f"QAT's best val accuracy {result.val_accuracy_qat:.4f} is below PTQ's "
                f"{ptq_val:.4f}: the calibrated (PTQ) student ships"
            )
        else:
            result.method = "qat"
            result.accuracy = result.accuracy_qat or ptq_test
    result.seconds = round(time.perf_counter() - started, 3)
    quantized.eval()
    if ddp.is_main(context):
        meta = {"spec": plan.candidate.spec, "task": plan.recipe.name}
        meta |= {"input_shape": list(data.input_shape), "num_classes": len(plan.recipe.labels)}
        save_quantized(folder, quantized, request.scheme, meta | {"accuracy": result.accuracy})
        atomic.write_json(done, {"digest": digest, "result": result.model_dump(mode="json")})
    return quantized, result


def _method(request: QatRequest, spec, train_samples: int) -> tuple[str, str]:
    if not request.enabled:
        return "ptq", "--qat off: calibration only"
    if spec.epochs == 0:
        return "ptq", "distill.qat.epochs is 0: calibration only"
    if train_samples < spec.min_train_samples:
        return "ptq", (
            f"{train_samples} train samples, fewer than distill.qat.min_train_samples "
            f"({spec.min_train_samples}): calibration only"
        )
    return "qat", f"{spec.epochs} QAT epochs with the run's loss recipe"


def _fine_tune(plan, quantized, folder, digest, result, progress, stop, context) -> QuantResult:
    """QAT epochs with the run's loss terms that read logits (feature taps name fp32 layers,
    which the int8 rewrite fuses away, so feature terms sit QAT out)."""
    spec = plan.recipe.distill.qat
    data = plan.task.data
    terms = [t for t in plan.terms if not uses_layers(t)]
    dropped = [t.name for t in plan.terms if uses_layers(t)]
    if not terms:
        terms = [WeightedTerm("ce", 1.0, CrossEntropyTerm())]
    if dropped:
        result.notes.append(
            f"QAT trains with {', '.join(t.name for t in terms)}; the feature terms "
            f"{', '.join(dropped)} are used in the fp32 distillation only"
        )
    train_spec = plan.train_spec.model_copy(
        update={
            "epochs": spec.epochs,
            "lr": spec.lr or plan.train_spec.lr * LR_FRACTION,
            "warmup_epochs": 0,
        }
    )
    device = ddp.training_device(context)
    teachers = load_task_teachers(plan, data, progress, context) if _needs_teacher(terms) else []
    example = next(iter(iter_batches(data.train, batch_size=2, limit=2)))[0]
    teacher_model = teachers[0].model if teachers else None
    objective = build_objective(terms, quantized, teacher_model, example, " (QAT)")
    runner, outputs, _ = teacher_outputs_for(
        plan, objective, teachers, data, data.train, device, context
    )
    try:
        trained = train(
            quantized,
            data.train,
            data.val,
            train_spec,
            objective,
            outputs,
            seed=plan.options.seed or 0,
            progress=progress,
            stage="qat",
            options=TrainOptions(
                state_path=folder / "qat-state.safetensors",
                resume=True,
                run_digest=digest,
                stop=stop,
                context=context,
                device=str(device),
                workers=plan.options.workers or 0,
            ),
        )
    finally:
        if objective.model is not None:
            objective.model.release()
        if runner is not None:
            runner.close()
    quantized.cpu().eval()
    result.accuracy_qat = score(quantized, data.test)
    result.val_accuracy_qat = trained.best_val_accuracy
    result.epochs_run = trained.epochs_run
    result.best_epoch = trained.best_epoch
    result.history = trained.history
    return result


def _needs_teacher(terms) -> bool:
    return any(t.term.needs_teacher for t in terms)


def _digest(plan: DistillPlan, request: QatRequest) -> str:
    material = [plan.digest, "qat", request.scheme.to_dict(), request.enabled]
    material.append(plan.recipe.distill.qat.model_dump(mode="json"))
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]
