import numpy as np
import pytest
import torch

from edgedistill.errors import UserInputError
from edgedistill.latency.costs import model_cost
from edgedistill.students import Candidate, build_student, enumerate_space


def test_spec_string_round_trips():
    candidate = Candidate("mbv2", {"w": 0.5, "d": 2, "r": 24})
    assert candidate.spec == "mbv2:d=2,r=24,w=0.5"
    assert Candidate.parse(candidate.spec) == candidate


@pytest.mark.parametrize("spec", ["mbv2", "mbv2:w", "MBV2:w=1", "mbv2:w=0.5,,d"])
def test_bad_spec_strings_are_refused_naming_the_flag(spec):
    with pytest.raises(UserInputError, match="--student"):
        Candidate.parse(spec)


def test_unknown_knob_is_refused_with_the_knob_named():
    with pytest.raises(UserInputError, match="unknown x"):
        build_student(Candidate.parse("mbv2:d=1,r=16,w=0.5,x=3"), (1, 32, 32), 10)


@pytest.mark.parametrize(
    ("side", "expected"),
    [(6, {8}), (20, {8, 16}), (32, {16, 24, 32}), (64, {32, 48, 64}), (224, {112, 168, 224})],
)
def test_space_offers_resolutions_in_proportion_to_the_input(side, expected):
    assert {c.knobs["r"] for c in enumerate_space((3, side, side + 5))} == expected


def test_cost_grows_with_every_knob():
    def macs(spec):
        return model_cost(build_student(Candidate.parse(spec), (1, 32, 32), 10), (1, 32, 32)).macs

    base = macs("mbv2:d=1,r=16,w=0.5")
    assert macs("mbv2:d=1,r=16,w=1") > base
    assert macs("mbv2:d=2,r=16,w=0.5") > base
    assert macs("mbv2:d=1,r=32,w=0.5") > base


def test_cost_counts_conv_macs_exactly():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    cost = model_cost(torch.nn.Sequential(conv), (3, 10, 10))
    assert cost.macs == 10 * 10 * 8 * 3 * 3 * 3
    assert cost.params == 8 * 3 * 3 * 3


@pytest.mark.parametrize(
    "spec", ["mbv2:d=1,r=16,w=0.25", "mbv2:d=2,r=24,w=0.5", "mbv2:d=1,r=32,w=0.25"]
)
def test_students_export_to_onnx_and_match_pytorch(spec, tmp_path):
    from edgedistill.export import EXPORTERS
    from edgedistill.export.validate import FP32_TOLERANCE, onnx_predictions

    torch.manual_seed(0)
    student = build_student(Candidate.parse(spec), (1, 32, 32), 10).eval()
    assert sum(p.numel() for p in student.parameters()) <= 50_000
    artifact = EXPORTERS.get("onnx").export(student, torch.zeros(1, 1, 32, 32), tmp_path / "s.onnx")
    x = torch.randn(8, 1, 32, 32)
    exported = onnx_predictions(tmp_path / "s.onnx", x)
    with torch.no_grad():
        reference = student(x).numpy()
    assert artifact.input_shape == [1, 1, 32, 32]
    assert np.abs(exported - reference).max() < FP32_TOLERANCE
    assert not list(tmp_path.glob(".*tmp")), "no temporary export files left behind"


def test_short_specs_are_completed_with_the_family_defaults():
    from edgedistill.students import parse_student

    assert parse_student("mbv2:d=2,r=24,w=1.5").spec == "mbv2:d=2,e=4,k=3,r=24,se=0,w=1.5"


@pytest.mark.parametrize(
    ("knob", "cheaper", "dearer"),
    [("e", 3, 6), ("k", 3, 5), ("se", 0, 1)],
)
def test_new_knobs_change_the_architecture_cost(knob, cheaper, dearer):
    from edgedistill.students import parse_student

    def cost(value):
        spec = parse_student(f"mbv2:d=1,r=16,w=0.5,{knob}={value}")
        return model_cost(build_student(spec, (1, 32, 32), 10), (1, 32, 32))

    low, high = cost(cheaper), cost(dearer)
    assert high.macs > low.macs or high.kernels > low.kernels


def test_se_and_k5_students_export_to_onnx_and_match(tmp_path):
    from edgedistill.export import EXPORTERS
    from edgedistill.export.validate import onnx_predictions
    from edgedistill.students import parse_student

    torch.manual_seed(0)
    student = build_student(
        parse_student("mbv2:d=1,e=3,k=5,r=24,se=1,w=0.5"), (1, 32, 32), 10
    ).eval()
    EXPORTERS.get("onnx").export(student, torch.zeros(1, 1, 32, 32), tmp_path / "s.onnx")
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        reference = student(x).numpy()
    assert np.abs(onnx_predictions(tmp_path / "s.onnx", x) - reference).max() < 1e-4


def test_the_builtin_digits_teacher_is_larger_than_every_student_of_the_space():
    from edgedistill.students.select import candidate_cost
    from edgedistill.tasks.task import load_recipe
    from edgedistill.teachers.builtin import build_resnet

    recipe = load_recipe("digits")
    shape = (recipe.input.channels, recipe.input.height, recipe.input.width)
    teacher = model_cost(build_resnet(recipe.teacher, shape[0], len(recipe.labels)), shape)
    costs = [candidate_cost(c.spec, shape, len(recipe.labels)) for c in enumerate_space(shape)]
    assert teacher.params > max(c.params for c in costs)
    assert teacher.macs > max(c.macs for c in costs)
