"""User teacher forms; importing this package registers each one in TEACHER_SOURCES."""

from edgedistill.tasks.teacher_forms import onnx_model, python_module  # noqa: F401
