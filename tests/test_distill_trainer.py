"""The trainer: frozen teachers, where gradients go, exact resume, a clean stop on request."""

from __future__ import annotations

import copy

import pytest
import torch

from edgedistill.distill.interrupt import StopFlag, TrainingStopped
from edgedistill.distill.objective import build_objective, build_terms
from edgedistill.distill.trainer import TrainOptions, train
from edgedistill.students import Candidate, build_student
from edgedistill.tasks.data import Split
from edgedistill.tasks.recipe import LossSpec, TrainSpec
from edgedistill.teachers.outputs import OnlineOutputs, TeacherRunner

SHAPE = (1, 16, 16)
CLASSES = 4


def tiny_data(n: int, seed: int) -> Split:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *SHAPE, generator=generator)
    y = (x[:, 0, :8].mean(dim=(1, 2)) > 0).long() * 2 + (x[:, 0, :, :8].mean(dim=(1, 2)) > 0)
    return Split(x, y)


TRAIN, VAL = tiny_data(80, 0), tiny_data(32, 1)
LOSSES = [
    LossSpec(name="kd", params={"temperature": 2.0}),
    LossSpec(name="fitnet", weight=0.5, params={"pairs": ["features.1=features.2"]}),
]


def make_teacher():
    torch.manual_seed(123)
    teacher = build_student(Candidate.parse("mbv2:d=1,r=16,w=0.5"), SHAPE, CLASSES)
    for module in teacher.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
    return teacher


def make_run(teacher, losses=LOSSES):
    torch.manual_seed(7)
    student = build_student(Candidate.parse("mbv2:d=1,r=8,w=0.25"), SHAPE, CLASSES)
    objective = build_objective(build_terms(losses), student, teacher, TRAIN.x[:2])
    runner = TeacherRunner([teacher], objective.teacher_layers, torch.device("cpu"))
    return student, objective, OnlineOutputs(runner, "test")


class StopAfter:
    """Teacher outputs that request a stop once `calls` batches have been served."""

    def __init__(self, outputs, stop: StopFlag, calls: int) -> None:
        self.outputs, self.stop, self.calls = outputs, stop, calls

    def get(self, index, x):
        self.calls -= 1
        if self.calls == 0:
            self.stop.request("test")
        return self.outputs.get(index, x)


SPEC = TrainSpec(epochs=4, batch_size=16, lr=0.01, patience=None, augment={"shift": 1})


def run_to_end(tmp_path, teacher, stop_after_calls=None, stop_after_epoch=None):
    """Train SPEC; optionally stop (mid-epoch or at an epoch end) and resume to the end."""
    state = tmp_path / "state.safetensors"
    student, objective, outputs = make_run(teacher)
    stop = StopFlag()
    options = TrainOptions(state_path=state, resume=True, run_digest="test", stop=stop)

    def progress(stage, done, total, note=""):
        if done == stop_after_epoch:
            stop.request("test")

    first = StopAfter(outputs, stop, stop_after_calls) if stop_after_calls else outputs
    try:
        train(
            student, TRAIN, VAL, SPEC, objective, first, seed=3, progress=progress, options=options
        )
    except TrainingStopped as stopped:
        assert "--resume" in str(stopped) and state.is_file()
        objective.model.release()
        student, objective, outputs = make_run(teacher)
        result = train(
            student, TRAIN, VAL, SPEC, objective, outputs, seed=3,
            options=TrainOptions(state_path=state, resume=True, run_digest="test"),
        )  # fmt: skip
        assert result.resumed
    else:
        assert stop_after_calls is None and stop_after_epoch is None
    objective.model.release()
    return objective.model.state_dict(), student


def test_two_epochs_then_resume_equals_four_in_one_go(tmp_path):
    teacher = make_teacher()
    straight, _ = run_to_end(tmp_path / "a", teacher)
    resumed, _ = run_to_end(tmp_path / "b", teacher, stop_after_epoch=2)
    assert straight.keys() == resumed.keys()
    for name, value in straight.items():
        assert torch.equal(value, resumed[name]), name


def test_a_stop_in_the_middle_of_an_epoch_resumes_exactly(tmp_path):
    teacher = make_teacher()
    straight, _ = run_to_end(tmp_path / "a", teacher)
    resumed, _ = run_to_end(tmp_path / "b", teacher, stop_after_calls=7)  # epoch 2, step 2
    for name, value in straight.items():
        assert torch.equal(value, resumed[name]), name


def test_resume_refuses_a_checkpoint_of_another_configuration(tmp_path):
    from edgedistill.errors import UserInputError

    teacher = make_teacher()
    run_to_end(tmp_path, teacher)
    student, objective, outputs = make_run(teacher)
    options = TrainOptions(state_path=tmp_path / "state.safetensors", resume=True, run_digest="x")
    with pytest.raises(UserInputError, match="different run configuration"):
        train(student, TRAIN, VAL, SPEC, objective, outputs, options=options)


def test_the_teacher_is_frozen_and_never_changes(tmp_path):
    teacher = make_teacher()
    before = copy.deepcopy(teacher.state_dict())
    run_to_end(tmp_path, teacher)
    assert not teacher.training
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    after = teacher.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_gradients_reach_the_student_and_its_projection_only():
    teacher = make_teacher()
    student, objective, outputs = make_run(teacher)
    logits, features = objective.model(TRAIN.x[:8])
    teacher_logits, teacher_features = outputs.get(torch.arange(8), TRAIN.x[:8])
    objective(logits, features, TRAIN.y[:8], teacher_logits, teacher_features, 1).backward()
    projection = objective.model.adapters["term1_pair0"]
    assert isinstance(projection, torch.nn.Conv2d)  # 8 -> 16 channels
    assert projection.weight.grad is not None and projection.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    objective.model.release()


def test_teachers_are_trained_on_labels_alone_without_an_objective():
    torch.manual_seed(0)
    model = build_student(Candidate.parse("mbv2:d=1,r=8,w=0.25"), SHAPE, CLASSES)
    spec = TrainSpec(epochs=6, batch_size=16, lr=0.02, patience=None)
    result = train(model, TRAIN, VAL, spec, seed=0)
    assert result.epochs_run == 6 and len(result.history) == 6
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_early_stopping_keeps_the_best_epoch():
    torch.manual_seed(0)
    model = build_student(Candidate.parse("mbv2:d=1,r=8,w=0.25"), SHAPE, CLASSES)
    spec = TrainSpec(epochs=30, batch_size=16, lr=0.5, patience=2, optimizer="sgd")
    result = train(model, TRAIN, VAL, spec, seed=0)
    assert result.epochs_run - result.best_epoch == 2 and result.epochs_run < 30
