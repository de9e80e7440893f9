"""The dataset registry and datasets that are image folders (``train/<class>/*.png``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grader.data.image_folder import load_image_folder
from grader.data.load import check_source, load_dataset
from grader.data.registry import SPECS, DatasetKind, DatasetSpec, dataset_names, register, spec
from grader.errors import DatasetError

# Each class is a flat colour, so a label can be checked against its image.
COLOURS = {"cats": (200, 10, 10), "dogs": (10, 200, 10)}


def _folder(root: Path, counts: dict[str, dict[str, int]], size: tuple[int, int] = (12, 8)) -> Path:
    """``root/<split>/<class>/<i>.png``: ``counts[split][class]`` images of ``size`` (w, h)."""
    for split, classes in counts.items():
        for cls, n in classes.items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", size, COLOURS[cls]).save(root / split / cls / f"{i}.png")
    return root


TWO_BY_TWO = {"train": {"cats": 3, "dogs": 2}, "test": {"cats": 1, "dogs": 2}}


@pytest.fixture
def pets():
    """A dataset registered as a course would register Dogs vs Cats: one register() call."""
    registered = register(DatasetSpec("pets", (4, 6, 3), 2, "column", 5, 3,
                                      kind=DatasetKind.IMAGE_FOLDER, class_names=("cats", "dogs")))
    yield registered
    SPECS.pop("pets")


def test_the_keras_datasets_are_the_rubric_datasets():
    from grader.rubric.model import DATASETS

    assert DATASETS == dataset_names(DatasetKind.KERAS) == ("cifar10", "cifar100", "mnist", "fashion_mnist")


def test_images_become_uint8_arrays_of_the_dataset_shape_with_labels_by_class(tmp_path, pets):
    data = load_image_folder(_folder(tmp_path / "pets", TWO_BY_TWO), pets)
    assert data.x_train.shape == (5, 4, 6, 3) and data.x_train.dtype == np.uint8  # resized to 6×4
    assert data.y_train.shape == (5, 1) and data.x_test.shape == (3, 4, 6, 3)
    assert data.class_names == ("cats", "dogs") and data.classes == 2
    assert data.source == f"image-folder:{tmp_path / 'pets'}"
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        for image, label in zip(x, y[:, 0]):
            assert tuple(image[0, 0]) == COLOURS[data.class_names[label]]


def test_labels_follow_the_registered_class_order_not_the_folder_order(tmp_path):
    spec_ = DatasetSpec("x", (8, 12, 3), 2, "flat", 0, 0, kind=DatasetKind.IMAGE_FOLDER, class_names=("dogs", "cats"))
    data = load_image_folder(_folder(tmp_path / "x", TWO_BY_TWO), spec_)
    assert data.y_train.shape == (5,) and sorted(data.y_train.tolist()) == [0, 0, 1, 1, 1]
    assert tuple(data.x_train[data.y_train == 0][0, 0, 0]) == COLOURS["dogs"]


def test_a_grayscale_dataset_gets_one_channel(tmp_path):
    gray = DatasetSpec("g", (4, 4), 2, "flat", 0, 0, kind=DatasetKind.IMAGE_FOLDER)
    data = load_image_folder(_folder(tmp_path / "g", TWO_BY_TWO), gray)
    assert data.x_train.shape == (5, 4, 4) and data.class_names == ("cats", "dogs")


def test_without_a_spec_the_images_keep_their_size(tmp_path):
    data = load_image_folder(_folder(tmp_path / "raw", TWO_BY_TWO))
    assert data.x_train.shape == (5, 8, 12, 3) and data.name == "raw"


def test_a_folder_is_a_data_source_for_a_registered_dataset(tmp_path, pets):
    folder = _folder(tmp_path / "pets", TWO_BY_TWO)
    check_source("pets", str(folder))
    data = load_dataset("pets", source=str(folder), train_size=2)
    assert data.x_train.shape == (2, 4, 6, 3) and data.x_test.shape == (3, 4, 6, 3)


def test_a_new_dataset_is_one_registration_and_loads_by_name(tmp_path, monkeypatch, pets):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DatasetError, match=r"keras/datasets/pets/train/<class>/"):
        check_source("pets", "auto")
    _folder(tmp_path / "keras" / "datasets" / "pets", TWO_BY_TWO)
    check_source("pets", "auto")
    assert load_dataset("pets").x_train.shape == (5, 4, 6, 3)
    assert load_dataset("pets", source="synthetic", train_size=4, test_size=2).x_train.shape == (4, 4, 6, 3)
    assert "pets" in dataset_names() and "pets" not in dataset_names(DatasetKind.KERAS)
    assert spec("pets").cache_files == ("pets",)


def test_a_dataset_name_is_registered_once(pets):
    with pytest.raises(ValueError, match="twice"):
        register(DatasetSpec("pets", (4, 4, 3), 2, "column", 0, 0, kind=DatasetKind.IMAGE_FOLDER))


@pytest.mark.parametrize(("make", "words"), [
    (lambda root: root.mkdir(), "is a folder without train/ and test/"),
    (lambda root: _folder(root, {"train": {"cats": 1}}), "without test/"),
    (lambda root: _folder(root, {"train": {"cats": 1}, "test": {}}) and (root / "test").mkdir(exist_ok=True),
     "holds no class folder with images"),
    (lambda root: _folder(root, {"train": {"cats": 1}, "test": {"dogs": 1}}), "test/ has the classes dogs"),
])
def test_a_folder_that_is_not_an_image_dataset_is_refused_before_decoding(tmp_path, make, words):
    make(tmp_path / "d")
    with pytest.raises(DatasetError, match=words):
        check_source(None, str(tmp_path / "d"))


def test_class_folders_that_are_not_the_dataset_classes_are_refused(tmp_path):
    folder = _folder(tmp_path / "d", TWO_BY_TWO)
    with pytest.raises(DatasetError, match=r"class folders cats, dogs are not classes of cifar10"):
        check_source("cifar10", str(folder))


def test_a_damaged_image_names_the_file(tmp_path, pets):
    folder = _folder(tmp_path / "pets", TWO_BY_TWO)
    (folder / "train" / "dogs" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DatasetError, match=r"dogs/9.png is not a readable image"):
        load_dataset("pets", source=str(folder))


def test_images_of_different_sizes_need_a_registered_shape(tmp_path):
    folder = _folder(tmp_path / "d", TWO_BY_TWO)
    Image.new("RGB", (5, 5), COLOURS["dogs"]).save(folder / "test" / "dogs" / "odd.png")
    with pytest.raises(DatasetError, match="odd.png is 5×5, the images before it 12×8"):
        load_image_folder(folder)
