"""The dataset registry: every dataset the grader can load by name, registered in one place.

A :class:`DatasetSpec` says what the dataset looks like (image shape, class count and names,
label layout, the split sizes of the original) and how the grader finds it offline
(:attr:`DatasetSpec.kind`):

- :attr:`DatasetKind.KERAS`: a ``keras.datasets`` loader, read from the Keras cache
  (``$KERAS_HOME/datasets``) by Keras itself; the notebooks' ``load_data()`` is served the
  grader's copy (:mod:`grader.kernel.datasets_shim`).
- :attr:`DatasetKind.IMAGE_FOLDER`: a folder of images, one sub-folder per class, in ``train/``
  and ``test/`` (Dogs vs Cats, 8 faces), decoded by :mod:`grader.data.image_folder`; found under
  the same datasets folder, ``$KERAS_HOME/datasets/<name>/``, or given with ``--data PATH``.

Adding a dataset is one :func:`register` call::

    register(DatasetSpec("dogs_vs_cats", (150, 150, 3), 2, "column", 2_000, 1_000,
                         kind=DatasetKind.IMAGE_FOLDER, class_names=("cats", "dogs")))

This module imports only the standard library: the rubric schema reads :func:`dataset_names`.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

from grader.errors import DatasetError

__all__ = [
    "SPECS",
    "DatasetKind",
    "DatasetSpec",
    "dataset_names",
    "keras_cache_dir",
    "register",
    "spec",
]


class DatasetKind(str, enum.Enum):
    """How the grader finds a dataset offline."""

    KERAS = "keras"
    IMAGE_FOLDER = "image-folder"


@dataclass(frozen=True)
class DatasetSpec:
    """What one dataset looks like, and where the grader finds it (see the module docstring)."""

    name: str
    image_shape: tuple[int, ...]  # an image folder's images are resized to it
    classes: int
    label_shape: str  # "column" → (n, 1) as cifar; "flat" → (n,) as mnist
    train_size: int  # the original's split sizes (documentation; 0 when not known)
    test_size: int
    # What the grader looks for under keras_cache_dir(): Keras' download for KERAS, the folder
    # (train/ and test/ inside) for IMAGE_FOLDER, by default named like the dataset.
    cache_files: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    kind: DatasetKind = DatasetKind.KERAS

    def __post_init__(self) -> None:
        if self.kind is DatasetKind.IMAGE_FOLDER and not self.cache_files:
            object.__setattr__(self, "cache_files", (self.name,))


# The registry itself, by name; read it through spec() and dataset_names().
SPECS: dict[str, DatasetSpec] = {}


def register(dataset: DatasetSpec) -> DatasetSpec:
    """Add ``dataset`` to the registry (a :class:`ValueError` when its name is taken)."""
    if dataset.name in SPECS:
        raise ValueError(f"a dataset named {dataset.name!r} is registered twice")
    if dataset.class_names and len(dataset.class_names) != dataset.classes:
        raise ValueError(f"dataset {dataset.name!r}: {len(dataset.class_names)} class names for "
                         f"{dataset.classes} classes")
    SPECS[dataset.name] = dataset
    return dataset


def spec(name: str) -> DatasetSpec:
    """The registered dataset ``name``; :class:`DatasetError` naming the known ones otherwise."""
    try:
        return SPECS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}: known are {', '.join(sorted(SPECS))}") from None


def dataset_names(kind: DatasetKind | None = None) -> tuple[str, ...]:
    """The registered names (of ``kind`` only, when given), in registration order: the rubric
    schema's ``dataset`` enum."""
    return tuple(name for name, entry in SPECS.items() if kind is None or entry.kind is kind)


def keras_cache_dir() -> Path:
    """Where Keras keeps its downloads, and where the grader looks for every dataset by name."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


# -- the datasets of keras.datasets that course notebooks load
register(DatasetSpec(
    "cifar10", (32, 32, 3), 10, "column", 50_000, 10_000,
    ("cifar-10-batches-py", "cifar-10-batches-py.tar.gz"),
    ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
))
register(DatasetSpec(
    "cifar100", (32, 32, 3), 100, "column", 50_000, 10_000,
    ("cifar-100-python", "cifar-100-python.tar.gz"),
))
register(DatasetSpec(
    "mnist", (28, 28), 10, "flat", 60_000, 10_000, ("mnist.npz",), tuple(str(i) for i in range(10)),
))
register(DatasetSpec(
    "fashion_mnist", (28, 28), 10, "flat", 60_000, 10_000, ("fashion-mnist",),
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
))
