"""Feed the teacher as it was trained: its declared preprocessing, or the preset it scores best
under on the val split; the task (and so the student and the bundle) then uses the same.

A user's teacher fed with the wrong pixel convention loses accuracy silently, and the student
learns from the crippled teacher. So:

- declared (`--teacher-preprocess`, the recipe's `teacher.preprocess`): used as given;
- a recipe that names its teacher and states its preprocessing: that preprocessing;
- the built-in teacher: trained here on the task's preprocessing, nothing to choose;
- data that a Python dataset hands over as model inputs: nothing to choose;
- text: the teacher is fed the ids of its own tokenizer (the task tokenizes with it);
- otherwise (your teacher, no declaration): evaluated under every preset on up to
  DETECT_SAMPLES val samples; the best is used, `unit` when it is within noise of the best
  (a paired sign test on the samples the two presets disagree on).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.inputs import takes_tokens
from edgedistill.records.feeding import TeacherFeeding
from edgedistill.tasks.conventions import preset_preprocessing, teacher_preprocessing
from edgedistill.tasks.data import all_labels
from edgedistill.tasks.evaluate import predict_logits
from edgedistill.tasks.kinds import kind_of
from edgedistill.tasks.recipe import PRESETS
from edgedistill.tasks.tokenizer import is_hf_source
from edgedistill.teachers.embedding_targets import with_teacher_embeddings
from edgedistill.teachers.forms import PreparedTeacher, prepare_teacher

if TYPE_CHECKING:
    from edgedistill.tasks.task import Task

log = logging.getLogger(__name__)

DETECT_SAMPLES = 1000  # val samples each preset is tried on
PREFERRED = "unit"  # chosen when it is within noise of the best preset


@dataclass
class FedTeacher:
    task: Task  # the task read with the teacher's preprocessing
    teacher: PreparedTeacher
    feeding: TeacherFeeding
    notes: list[str] = field(default_factory=list)


def feed_teacher(task: Task) -> FedTeacher:
    """The task's teacher prepared on the data as it must be fed, and the task to match."""
    spec, names, facts = task.recipe.teacher, task.teacher_names, task.data.facts
    declared = spec.preprocess
    if takes_tokens(task.data.input_shape):
        if declared is not None:
            raise UserInputError(
                f"{names.preprocess}: pixel conventions are for image teachers; a text teacher "
                "is fed the ids of its own tokenizer"
            )
        feeding = TeacherFeeding(how="trained-here" if spec.source is None else "tokenizer")
        if task.recipe.task_type == "embedding":
            return _embedding_teacher(task, feeding)
        return FedTeacher(task, prepare_teacher(task.recipe, task.data, names), feeding)
    layout = declared.layout if declared is not None else "nchw"
    ready = facts is None or facts.kind == "ready"
    if declared is not None:
        if ready:
            raise UserInputError(
                f"{names.preprocess}: the data ({task.data.source}) gives model inputs already "
                "(a Python dataset applies its own transform); feed the teacher's "
                "preprocessing from the dataset, or give raw images (imagefolder:, npz:)"
            )
        preprocessing = teacher_preprocessing(
            declared, task.recipe.preprocessing, facts, names.preprocess
        )
        task = task.with_preprocessing(preprocessing)
        overridden = any(getattr(declared, name) is not None for name in ("scale", "mean", "std"))
        feeding = TeacherFeeding(
            how="declared", preset=None if overridden else declared.preset or "unit", layout=layout
        )
        note = f"teacher fed as declared ({names.preprocess}): {preprocessing.description}"
        return FedTeacher(task, prepare_teacher(task.recipe, task.data, names), feeding, [note])
    if spec.source is None:
        feeding = TeacherFeeding(how="trained-here")
        return FedTeacher(task, prepare_teacher(task.recipe, task.data, names), feeding)
    if ready:
        feeding = TeacherFeeding(how="dataset")
        return FedTeacher(task, prepare_teacher(task.recipe, task.data, names), feeding)
    if task.preprocessing_given and names.source != "--teacher":
        feeding = TeacherFeeding(how="recipe")
        return FedTeacher(task, prepare_teacher(task.recipe, task.data, names), feeding)
    return _detect(task)


