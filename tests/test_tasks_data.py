"""Data adapters: image folders, npz arrays, Python datasets; splits, lazy decoding, fingerprint."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest
import torch

from edgedistill.tasks.data import Split, all_labels, iter_batches
from edgedistill.tasks.task import load_task
from tests.byo_support import image_folder, write_images


def data_task(spec: str, **kwargs):
    return load_task(data=spec, **kwargs)


def recipe_file(tmp_path, body: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(body))
    return str(path)


def everything(dataset):
    xs, ys = zip(*iter_batches(dataset), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_digits_split_is_what_the_preprocessing_describes():
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    task = load_task("digits")
    pre = task.recipe.preprocessing
    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) * pre.scale).unsqueeze(1)
    images = F.interpolate(images, size=tuple(pre.resize), mode="bilinear", align_corners=False)
    expected = (images - pre.mean[0]) / pre.std[0]
    assert isinstance(task.data.test, Split)
    sizes = task.data.split["sizes"]
    assert sizes == {"train": 1258, "val": 269, "test": 270}
    # each test image is one of the digits images, preprocessed exactly as described
    distances = torch.cdist(task.data.test.x.flatten(1)[:20], expected.flatten(1))
    assert torch.all(distances.min(dim=1).values == 0)


def test_image_folder_gives_shapes_labels_and_a_recorded_stratified_split(tmp_path):
    root = image_folder(tmp_path / "pets", classes=3, per_class=20, size=(8, 8))
    task = data_task(f"imagefolder:{root}")
    assert task.recipe.name == "pets"
    assert task.recipe.labels == ["class_0", "class_1", "class_2"]
    assert task.recipe.input.shape == (3, 8, 8) == task.data.input_shape
    assert task.recipe.preprocessing.scale == pytest.approx(1 / 255)
    assert task.data.split["method"].startswith("stratified 0.7/0.15/0.15, seed 0")
    assert task.data.split["sizes"] == {"train": 42, "val": 9, "test": 9}
    for split in (task.data.train, task.data.val, task.data.test):
        counts = torch.bincount(all_labels(split), minlength=3)
        assert counts.min() == counts.max()  # stratified: each class in the same proportion
    x, _ = everything(task.data.train)
    # normalised with the training images' own statistics
    assert x.mean(dim=(0, 2, 3)).abs().max() < 0.1
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 0.1


def test_split_folders_are_used_as_given_and_a_missing_val_is_split_off_train(tmp_path):
    root = tmp_path / "given"
    for label in range(2):
        write_images(root / "train" / f"c{label}", 20, label=label)
        write_images(root / "test" / f"c{label}", 5, label=label, seed=7)
    task = data_task(f"imagefolder:{root}")
    assert task.data.split["sizes"]["test"] == 10
    assert task.data.split["sizes"]["val"] + task.data.split["sizes"]["train"] == 40
    assert task.data.split["sizes"]["val"] > 0
    assert "val (0.15) split off train" in task.data.split["method"]


def test_unlabeled_folder_joins_train_with_label_minus_one(tmp_path):
    root = image_folder(tmp_path / "semi", classes=2, per_class=10)
    write_images(root / "unlabeled", 6, label=1, seed=3)
    task = data_task(f"imagefolder:{root}")
    labels = all_labels(task.data.train)
    assert int((labels == -1).sum()) == 6
    assert task.data.split["unlabeled_in_train"] == 6
    assert task.recipe.labels == ["class_0", "class_1"]  # unlabeled/ is not a class
    assert (all_labels(task.data.val) >= 0).all() and (all_labels(task.data.test) >= 0).all()


def test_lazily_decoded_splits_equal_the_in_memory_ones_with_worker_processes(tmp_path):
    root = image_folder(tmp_path / "lazy", classes=2, per_class=12, size=(8, 8))
    recipe = recipe_file(
        tmp_path,
        f"""
        name: lazy
        data: {{source: "imagefolder:{root}", in_memory_mb: 0}}
        """,
    )
    lazy = load_task(recipe, workers=2)
    eager = data_task(f"imagefolder:{root}")
    assert not isinstance(lazy.data.train, Split) and isinstance(eager.data.train, Split)
    assert lazy.data.split["in_memory"] is False
    assert lazy.data.fingerprint == eager.data.fingerprint
    for name in ("train", "val", "test"):
        x_lazy, y_lazy = everything(getattr(lazy.data, name))
        x_eager, y_eager = everything(getattr(eager.data, name))
        assert torch.equal(x_lazy, x_eager) and torch.equal(y_lazy, y_eager)
    assert len(lazy.data.train) == len(eager.data.train)


def test_labels_of_a_lazy_split_are_known_without_decoding_an_image(tmp_path):
    root = image_folder(tmp_path / "nodecode", classes=2, per_class=8)
    recipe = recipe_file(
        tmp_path,
        f"""
        name: nodecode
        data: {{source: "imagefolder:{root}", in_memory_mb: 0}}
        """,
    )
    task = load_task(recipe)
    for path in root.rglob("*.png"):
        path.unlink()  # decoding now would fail
    assert len(all_labels(task.data.train)) == len(task.data.train)


def test_fingerprint_changes_when_an_image_changes_and_only_then(tmp_path):
    root = image_folder(tmp_path / "fp", classes=2, per_class=6)
    first = data_task(f"imagefolder:{root}").data.fingerprint
    assert data_task(f"imagefolder:{root}").data.fingerprint == first
    victim = sorted(root.rglob("*.png"))[0]
    write_images(tmp_path / "other", 1, label=1, seed=99)
    os.replace(tmp_path / "other" / "img_000.png", victim)
    assert data_task(f"imagefolder:{root}").data.fingerprint != first


def test_recipe_preprocessing_resizes_and_orders_channels(tmp_path):
    from PIL import Image

    root = tmp_path / "colours"
    for name, colour in (("red", (250, 10, 10)), ("blue", (10, 10, 250))):
        (root / name).mkdir(parents=True)
        for index in range(8):
            Image.new("RGB", (8, 8), colour).save(root / name / f"{index}.png")
    recipe = recipe_file(
        tmp_path,
        f"""
        name: bgr
        data: {{source: "imagefolder:{root}"}}
        preprocessing:
          description: BGR, 0..1, 12x12
          resize: [12, 12]
          scale: 0.00392156862745098
          mean: [0.0, 0.0, 0.0]
          std: [1.0, 1.0, 1.0]
          channel_order: bgr
        """,
    )
    task = load_task(recipe)
    assert task.recipe.input.shape == (3, 12, 12)
    assert task.recipe.labels == ["blue", "red"]
    x, y = everything(task.data.train)
    red = x[y == 1]
    assert red.shape[1:] == (3, 12, 12)
    assert torch.allclose(red[:, 2], torch.full_like(red[:, 2], 250 / 255))  # R is last in BGR
    assert torch.allclose(red[:, 0], torch.full_like(red[:, 0], 10 / 255))


def test_npz_layouts_and_given_splits(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    nhwc = rng.integers(0, 256, (30, 10, 10, 3), dtype=np.uint8)
    np.savez(tmp_path / "nhwc.npz", x=nhwc, y=y)
    task = data_task(f"npz:{tmp_path / 'nhwc.npz'}")
    assert task.data.input_shape == (3, 10, 10)
    assert task.recipe.labels == ["0", "1", "2"]

    nchw = rng.normal(size=(30, 1, 6, 6)).astype(np.float32)
    np.savez(
        tmp_path / "nchw.npz",
        x=nchw,
        y=y,
        x_test=nchw[:6],
        y_test=y[:6],
        x_unlabeled=nchw[:4],
        labels=np.array(["a", "b", "c"]),
    )
    task = data_task(f"npz:{tmp_path / 'nchw.npz'}")
    assert task.data.input_shape == (1, 6, 6)
    assert task.recipe.labels == ["a", "b", "c"]
    assert task.recipe.preprocessing.scale == 1.0
    assert task.data.split["sizes"]["test"] == 6
    assert task.data.split["unlabeled_in_train"] == 4
    assert int((all_labels(task.data.train) == -1).sum()) == 4

    gray = rng.integers(0, 256, (30, 7, 9), dtype=np.uint8)
    np.savez(tmp_path / "gray.npz", x=gray, y=y)
    assert data_task(f"npz:{tmp_path / 'gray.npz'}").data.input_shape == (1, 7, 9)


PYTHON_DATA = """
import torch


