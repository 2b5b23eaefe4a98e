"""Who teaches: one Teacher record, the registry of the forms a teacher comes in, the outputs a
distillation run reads from teachers and their cache. Importing this package registers every
shipped form."""

from edgedistill.teachers import (  # noqa: F401  (register the forms)
    builtin,
    hf_form,
    onnx_model,
    python_module,
)
from edgedistill.teachers.feeding import FedTeacher, feed_teacher
from edgedistill.teachers.forms import (
    TEACHER_FORMS,
    PreparedTeacher,
    TeacherNames,
    prepare_teacher,
)
from edgedistill.teachers.record import Teacher

__all__ = [
    "TEACHER_FORMS",
    "FedTeacher",
    "PreparedTeacher",
    "Teacher",
    "TeacherNames",
    "feed_teacher",
    "prepare_teacher",
]