def _embedding_teacher(task: Task, feeding: TeacherFeeding) -> FedTeacher:
    """A sentence-embedding task: its teacher's embeddings become the targets."""
    spec, names = task.recipe.teacher, task.teacher_names
    if not is_hf_source(spec.source):
        given = f"{names.source} {spec.source}" if spec.source else "the built-in teacher"
        raise UserInputError(
            f"{given}: a sentence-embedding task (texts without labels) learns a teacher's "
            f"embeddings; give {names.source} hf:DIR, a Hugging Face encoder or "
            "sentence-transformers folder on this disk"
        )
    prepared = prepare_teacher(task.recipe, task.data, names)
    task = with_teacher_embeddings(task, prepared.architecture())
    return FedTeacher(task, replace(prepared, data=task.data), feeding)


def _detect(task: Task) -> FedTeacher:
    import torch

    names, facts = task.teacher_names, task.data.facts
    assert facts is not None
    prepared = prepare_teacher(task.recipe, task.data, names)  # checks shapes and outputs
    model = prepared.architecture()
    outputs: dict[str, torch.Tensor] = {}
    for name in PRESETS:
        preprocessing = preset_preprocessing(name, task.recipe.preprocessing, facts)
        view = task.view(preprocessing, "val", DETECT_SAMPLES)
        outputs[name] = predict_logits(model, view)
    targets = all_labels(view)
    kind = kind_of(targets)
    samples = len(targets)
    figures = {name: kind.score(found, targets) for name, found in outputs.items()}
    best = max(PRESETS, key=lambda name: figures[name])  # first of equals, in PRESETS order
    same = NOISE[kind.name](outputs[PREFERRED], outputs[best], targets)
    chosen = PREFERRED if same else best
    error = math.sqrt(max(figures[best] * (1 - figures[best]), 0.0) / max(samples, 1))
    shown = ", ".join(f"{name} {figures[name]:.3f}" for name in PRESETS)
    note = (
        f"teacher preprocessing detected: {chosen} (val {kind.metric} on {samples} samples: "
        f"{shown}); declare it with --teacher-preprocess to skip detection"
    )
    notes = [note]
    if chosen != best:
        notes.append(
            f"teacher preprocessing: {best} scored {figures[best]:.3f} and {chosen} "
            f"{figures[chosen]:.3f}, within noise of each other on {samples} samples; "
            f"chose {chosen}, the most common convention"
        )
    if figures[best] <= CHANCE[kind.name](len(task.recipe.labels)):  # poor under every preset
        notes.append(
            f"the teacher scores {figures[chosen]:.3f} at best on val under every preset: it "
            "may expect another input (size, channel order, layout); declare it with "
            "--teacher-preprocess"
        )
    for line in notes:
        log.info(line)
    if chosen != "data":
        task = task.with_preprocessing(
            preset_preprocessing(chosen, task.recipe.preprocessing, facts)
        )
        prepared = prepare_teacher(task.recipe, task.data, names)
    feeding = TeacherFeeding(
        how="detected",
        preset=chosen,
        accuracy_by_preset={name: round(value, 6) for name, value in figures.items()},
        samples=samples,
        standard_error=round(error, 6),
    )
    return FedTeacher(task, prepared, feeding, notes)


def within_noise(preferred, best) -> bool:
    """True when `best` is not clearly better than `preferred` on the same samples: of the
    samples only one of them gets right, best's excess is within two standard deviations of
    a fair coin (a sign test), or is a single sample. Arguments: per-sample hits."""
    only_best = int((best & ~preferred).sum())
    only_preferred = int((preferred & ~best).sum())
    excess = only_best - only_preferred
    return excess <= max(1.0, 2.0 * math.sqrt(only_best + only_preferred))


def _hits_within_noise(preferred, best, targets) -> bool:
    return within_noise(preferred.argmax(dim=1) == targets, best.argmax(dim=1) == targets)


def _r2_within_noise(preferred, best, targets) -> bool:
    kind = kind_of(targets)
    return kind.score(best, targets) - kind.score(preferred, targets) <= R2_NOISE


R2_NOISE = 0.01  # regression: R² differences this small between presets are noise
# task kind -> (preferred outputs, best outputs, targets) -> within noise of each other
NOISE = {"classification": _hits_within_noise, "regression": _r2_within_noise}
# task kind -> outputs -> the score at or below which every preset failed
CHANCE = {"classification": lambda classes: 1.5 / classes, "regression": lambda outputs: 0.0}
