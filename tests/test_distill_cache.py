"""The teacher-output cache: equal to the online teacher, keyed by weights / data / transform,
rebuilt (never used) when stale, and bypassed when the input pipeline is random."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from edgedistill.students import Candidate, build_student
from edgedistill.tasks.data import Split
from edgedistill.teachers.cache import (
    cache_key,
    choose_outputs,
    open_or_build,
    teacher_digest,
)
from edgedistill.teachers.outputs import TeacherRunner

SHAPE = (1, 16, 16)
IDENTITY = {"fingerprint": "abc", "split": "train", "preprocessing": {"mean": [0.3]}}


@pytest.fixture()
def teacher():
    torch.manual_seed(0)
    return build_student(Candidate.parse("mbv2:d=1,r=16,w=0.5"), SHAPE, 5)


@pytest.fixture()
def data():
    return Split(
        torch.randn(40, *SHAPE, generator=torch.Generator().manual_seed(1)),
        torch.zeros(40, dtype=torch.long),
    )


def test_cached_outputs_equal_online_outputs(tmp_path, teacher, data):
    runner = TeacherRunner([teacher], ["features.1"], torch.device("cpu"))
    cached = open_or_build(runner, data, "k", root=tmp_path, batch_size=16)
    index = torch.tensor([3, 17, 0, 39, 21])
    cached_logits, cached_features = cached.get(index)
    online_logits, online_features = runner(data.x[index])
    assert (cached_logits[0] - online_logits[0]).abs().max().item() <= 1e-6
    assert (cached_features["features.1"] - online_features["features.1"]).abs().max() <= 1e-6
    assert isinstance(cached.logits[0], np.memmap)  # read memory-mapped, not loaded


def test_key_changes_with_teacher_weights_data_and_transform(teacher):
    digest = teacher_digest(teacher)
    base = cache_key([digest], [], IDENTITY)
    with torch.no_grad():
        next(teacher.parameters())[0].add_(1e-3)
    assert cache_key([teacher_digest(teacher)], [], IDENTITY) != base
    assert cache_key([digest], [], {**IDENTITY, "fingerprint": "abd"}) != base
    assert cache_key([digest], [], {**IDENTITY, "preprocessing": {"mean": [0.5]}}) != base
    assert cache_key([digest], ["features.1"], IDENTITY) != base
    assert cache_key([digest], [], dict(IDENTITY)) == base


def test_a_stale_entry_is_rebuilt_not_used(tmp_path, teacher, data, caplog):
    runner = TeacherRunner([teacher], [], torch.device("cpu"))
    open_or_build(runner, data, "k", root=tmp_path)
    stale = np.load(tmp_path / "k" / "logits-0.npy", mmap_mode="r+")
    stale[:] = 0.0  # e.g. written by other weights under a key that (wrongly) did not change
    stale.flush()
    del stale
    with caplog.at_level(logging.WARNING):
        cached = open_or_build(runner, data, "k", root=tmp_path)
    assert "rebuilding" in caplog.text
    logits, _ = cached.get(torch.arange(40))
    assert torch.allclose(logits[0], runner(data.x)[0][0], atol=1e-6)


def test_changed_teacher_weights_make_a_new_entry(tmp_path, teacher, data, monkeypatch):
    monkeypatch.setenv("EDGEDISTILL_CACHE_DIR", str(tmp_path))
    runner = TeacherRunner([teacher], [], torch.device("cpu"))
    first = choose_outputs(runner, data, IDENTITY, random_augment=False)
    with torch.no_grad():
        next(teacher.parameters()).mul_(1.5)
    second = choose_outputs(runner, data, IDENTITY, random_augment=False)
    assert first.mode == second.mode == "cached"
    assert first.folder != second.folder
    assert torch.allclose(second.get(torch.arange(40))[0][0], runner(data.x)[0][0], atol=1e-6)


def test_random_augmentation_runs_the_teacher_online_and_says_so(
    tmp_path, teacher, data, monkeypatch
):
    monkeypatch.setenv("EDGEDISTILL_CACHE_DIR", str(tmp_path))
    runner = TeacherRunner([teacher], [], torch.device("cpu"))
    outputs = choose_outputs(runner, data, IDENTITY, random_augment=True)
    assert outputs.mode == "online" and "augment" in outputs.reason
    assert not (tmp_path / "teacher-outputs").exists() or not any(
        (tmp_path / "teacher-outputs").iterdir()
    )


class NoisyDataset:
    """A dataset with a random transform: the same index gives different inputs."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return torch.randn(*SHAPE), torch.tensor(0)


def test_a_random_dataset_transform_runs_the_teacher_online(tmp_path, teacher, monkeypatch):
    monkeypatch.setenv("EDGEDISTILL_CACHE_DIR", str(tmp_path))
    runner = TeacherRunner([teacher], [], torch.device("cpu"))
    outputs = choose_outputs(runner, NoisyDataset(), IDENTITY, random_augment=False)
    assert outputs.mode == "online" and "random transform" in outputs.reason
