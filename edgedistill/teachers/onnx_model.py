"""`FILE.onnx`: a teacher exported from any framework, run with onnxruntime for soft targets.

The session is wrapped in a small nn.Module (`OnnxLogits`) so distillation calls it like any
teacher: `teacher(x) -> logits`. It has no layers to hook, so feature and attention losses
cannot use it (logits only). Its file digest is a buffer, so caches keyed on the teacher's
state dict tell two ONNX teachers apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError
from edgedistill.hashing import sha256_file
from edgedistill.ort import onnx_session
from edgedistill.teachers.forms import (
    TEACHER_FORMS,
    ReadyTeacher,
    TeacherNames,
    channels_last_input,
    check_logits,
    fed_channels_last,
    input_layout,
)
from edgedistill.teachers.onnx_cost import onnx_cost
from edgedistill.teachers.onnx_probe import probe_onnx_teacher

if TYPE_CHECKING:
    from edgedistill.tasks.data import TaskData
    from edgedistill.tasks.recipe import TaskRecipe, TeacherSpec

LOGITS_ONLY_NOTE = (
    "ONNX teacher: logits only (soft targets); feature and attention losses (fitnet, at) are "
    "unavailable with it, they need a PyTorch teacher (--teacher FILE.py:FN)"
)


class _Session:
    """An onnxruntime session made on first use; copies and pickles carry only the path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._session = None

    def get(self):
        if self._session is None:
            import torch

            self._session = onnx_session(Path(self.path), torch.get_num_threads())
        return self._session

    def __getstate__(self) -> dict:
        return {"path": self.path, "_session": None}

    def __deepcopy__(self, memo) -> _Session:
        return _Session(self.path)


def _module_class():
    import numpy as np
    import torch
    from torch import nn

    class OnnxLogits(nn.Module):
        """teacher(x) -> logits, computed by onnxruntime; `fixed_batch` models run in chunks."""

        def __init__(self, path: str, digest: str, fixed_batch: int | None) -> None:
            super().__init__()
            self.session = _Session(path)
            self.fixed_batch = fixed_batch
            self.register_buffer(
                "onnx_sha256", torch.tensor(list(bytes.fromhex(digest)), dtype=torch.uint8)
            )
            # An empty, frozen parameter: code that finds a model's device from its parameters
            # works on this teacher too.
            self.device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            session = self.session.get()
            name = session.get_inputs()[0].name
            batch = x.detach().cpu().numpy().astype(np.float32, copy=False)
            if self.fixed_batch is None:
                out = session.run(None, {name: batch})[0]
            else:
                out = np.concatenate(
                    [
                        self._run_fixed(session, name, batch[i : i + self.fixed_batch])
                        for i in range(0, len(batch), self.fixed_batch)
                    ]
                )
            return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).to(x.device)

        def _run_fixed(self, session, name: str, chunk):
            pad = self.fixed_batch - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
            return session.run(None, {name: chunk})[0][: len(chunk) - pad]

    return OnnxLogits


def _check_signature(session, path: Path, input_shape: tuple[int, ...], what: str):
    """The fixed batch size (None when dynamic); refuses inputs that do not take the data."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise UserInputError(
            f"{what}: {path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); a "
            "teacher takes one image batch (N x C x H x W)"
        )
    model_input = inputs[0]
    if model_input.type != "tensor(float)":
        raise UserInputError(
            f"{what}: {path}: input {model_input.name!r} is {model_input.type}; the data is "
            "float32, so export the teacher with a float32 input"
        )
    shape = list(model_input.shape)
    fixed = [dim if isinstance(dim, int) else None for dim in shape[1:]]
    if len(shape) != 4 or any(
        d is not None and d != want for d, want in zip(fixed, input_shape, strict=True)
    ):
        shown = "x".join(str(d) for d in shape)
        raise UserInputError(
            f"{what}: {path}: input {model_input.name!r} has shape {shown} but the data gives "
            f"N x {'x'.join(map(str, input_shape))} (after preprocessing); export the teacher "
            "for that input, or change the task's preprocessing"
        )
    return shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None


@TEACHER_FORMS.register("onnx")
class OnnxForm:
    def claims(self, spec: TeacherSpec) -> bool:
        return spec.source is not None and spec.source.lower().endswith(".onnx")

    def prepare(self, recipe: TaskRecipe, data: TaskData, names: TeacherNames) -> ReadyTeacher:

        spec = recipe.teacher
        assert spec.source is not None
        if spec.weights is not None:
            raise UserInputError(
                f"{names.weights}: an ONNX teacher carries its weights; drop {names.weights}"
            )
        path = spec.base_dir / spec.source
        what = names.source
        if not path.is_file():
            raise UserInputError(f"{what}: no such file {path}")
        channels_last = input_layout(spec) == "nhwc"
        shape = channels_last_input(data.input_shape) if channels_last else data.input_shape
        probe_onnx_teacher(path, shape, what)  # a crash or hang there is a refusal here
        session = _Session(str(path))
        try:
            loaded = session.get()
        except Exception as exc:
            raise UserInputError(
                f"{what}: {path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})"
            ) from None
        fixed_batch = _check_signature(loaded, path, shape, what)
        digest = sha256_file(path)
        model = _module_class()(str(path), digest, fixed_batch)
        model.session = session
        model.eval()
        if channels_last:
            model = fed_channels_last(model)
        check_logits(model, data, len(recipe.labels), f"{what} {path}")
        params, macs = onnx_cost(path, shape)
        return ReadyTeacher(
            model,
            data,
            form="onnx",
            source=spec.source,
            cache_path=str(path),
            logits_only=True,
            onnx_path=str(path),
            params=params,
            macs=macs,
            notes=[LOGITS_ONLY_NOTE],
        )
