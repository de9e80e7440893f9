"""The course datasets, as the grader gets them: offline, deterministic, optionally a subset.

Course notebooks call ``keras.datasets.cifar10.load_data()`` (or ``mnist``, ``fashion_mnist``,
``cifar100``), which downloads. The grader prepares the data itself with :func:`load_dataset`
and writes it as an ``.npz`` into the submission's working folder; the kernel-side shim
(:mod:`grader.kernel.datasets_shim`) replaces the loaders with a read of that file. The same
function gives the clean verifier and reference training their copy of the data.

Sources, in the order ``source="auto"`` tries them:

1. a local ``.npz`` with ``x_train, y_train, x_test, y_test`` (``source="path/to/file.npz"``),
   or a folder of images, ``train/<class>/`` and ``test/<class>/`` (``source="path/to/folder"``,
   :mod:`grader.data.image_folder`);
2. the datasets folder (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``): Keras' own download,
   read by Keras' own loader, or, for an image-folder dataset, its folder there
   (:class:`~grader.data.registry.DatasetKind`);
3. only when asked for (``source="synthetic"``): a deterministic stand-in with the real shapes,
   dtypes and class count, whose classes are learnable, so accuracy checks mean something in tests.

Example::

    >>> data = load_dataset("cifar10", source="synthetic", train_size=100, test_size=20)
    >>> data.x_train.shape, data.x_train.dtype, data.y_train.shape
    ((100, 32, 32, 3), dtype('uint8'), (100, 1))
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from grader.data.dataset import Dataset, subset
from grader.data.image_folder import check_image_folder, load_image_folder
from grader.data.npz import SPLIT_KEYS, check_arrays, check_dataset_file, check_hidden_test, read_npz
from grader.data.registry import SPECS, DatasetKind, DatasetSpec, keras_cache_dir, spec
from grader.data.synthetic import synthetic
from grader.errors import DatasetError

# check_hidden_test sits beside check_source: the two checks run on the options before a batch.
__all__ = ["check_hidden_test", "check_source", "load_dataset"]


def load_dataset(
    name: str,
    *,
    source: str = "auto",
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
) -> Dataset:
    """The dataset ``name`` from ``source``, optionally cut to a stratified subset.

    ``source`` is ``"auto"`` (the datasets folder, else a :class:`DatasetError` that says which
    file to put where), ``"synthetic"``, a path to an ``.npz`` file, or a path to an image folder.
    ``train_size``/``test_size`` take a stratified subset (synthetic data is generated at that
    size; default 2,000/500 for synthetic).
    """
    ds_spec = spec(name)
    if source == "synthetic":
        data = synthetic(name, train_size=train_size or 2000, test_size=test_size or 500, seed=seed)
        return data
    if source in ("auto", "keras-cache"):
        data = _FROM_CACHE[ds_spec.kind](ds_spec)
    elif Path(source).is_dir():
        data = load_image_folder(Path(source), ds_spec)
    else:
        data = _from_npz(name, Path(source))
    if train_size or test_size:
        data = subset(data, train_size=train_size, test_size=test_size, seed=seed)
    return data


def check_source(name: str | None, source: str) -> None:
    """Raise :class:`DatasetError` now, before any kernel starts, when ``load_dataset(name,
    source=source)`` would fail: a bad ``.npz`` or image folder, or the data missing for ``auto``."""
    if source == "synthetic":
        if name:
            spec(name)
        return
    if source in ("auto", "keras-cache"):
        if name:
            _require_cache(spec(name))
        return
    if Path(source).is_dir():
        check_image_folder(Path(source), spec(name) if name else None)
        return
    check_dataset_file(Path(source), name)


def _from_npz(name: str, path: Path) -> Dataset:
    arrays = read_npz(path, SPLIT_KEYS)
    check_arrays(arrays, name, where=str(path))
    return Dataset(name, source=f"npz:{path}", class_names=SPECS[name].class_names if name in SPECS else (), **arrays)


def _require_cache(ds_spec: DatasetSpec) -> None:
    cache = keras_cache_dir()
    if ds_spec.kind is DatasetKind.IMAGE_FOLDER:
        folder = cache / ds_spec.cache_files[0]
        if not folder.is_dir():
            raise DatasetError(
                f"{ds_spec.name} is not available offline. Put its images at {folder}/train/<class>/ "
                f"and {folder}/test/<class>/, pass an image folder or an .npz file with x_train, "
                f"y_train, x_test, y_test (--data PATH), or use synthetic data (--data synthetic)."
            )
        return
    cache = keras_cache_dir()
    if not any((cache / f).exists() for f in ds_spec.cache_files):
        wanted = " or ".join(str(cache / f) for f in ds_spec.cache_files)
        raise DatasetError(
            f"{ds_spec.name} is not available offline. Put the Keras download at {wanted} "
            f"(copy ~/.keras/datasets from a machine with internet access), pass an .npz file with "
            f"x_train, y_train, x_test, y_test (--data PATH), or use synthetic data (--data synthetic)."
        )


def _from_keras_cache(ds_spec: DatasetSpec) -> Dataset:
    _require_cache(ds_spec)
    import keras  # the grader's own process, reading the official cache: never student data

    loader = getattr(keras.datasets, ds_spec.name)
    (x_train, y_train), (x_test, y_test) = loader.load_data()
    return Dataset(ds_spec.name, x_train, y_train, x_test, y_test, "keras-cache", ds_spec.class_names)


def _from_image_cache(ds_spec: DatasetSpec) -> Dataset:
    _require_cache(ds_spec)
    return load_image_folder(keras_cache_dir() / ds_spec.cache_files[0], ds_spec)


# How a dataset of each kind is read from the datasets folder (source "auto").
_FROM_CACHE: dict[DatasetKind, Callable[[DatasetSpec], Dataset]] = {
    DatasetKind.KERAS: _from_keras_cache,
    DatasetKind.IMAGE_FOLDER: _from_image_cache,
}