class Blobs(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % 2
        self.x = torch.randn(n, 2, 5, 5, generator=g) + self.y.view(-1, 1, 1, 1).float()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def splits():
    return {"train": Blobs(40, 0), "test": Blobs(10, 1), "unlabeled": Blobs(6, 2)}


def single():
    return Blobs(40, 3)
"""


def test_python_function_returns_datasets_used_as_they_come(tmp_path, monkeypatch):
    (tmp_path / "my_blobs.py").write_text(PYTHON_DATA)
    task = data_task(f"{tmp_path / 'my_blobs.py'}:splits")
    assert task.recipe.name == "splits"
    assert task.data.input_shape == (2, 5, 5)
    assert task.data.split["sizes"]["test"] == 10
    assert task.data.split["unlabeled_in_train"] == 6
    assert "edgedistill applies none" in task.recipe.preprocessing.description
    x, y = everything(task.data.test)
    from importlib import util

    spec = util.spec_from_file_location("blobs_check", tmp_path / "my_blobs.py")
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reference = module.Blobs(10, 1)
    assert torch.equal(x, reference.x) and torch.equal(y, reference.y)

    monkeypatch.chdir(tmp_path)  # package.module:FN imports from the working directory
    single = data_task("my_blobs:single")
    assert single.data.split["method"].startswith("stratified")
    assert sum(single.data.split["sizes"].values()) == 40


def test_search_space_follows_the_input_size_of_the_data():
    from edgedistill.students import enumerate_space

    small = {c.knobs["r"] for c in enumerate_space((3, 12, 12))}
    assert max(small) <= 12


def test_training_on_lazy_data_uses_its_worker_processes_and_matches_in_memory(
    tmp_path, monkeypatch
):
    """fit's --workers reaches the training loop: lazily decoded data is read by worker
    processes there, and the weights equal those trained on the same data held in memory."""
    import torch.utils.data

    from edgedistill.distill.trainer import train
    from edgedistill.tasks.recipe import TrainSpec

    root = image_folder(tmp_path / "lazytrain", classes=2, per_class=12, size=(8, 8))
    recipe = recipe_file(
        tmp_path, f'name: lazytrain\ndata: {{source: "imagefolder:{root}", in_memory_mb: 0}}\n'
    )
    lazy = load_task(recipe, workers=2)
    eager = data_task(f"imagefolder:{root}")
    asked = []
    real_loader = torch.utils.data.DataLoader

    class SpyLoader(real_loader):
        def __init__(self, *args, **kwargs):
            if kwargs.get("batch_sampler") is not None:  # the training batches, not evaluation
                asked.append(kwargs.get("num_workers", 0))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(torch.utils.data, "DataLoader", SpyLoader)
    spec = TrainSpec(epochs=2, batch_size=8, lr=0.01, patience=2)
    weights = []
    for task in (lazy, eager):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
        train(model, task.data.train, task.data.val, spec, seed=0)
        weights.append(model.state_dict())
    assert asked and set(asked) == {2}
    for name, tensor in weights[0].items():
        assert torch.allclose(tensor, weights[1][name], atol=1e-6), name
