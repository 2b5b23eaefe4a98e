"""`FILE.py:FN` / `package.module:FN`: the user's function builds the teacher nn.Module; its
weights come from `--teacher-weights` (safetensors or a plain state dict), or FN loads them."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from edgedistill.tasks.tokenizer import is_hf_source
from edgedistill.tasks.user_code import build_module, load_callable
from edgedistill.teachers.forms import (
    TEACHER_FORMS,
    ReadyTeacher,
    TeacherNames,
    check_logits,
    fed_channels_last,
    frozen,
    input_layout,
)
from edgedistill.weights import apply_state_dict, load_state_dict

if TYPE_CHECKING:
    from edgedistill.tasks.data import TaskData
    from edgedistill.tasks.recipe import TaskRecipe, TeacherSpec


def _arguments(function, recipe: TaskRecipe, data: TaskData) -> dict:
    """The keyword arguments FN declares among num_classes, in_channels and input_shape."""
    offered = {
        "num_classes": len(recipe.labels),
        "in_channels": data.input_shape[0],
        "input_shape": tuple(data.input_shape),
    }
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
    return {name: value for name, value in offered.items() if name in parameters}


@TEACHER_FORMS.register("python")
class PythonModuleForm:
    def claims(self, spec: TeacherSpec) -> bool:
        source = spec.source
        return (
            source is not None and not source.lower().endswith(".onnx") and not is_hf_source(source)
        )

    def prepare(self, recipe: TaskRecipe, data: TaskData, names: TeacherNames) -> ReadyTeacher:

        spec = recipe.teacher
        assert spec.source is not None
        function = load_callable(spec.source, names.source, spec.base_dir)
        model = build_module(
            function, names.source, spec.source, **_arguments(function, recipe, data)
        )
        notes = []
        cache_path = spec.source
        if spec.weights is not None:
            path = spec.base_dir / spec.weights
            state = load_state_dict(path, names.weights)
            apply_state_dict(model, state, path, names.weights, module="teacher module")
            cache_path = str(path)
        else:
            notes.append(
                f"teacher {spec.source}: no weights file given; using the module as "
                f"{spec.source.rpartition(':')[2]}() returns it"
            )
        model.eval()
        if input_layout(spec) == "nhwc":
            model = fed_channels_last(model)
        check_logits(model, data, len(recipe.labels), f"{names.source} {spec.source}")
        frozen(model)
        return ReadyTeacher(
            model, data, form="python", source=spec.source, cache_path=cache_path, notes=notes
        )
