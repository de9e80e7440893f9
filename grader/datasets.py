"""The course datasets, as the grader gets them: offline, deterministic, optionally a subset.

Course notebooks call ``keras.datasets.cifar10.load_data()`` (or ``mnist``, ``fashion_mnist``,
``cifar100``), which downloads. The grader prepares the data itself with :func:`load_dataset`
and writes it as an ``.npz`` into the submission's working folder; the kernel-side shim
(:mod:`grader.kernel.datasets_shim`) replaces the loaders with a read of that file. The same
function gives the clean verifier and reference training their copy of the data.

Sources, in the order ``source="auto"`` tries them:

1. a local ``.npz`` with ``x_train, y_train, x_test, y_test`` (``source="path/to/file.npz"``);
2. the Keras cache (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``), read by Keras' own loader;
3. only when asked for (``source="synthetic"``): a deterministic stand-in with the real shapes,
   dtypes and class count, whose classes are learnable, so accuracy checks mean something in tests.

Example::

    >>> data = load_dataset("cifar10", source="synthetic", train_size=100, test_size=20)
    >>> data.x_train.shape, data.x_train.dtype, data.y_train.shape
    ((100, 32, 32, 3), dtype('uint8'), (100, 1))
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.errors import DatasetError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    image_shape: tuple[int, ...]
    classes: int
    label_shape: str  # "column" → (n, 1) as cifar; "flat" → (n,) as mnist
    train_size: int
    test_size: int
    cache_files: tuple[str, ...]  # what Keras keeps under $KERAS_HOME/datasets
    class_names: tuple[str, ...] = ()


SPECS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        "cifar10", (32, 32, 3), 10, "column", 50_000, 10_000,
        ("cifar-10-batches-py", "cifar-10-batches-py.tar.gz"),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    ),
    "cifar100": DatasetSpec(
        "cifar100", (32, 32, 3), 100, "column", 50_000, 10_000,
        ("cifar-100-python", "cifar-100-python.tar.gz"),
    ),
    "mnist": DatasetSpec(
        "mnist", (28, 28), 10, "flat", 60_000, 10_000, ("mnist.npz",), tuple(str(i) for i in range(10)),
    ),
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", (28, 28), 10, "flat", 60_000, 10_000, ("fashion-mnist",),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
}


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # "synthetic", "npz:/path", "keras-cache"
    class_names: tuple[str, ...] = ()

    @property
    def classes(self) -> int:
        return SPECS[self.name].classes if self.name in SPECS else int(self.y_train.max()) + 1

    def save_npz(self, path: Path) -> Path:
        """Write the splits in the layout the kernel shim reads (uncompressed: loads in ms)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x_train=self.x_train, y_train=self.y_train, x_test=self.x_test, y_test=self.y_test)
        return path

    def fingerprint(self) -> str:
        """A short content hash, for cache keys."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]


def spec(name: str) -> DatasetSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}: known are {', '.join(sorted(SPECS))}") from None


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


def load_dataset(
    name: str,
    *,
    source: str = "auto",
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
) -> Dataset:
    """The dataset ``name`` from ``source``, optionally cut to a stratified subset.

    ``source`` is ``"auto"`` (local cache, else a :class:`DatasetError` that says which file to put
    where), ``"synthetic"``, or a path to an ``.npz`` file. ``train_size``/``test_size`` take a
    stratified subset (synthetic data is generated at that size; default 2,000/500 for synthetic).
    """
    ds_spec = spec(name)
    if source == "synthetic":
        data = synthetic(name, train_size=train_size or 2000, test_size=test_size or 500, seed=seed)
        return data
    if source not in ("auto", "keras-cache"):
        data = _from_npz(name, Path(source))
    else:
        data = _from_keras_cache(ds_spec)
    if train_size or test_size:
        data = subset(data, train_size=train_size, test_size=test_size, seed=seed)
    return data


def _from_npz(name: str, path: Path) -> Dataset:
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(npz.files)
            if missing:
                raise DatasetError(f"{path} lacks the arrays {', '.join(sorted(missing))}")
            arrays = {key: npz[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable .npz file: {exc}") from None
    return Dataset(name, source=f"npz:{path}", class_names=SPECS[name].class_names if name in SPECS else (), **arrays)


def _from_keras_cache(ds_spec: DatasetSpec) -> Dataset:
    cache = keras_cache_dir()
    if not any((cache / f).exists() for f in ds_spec.cache_files):
        wanted = " or ".join(str(cache / f) for f in ds_spec.cache_files)
        raise DatasetError(
            f"{ds_spec.name} is not available offline. Put the Keras download at {wanted} "
            f"(copy ~/.keras/datasets from a machine with internet access), pass an .npz file with "
            f"x_train, y_train, x_test, y_test (--data PATH), or use synthetic data (--data synthetic)."
        )
    import keras  # the grader's own process, reading the official cache: never student data

    loader = getattr(keras.datasets, ds_spec.name)
    (x_train, y_train), (x_test, y_test) = loader.load_data()
    return Dataset(ds_spec.name, x_train, y_train, x_test, y_test, "keras-cache", ds_spec.class_names)


def subset(data: Dataset, *, train_size: int | None, test_size: int | None, seed: int = 0) -> Dataset:
    """A stratified subset: the same share of every class as the full split."""
    rng = np.random.default_rng(seed)

    def pick(y: np.ndarray, n: int | None) -> np.ndarray:
        labels = y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y
        if n is None or n >= len(labels):
            return np.arange(len(labels))
        chosen = []
        classes, counts = np.unique(labels, return_counts=True)
        shares = np.floor(counts / counts.sum() * n).astype(int)
        shares[: n - shares.sum()] += 1  # hand out the rounding remainder
        for cls, share in zip(classes, shares):
            members = np.flatnonzero(labels == cls)
            chosen.append(rng.choice(members, size=min(share, len(members)), replace=False))
        return np.sort(np.concatenate(chosen))

    tr, te = pick(data.y_train, train_size), pick(data.y_test, test_size)
    return Dataset(
        data.name, data.x_train[tr], data.y_train[tr], data.x_test[te], data.y_test[te],
        data.source, data.class_names,
    )


def synthetic(name: str, *, train_size: int = 2000, test_size: int = 500, seed: int = 0) -> Dataset:
    """A deterministic stand-in for ``name`` with the real shapes, dtypes and class count.

    Each class is a smooth random prototype image; samples are the prototype, shifted by up to two
    pixels, scaled in brightness and overlaid with noise. A small CNN separates the classes in one
    epoch; a linear model does less well. So an accuracy check over synthetic data is a real check.
    """
    ds_spec = spec(name)
    rng = np.random.default_rng(seed + 1000 * sum(map(ord, name)))
    h, w = ds_spec.image_shape[:2]
    channels = ds_spec.image_shape[2] if len(ds_spec.image_shape) == 3 else 1
    coarse = rng.uniform(0, 255, size=(ds_spec.classes, h // 4 + 1, w // 4 + 1, channels))
    prototypes = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)[:, :h, :w, :]

    def make(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % ds_spec.classes
        rng.shuffle(labels)
        images = prototypes[labels]
        shifts = rng.integers(-2, 3, size=(n, 2))
        images = np.stack([np.roll(img, tuple(s), axis=(0, 1)) for img, s in zip(images, shifts)])
        images = images * rng.uniform(0.7, 1.0, size=(n, 1, 1, 1)) + rng.normal(0, 40, size=images.shape)
        x = np.clip(images, 0, 255).astype(np.uint8).reshape((n, *ds_spec.image_shape))
        y = labels.astype(np.uint8)
        return x, (y.reshape(-1, 1) if ds_spec.label_shape == "column" else y)

    x_train, y_train = make(train_size, np.random.default_rng(seed + 1))
    x_test, y_test = make(test_size, np.random.default_rng(seed + 2))
    return Dataset(name, x_train, y_train, x_test, y_test, "synthetic", ds_spec.class_names)
