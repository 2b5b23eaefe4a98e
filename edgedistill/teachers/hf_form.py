"""The `hf` teacher form: `--teacher hf:DIR`, a Hugging Face classifier or sentence encoder on
this disk (hf.py reads and loads it), checked against the text task before anything is trained:
its kind (a classifier for labeled texts, an encoder for embeddings), its labels, its
vocabulary and the length of the task's inputs. The task tokenizes with the teacher's own
tokenizer (tasks/text_task.py), so the teacher is fed the ids it was trained on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.inputs import takes_tokens
from edgedistill.latency.transformer_cost import EncoderShape, transformer_cost
from edgedistill.tasks.tokenizer import hf_folder, is_hf_source
from edgedistill.teachers.forms import TEACHER_FORMS, ReadyTeacher, TeacherNames, check_logits
from edgedistill.teachers.hf import GENERIC_LABEL, HFTeacherInfo, inspect_hf_folder, load_hf_teacher

if TYPE_CHECKING:
    from edgedistill.tasks.data import TaskData
    from edgedistill.tasks.recipe import TaskRecipe, TeacherSpec


@TEACHER_FORMS.register("hf")
class HFForm:
    def claims(self, spec: TeacherSpec) -> bool:
        return is_hf_source(spec.source)

    def prepare(self, recipe: TaskRecipe, data: TaskData, names: TeacherNames) -> ReadyTeacher:
        spec = recipe.teacher
        assert spec.source is not None
        what = f"{names.source} {spec.source}"
        if spec.weights is not None:
            raise UserInputError(
                f"{names.weights}: an hf:DIR teacher carries its weights in its folder; leave "
                "the weights out"
            )
        if not takes_tokens(data.input_shape) or data.vocabulary is None:
            raise UserInputError(
                f"{what}: a Hugging Face text model teaches text tasks; the data "
                f"({data.source}) is images (give text:, jsonl: or csv: data)"
            )
        info = inspect_hf_folder(hf_folder(spec.source, spec.base_dir), what)
        _check_task_type(info, recipe.task_type, what)
        notes = list(info.notes)
        if info.task_type == "classification":
            notes.extend(_check_labels(info, recipe.labels, what))
        _check_inputs(info, data, what)
        model = load_hf_teacher(info.path, what, info)
        check_logits(model, data, info.output_size, what)
        cost = transformer_cost(_shape(info, data), "fp32")
        return ReadyTeacher(
            model,
            data,
            form="hf",
            source=spec.source,
            cache_path=":".join(sorted(str(info.model_folder / w) for w in info.weights)),
            params=sum(p.numel() for p in model.parameters()),
            macs=cost.macs,
            notes=notes,
        )


def _check_task_type(info: HFTeacherInfo, task_type: str, what: str) -> None:
    """The task type follows the teacher: a classifier for labeled texts, an encoder (or a
    sentence-transformers folder) for sentence embeddings."""
    if info.task_type == task_type:
        return
    if info.task_type == "embedding":
        raise UserInputError(
            f"{what}: {info.architecture} gives sentence embeddings, but the task is "
            f"{task_type}; distill it on texts without labels (--data text:FILE) or set "
            "task_type: embedding in the recipe"
        )
    raise UserInputError(
        f"{what}: {info.architecture} is a classifier, but the task is {task_type} (texts "
        "without labels); give labeled texts (jsonl:, csv: with a label column), or an encoder "
        "or sentence-transformers folder as the teacher"
    )


def _check_labels(info: HFTeacherInfo, labels: list[str], what: str) -> list[str]:
    """The teacher's logits must be the task's classes, in the same order."""
    if len(info.labels) != len(labels):
        raise UserInputError(
            f"{what}: the teacher has {len(info.labels)} classes ({', '.join(info.labels)}), "
            f"the data {len(labels)} ({', '.join(labels)})"
        )
    if all(GENERIC_LABEL.fullmatch(name) for name in info.labels):
        return [
            f"{what}: its config names no labels ({info.labels[0]}, ...); its logits are taken "
            f"to be the data's labels in sorted order: {', '.join(labels)}"
        ]
    if list(info.labels) != list(labels):
        raise UserInputError(
            f"{what}: its labels in logit order are {info.labels}, the data's (sorted) "
            f"{labels}; rename the data's labels or the config's id2label to match"
        )
    return []


def _check_inputs(info: HFTeacherInfo, data: TaskData, what: str) -> None:
    assert data.vocabulary is not None
    length = data.input_shape[0]
    if info.max_positions is not None and length > info.max_positions:
        raise UserInputError(
            f"{what}: the task's texts are {length} tokens (preprocessing.max_length) but the "
            f"teacher takes at most {info.max_positions}"
        )
    if data.vocabulary.size > info.vocab_size:
        raise UserInputError(
            f"{what}: the task's tokenizer makes {data.vocabulary.size} ids, the teacher's "
            f"embedding has {info.vocab_size} rows; tokenize with the teacher's own tokenizer "
            "(leave preprocessing.tokenizer out)"
        )


def _shape(info: HFTeacherInfo, data: TaskData) -> EncoderShape:
    """The teacher as an encoder, for its MACs (BERT-like: intermediate 4 x hidden)."""
    return EncoderShape(
        layers=info.num_layers,
        hidden=info.hidden_size,
        heads=info.num_heads,
        intermediate=4 * info.hidden_size,
        seq_len=data.input_shape[0],
        vocab_size=info.vocab_size,
        num_outputs=info.output_size,
    )
