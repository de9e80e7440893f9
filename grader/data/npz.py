"""Reading and checking ``.npz`` dataset files (``--data``, ``--hidden-test``): untrusted files,
so every failure is one line naming the file and what is wrong with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.data.registry import SPECS
from grader.errors import DatasetError

__all__ = [
    "MAX_NPZ_BYTES",
    "SPLIT_KEYS",
    "TEST_KEYS",
    "check_arrays",
    "check_dataset_file",
    "check_hidden_test",
    "read_npz",
]

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

