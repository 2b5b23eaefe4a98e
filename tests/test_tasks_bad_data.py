"""Bad data is refused before any training, with a message naming the folder, file or field."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from edgedistill.errors import UserInputError
from edgedistill.tasks.task import load_task
from tests.byo_support import image_folder, write_images


def refused(spec: str, *fragments: str, task: str | None = None) -> str:
    with pytest.raises(UserInputError) as caught:
        load_task(task, data=spec)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_folder_without_images(tmp_path):
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    (tmp_path / "empty" / "cats" / "notes.txt").write_text("no images here")
    refused(f"imagefolder:{tmp_path / 'empty'}", "no images under", str(tmp_path / "empty"))


def test_missing_folder(tmp_path):
    refused(f"imagefolder:{tmp_path / 'nowhere'}", "--data", "no such folder")


def test_folder_with_one_class(tmp_path):
    root = image_folder(tmp_path / "one", classes=1, per_class=10)
    refused(f"imagefolder:{root}", str(root), "1 labeled class", "at least two")


def test_images_of_mixed_sizes_are_refused_with_the_odd_file_named(tmp_path):
    root = image_folder(tmp_path / "sizes", classes=2, per_class=6, size=(8, 8))
    odd = write_images(root / "class_1" / "big", 1, size=(10, 12))[0]
    refused(f"imagefolder:{root}", "differ in size", str(odd), "12x10", "preprocessing.resize")


def test_images_of_mixed_sizes_are_resized_when_the_recipe_gives_a_size(tmp_path):
    root = image_folder(tmp_path / "sizes", classes=2, per_class=6, size=(8, 8))
    write_images(root / "class_1" / "big", 1, size=(10, 12))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        textwrap.dedent(
            f"""
            name: sizes
            data: {{source: "imagefolder:{root}"}}
            input: {{channels: 3, height: 8, width: 8}}
            """
        )
    )
    task = load_task(str(recipe))
    assert task.data.input_shape == (3, 8, 8)
    assert any("differ in size" in note and "big/img_000.png" in note for note in task.notes)


def test_images_of_other_modes_are_converted_with_a_note(tmp_path):
    root = image_folder(tmp_path / "modes", classes=2, per_class=6, mode="RGB")
    write_images(root / "class_0" / "grey", 2, mode="L")
    write_images(root / "class_1" / "alpha", 1, mode="RGBA", label=1)
    task = load_task(data=f"imagefolder:{root}")
    assert task.data.input_shape[0] == 3
    (note,) = [n for n in task.notes if "converted to RGB" in n]
    assert note.startswith("3 images converted")


def test_sixteen_bit_images_are_refused_with_the_file_named(tmp_path):
    from PIL import Image

    root = image_folder(tmp_path / "deep", classes=2, per_class=4, mode="L")
    deep = root / "class_0" / "deep.png"
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(deep)
    assert Image.open(deep).mode.startswith("I")
    refused(f"imagefolder:{root}", str(deep), "16-bit")


def test_unreadable_image_is_named(tmp_path):
    root = image_folder(tmp_path / "broken", classes=2, per_class=4)
    broken = root / "class_1" / "broken.png"
    broken.write_bytes(b"not a png at all")
    refused(f"imagefolder:{root}", str(broken), "not a readable image")


def test_split_folders_mixed_with_class_folders(tmp_path):
    root = tmp_path / "mixed"
    write_images(root / "train" / "a", 3)
    write_images(root / "b", 3)
    refused(f"imagefolder:{root}", "mixes split folders", "train", "b")


def test_recipe_labels_that_disagree_with_the_folders(tmp_path):
    root = image_folder(tmp_path / "named", classes=2, per_class=6)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f'name: named\ndata: {{source: "imagefolder:{root}"}}\nlabels: [x, y]\n')
    with pytest.raises(UserInputError, match="field labels"):
        load_task(str(recipe))


@pytest.mark.parametrize(
    ("task_type", "match"),
    [
        ("regression", "field task_type is regression but the data"),
        ("embedding", "task_type is embedding but the data.*texts"),
    ],
)
def test_a_task_type_the_image_labels_do_not_fit_is_refused(task_type, match, tmp_path):
    root = image_folder(tmp_path / "images", classes=2, per_class=6)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f'name: typed\ntask_type: {task_type}\ndata: {{source: "imagefolder:{root}"}}\n'
    )
    with pytest.raises(UserInputError, match=match):
        load_task(str(recipe))


def test_npz_with_object_arrays_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4))
    refused(f"npz:{path}", str(path), "refused", "unpickling")


@pytest.mark.parametrize(
    ("arrays", "fragment"),
    [
        ({"y": np.arange(4)}, "no array x"),
        ({"x": np.zeros((4, 5, 5), np.uint8), "y": np.arange(3)}, "y must be 4 integer labels"),
        ({"x": np.zeros((4, 5), np.uint8), "y": np.arange(4)}, "array x has shape"),
        ({"x": np.zeros((4, 5, 5), np.uint8), "y": np.arange(4), "z": np.arange(2)}, "unknown"),
        (
            {
                "x": np.zeros((4, 5, 5), np.uint8),
                "y": np.arange(4),
                "x_test": np.zeros((2, 6, 6), np.uint8),
                "y_test": np.arange(2),
            },
            "every image array must match",
        ),
    ],
)
def test_npz_with_wrong_arrays_names_the_file_and_array(tmp_path, arrays, fragment):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    refused(f"npz:{path}", str(path), fragment)


def test_python_data_function_with_wrong_results(tmp_path):
    (tmp_path / "bad_data.py").write_text(
        "import torch\n"
        "def number():\n    return 3\n"
        "def flat():\n    return {'train': [(torch.zeros(5), 0)] * 4}\n"
        "def boom():\n    raise RuntimeError('disk on fire')\n"
    )
    base = tmp_path / "bad_data.py"
    refused(f"{base}:number", "not a map-style torch Dataset")
    refused(f"{base}:flat", "expected C x H x W")
    refused(f"{base}:boom", "disk on fire")
    refused(f"{base}:missing", "has no function 'missing'", "number")
    refused(f"{tmp_path / 'absent.py'}:fn", "no such file")


def test_unknown_data_scheme_is_named():
    refused("tarball:/data/x.tar", "--data", "tarball:/data/x.tar", "imagefolder:DIR")
