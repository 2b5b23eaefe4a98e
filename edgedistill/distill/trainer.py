"""The training loop: seeded mini-batches, a registered optimizer and learning-rate schedule,
early stopping on validation accuracy, an atomic checkpoint every epoch, exact resume, a clean
stop on SIGINT / SIGTERM at the next step boundary, and DistributedDataParallel across ranks.

Used both to train teachers (cross-entropy on the labels, `objective=None`) and to distill
students (an Objective of weighted terms, with teacher outputs from the cache or online).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill import ddp
from edgedistill.distill.augment import augment_batch
from edgedistill.distill.batches import epoch_batches
from edgedistill.distill.interrupt import TrainingStopped
from edgedistill.distill.losses._common import target_loss
from edgedistill.distill.objective import Objective, WeightedTerm
from edgedistill.distill.schedule import learning_rate, make_optimizer, set_learning_rate
from edgedistill.distill.train_state import LoopState, load_train_state, save_train_state
from edgedistill.progress import ProgressFn, no_progress
from edgedistill.tasks.data import loader_workers, task_kind
from edgedistill.tasks.evaluate import score

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edgedistill.ddp import DistContext
    from edgedistill.distill.interrupt import StopFlag
    from edgedistill.distill.objective import Objective
    from edgedistill.tasks.recipe import TrainSpec

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    best_val_accuracy: float
    best_epoch: int
    epochs_run: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    resumed: bool = False


@dataclass
class TrainOptions:
    """How to run (not what to learn): checkpointing, resume, stopping, ranks, device."""

    state_path: Path | None = None  # resumable checkpoint, replaced atomically every epoch
    resume: bool = False  # continue from state_path when it exists
    run_digest: str = ""  # identifies the configuration; another one's checkpoint is refused
    stop: StopFlag | None = None
    context: DistContext | None = None
    device: str = "cpu"
    workers: int = 0


def train(
    model: nn.Module,
    train_split,
    val_split,
    spec: TrainSpec,
    objective: Objective | None = None,
    teacher_outputs=None,
    *,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    stage: str = "train",
    options: TrainOptions | None = None,
) -> TrainResult:
    """Train `model` in place; on return it holds the weights of the best validation epoch.

    `objective` is an Objective (whose `model` wraps `model` with the adapters of feature losses,
    or is None) or a single loss term that needs no teacher; None trains on the labels alone
    (cross-entropy). Teacher outputs come from `teacher_outputs.get(index, x)`."""
    import torch

    options = options or TrainOptions()
    if objective is not None and not isinstance(objective, Objective):  # one bare loss term
        objective = Objective([WeightedTerm("loss", 1.0, objective)], None)
    if objective is not None and objective.needs_teacher and teacher_outputs is None:
        raise ValueError("this objective needs teacher outputs")
    trained = objective.model if objective is not None and objective.model is not None else model
    device = torch.device(options.device)
    trained.to(device)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = make_optimizer(trained.parameters(), spec)
    loop = LoopState()
    resumed = False
    if options.resume and options.state_path is not None and options.state_path.is_file():
        loop = load_train_state(
            options.state_path, trained, optimizer, generator, options.run_digest
        )
        resumed = True
        log.info("%s: resuming after epoch %d, step %d", stage, loop.epoch, loop.step)
    if not loop.finished:
        _run_epochs(
            _Loop(
                trained,
                model,
                train_split,
                val_split,
                spec,
                objective,
                teacher_outputs,
                optimizer,
                generator,
                loop,
                progress,
                stage,
                options,
                device,
            )
        )
    if loop.best_state is not None:
        model.load_state_dict(_student_part(loop.best_state, trained is not model))
    model.eval()
    return TrainResult(
        loop.best_accuracy, loop.best_epoch, loop.epoch, loop.seconds, loop.history, resumed
    )


@dataclass
class _Loop:
    trained: nn.Module  # what the optimizer updates (student, or student + adapters)
    model: nn.Module  # the bare student, evaluated on the val split
    train_split: object
    val_split: object
    spec: TrainSpec
    objective: Objective | None
    teacher_outputs: object
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    state: object
    progress: ProgressFn
    stage: str
    options: TrainOptions
    device: torch.device


def _run_epochs(run: _Loop) -> None:
    import torch

    spec, loop, options, context = run.spec, run.state, run.options, run.options.context
    rank, world = (context.rank, context.world) if context else (0, 1)
    wrapped = ddp.wrap(context, run.trained, run.device)
    started = time.perf_counter() - loop.seconds
    n = len(run.train_split)
    for epoch in range(loop.epoch + 1, spec.epochs + 1):
        set_learning_rate(run.optimizer, learning_rate(spec, epoch))
        if loop.order is None:
            loop.order = torch.randperm(n, generator=run.generator)
            loop.step, loop.loss_sum, loop.seen = 0, 0.0, 0
        wrapped.train()
        # --workers of distill, else what lazily decoded data asks for (fit's --workers)
        workers = options.workers or loader_workers(run.train_split)
        batches = epoch_batches(
            run.train_split, loop.order, spec.batch_size, loop.step, rank, world, workers
        )
        for index, x, y in batches:
            if spec.augment.is_random:
                x = augment_batch(x, spec.augment, run.generator)
            x, y = x.to(run.device), y.to(run.device)
            if run.objective is None:
                loss = target_loss(wrapped(x), y)
            else:
                output = wrapped(x)
                logits, features = output if run.trained is not run.model else (output, {})
                teacher_logits, teacher_features = [], {}
                if run.objective.needs_teacher:
                    teacher_logits, teacher_features = run.teacher_outputs.get(index, x)
                loss = run.objective(logits, features, y, teacher_logits, teacher_features, epoch)
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.optimizer.step()
            loop.loss_sum += loss.item() * len(index)
            loop.seen += len(index)
            loop.step += 1
            requested = options.stop is not None and options.stop.requested
            if ddp.any_rank(context, requested, run.device):
                loop.seconds = time.perf_counter() - started
                _checkpoint(run)
                raise TrainingStopped(_stopped_message(run, epoch))
        ddp.sync_buffers(context, run.trained)
        val_accuracy = score(run.model, run.val_split)
        loop.history.append(
            {
                "epoch": epoch,
                "loss": loop.loss_sum / max(loop.seen, 1),
                "val_accuracy": val_accuracy,
            }
        )
        if val_accuracy > loop.best_accuracy:
            loop.best_accuracy, loop.best_epoch = val_accuracy, epoch
            loop.best_state = copy.deepcopy(run.trained.state_dict())
        loop.epoch, loop.order, loop.step = epoch, None, 0
        patience = spec.patience
        early = patience is not None and epoch - loop.best_epoch >= patience
        loop.finished = early or epoch == spec.epochs
        loop.seconds = time.perf_counter() - started
        _checkpoint(run)
        metric = task_kind(run.val_split).metric
        run.progress(run.stage, epoch, spec.epochs, f"val {metric} {val_accuracy:.3f}")
        log.debug(
            "%s epoch %d loss %.4f val %.4f",
            run.stage,
            epoch,
            loop.history[-1]["loss"],
            val_accuracy,
        )
        if early:
            log.info("%s: early stop at epoch %d (best %d)", run.stage, epoch, loop.best_epoch)
            run.progress(
                run.stage, spec.epochs, spec.epochs, f"early stop, best epoch {loop.best_epoch}"
            )
            break
        requested = options.stop is not None and options.stop.requested
        if not loop.finished and ddp.any_rank(context, requested, run.device):
            raise TrainingStopped(_stopped_message(run, epoch))


def _checkpoint(run: _Loop) -> None:

    if run.options.state_path is not None and ddp.is_main(run.options.context):
        save_train_state(
            run.options.state_path,
            run.trained,
            run.optimizer,
            run.generator,
            run.state,
            run.options.run_digest,
        )


def _stopped_message(run: _Loop, epoch: int) -> str:
    where = run.options.state_path or "nowhere (no checkpoint path)"
    return (
        f"{run.stage}: stopped in epoch {epoch} at step {run.state.step} "
        f"({run.options.stop.reason if run.options.stop else 'requested'}); checkpoint written to "
        f"{where}; continue with --resume"
    )


def _student_part(state: dict, wrapped: bool) -> dict:
    """The student's own weights out of a state dict of the student (+ adapters)."""
    if not wrapped:
        return state
    prefix = "student."
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
