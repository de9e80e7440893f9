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


SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")
TEST_KEYS = ("x_test", "y_test")
# The arrays of an .npz are read whole into memory: a file that declares more than this (a zip
# bomb, or the wrong file) is refused before any of it is read. CIFAR-10 is 0.2 GB.
MAX_NPZ_BYTES = 16 * 2**30


def read_npz(path: Path, keys: tuple[str, ...] = SPLIT_KEYS) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the ``.npz`` at ``path``; :class:`DatasetError` (one line, naming the
    file and what is wrong with it) when it is missing, not an ``.npz``, damaged, or lacks a key."""
    import zipfile

    path = Path(path)
    hint = f"write one with numpy.savez(path, {', '.join(f'{key}=...' for key in keys)})"
    if path.is_dir():
        raise DatasetError(f"dataset file {path} is a folder, not an .npz file")
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    try:
        with path.open("rb") as handle:
            single = handle.read(6) == b"\x93NUMPY"
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if single:
        raise DatasetError(f"{path} is a single .npy array, not an .npz with the arrays {', '.join(keys)}; {hint}")
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise DatasetError(f"{path} is not a readable .npz file ({_reason(exc)}); {hint}") from None
    if declared > MAX_NPZ_BYTES:
        raise DatasetError(f"{path} declares {declared / 2**30:.1f} GiB of arrays, more than the "
                           f"{MAX_NPZ_BYTES / 2**30:.0f} GiB the grader reads; is it the right file?")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # untrusted file: any failure to read it is a problem of the file
        raise DatasetError(f"{path} is not a readable .npz file ({_reason(exc)}); {hint}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path} is a single .npy array, not an .npz with the arrays {', '.join(keys)}; {hint}")
    with npz:
        missing = [key for key in keys if key not in npz.files]
        if missing:
            found = f" (it has {', '.join(sorted(npz.files)[:8])})" if npz.files else " (it is empty)"
            raise DatasetError(f"{path} lacks the arrays {', '.join(missing)}{found}; {hint}")
        arrays = {}
        for key in keys:
            try:
                arrays[key] = npz[key]
            except Exception as exc:  # a damaged member, an object array, a cut-off file
                raise DatasetError(f"{path}: the array {key} cannot be read ({_reason(exc)})") from None
    return arrays


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160] or type(exc).__name__
    if "pickled" in text:
        return "it is not an .npz archive, or it holds Python objects, which the grader never unpickles"
    return text


def check_arrays(arrays: dict[str, np.ndarray], name: str | None, *, where: str, one_hot: bool = False) -> None:
    """Raise :class:`DatasetError` when the splits in ``arrays`` cannot stand in for
    ``keras.datasets.<name>.load_data()``: images as numbers of the dataset's shape, one integer
    class label per image in the dataset's range. ``one_hot`` also accepts one-hot label rows
    (a hidden test set: the verifier reads those)."""
    ds_spec = SPECS.get(name) if name else None
    problems: list[str] = []
    for split in ("train", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is None or y is None:
            continue
        xs, ys = f"x_{split}", f"y_{split}"
        if x.dtype.kind not in "biuf":
            problems.append(f"{xs} holds {x.dtype} values, not numbers (uint8 or float images)")
        if x.ndim < 2:
            problems.append(f"{xs} has shape {x.shape}: expected (images, height, width[, channels])")
        elif ds_spec is not None and x.shape[1:] != ds_spec.image_shape:
            problems.append(f"{xs} has shape {x.shape}: {ds_spec.name} images are {ds_spec.image_shape}, "
                            f"so expected ({x.shape[0]}, {', '.join(map(str, ds_spec.image_shape))})")
        if x.ndim and len(x) == 0:
            problems.append(f"{xs} holds no images")
        classes = ds_spec.classes if ds_spec is not None else None
        column = y.ndim == 2 and y.shape[1] == 1
        hot = one_hot and y.ndim == 2 and y.shape[1] > 1 and (classes is None or y.shape[1] == classes)
        if y.dtype.kind not in "biuf":
            problems.append(f"{ys} holds {y.dtype} values, not class numbers")
        elif not (y.ndim == 1 or column or hot):
            wanted = "(labels,) or (labels, 1)" + (" or one-hot (labels, classes)" if one_hot else "")
            guess = " (one-hot rows? give the class numbers)" if y.ndim == 2 and not one_hot else ""
            problems.append(f"{ys} has shape {y.shape}: expected class numbers, {wanted}{guess}")
        else:
            if x.ndim and y.ndim and len(y) != len(x):
                problems.append(f"{ys} has {len(y):,} labels for the {len(x):,} images of {xs}")
            if not hot and y.size:
                if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (np.mod(y, 1) == 0)):
                    problems.append(f"{ys} holds fractions, not class numbers")
                elif y.min() < 0 or (classes is not None and y.max() >= classes):
                    span = f"0 to {classes - 1}" if classes is not None else "0 or more"
                    problems.append(f"{ys} holds labels from {y.min():g} to {y.max():g}: {name} classes are {span}")
    if problems:
        raise DatasetError(f"{where}: " + "; ".join(problems))


def check_dataset_file(path: Path, name: str | None) -> None:
    """Check an ``--data`` file before a batch starts: readable, the four splits, the shapes and
    labels of dataset ``name`` (any shapes when the rubric names no known dataset)."""
    check_arrays(read_npz(path, SPLIT_KEYS), name, where=str(path))


def check_hidden_test(path: Path, name: str | None) -> None:
    """Check a ``--hidden-test`` file: readable, ``x_test`` and ``y_test`` of dataset ``name``'s
    shapes, labels as class numbers or one-hot rows."""
    check_arrays(read_npz(path, TEST_KEYS), name, where=str(path), one_hot=True)


def check_source(name: str | None, source: str) -> None:
    """Raise :class:`DatasetError` now, before any kernel starts, when ``load_dataset(name,
    source=source)`` would fail: a bad ``.npz``, or the Keras cache missing for ``auto``."""
    if source == "synthetic":
        if name:
            spec(name)
        return
    if source in ("auto", "keras-cache"):
        if name:
            _require_cache(spec(name))
        return
    check_dataset_file(Path(source), name)


def _from_npz(name: str, path: Path) -> Dataset:
    arrays = read_npz(path, SPLIT_KEYS)
    check_arrays(arrays, name, where=str(path))
    return Dataset(name, source=f"npz:{path}", class_names=SPECS[name].class_names if name in SPECS else (), **arrays)


def _require_cache(ds_spec: DatasetSpec) -> None:
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
