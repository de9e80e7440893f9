"""Datasets that are folders of images, one sub-folder per class (Dogs vs Cats, 8 faces)::

    <folder>/train/cats/cat.1.jpg   <folder>/train/dogs/dog.1.jpg   ...
    <folder>/test/cats/cat.1500.jpg <folder>/test/dogs/dog.1500.jpg ...

The layout ``keras.utils.image_dataset_from_directory`` reads, decoded here with Pillow and numpy
so that the grader's own process never imports TensorFlow. Classes are the sub-folders of
``train/`` in name order (as Keras numbers them), or the order of the registered
:attr:`~grader.data.registry.DatasetSpec.class_names`; images (``.bmp .gif .jpeg .jpg .png``,
in sub-folders too) are converted to the dataset's channels and resized to its
:attr:`~grader.data.registry.DatasetSpec.image_shape` (bilinear, as Keras does), giving
``uint8`` arrays like the Keras datasets. Other files and a ``validation/`` folder are not read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.data.dataset import Dataset
from grader.data.registry import DatasetSpec
from grader.errors import DatasetError

__all__ = ["IMAGE_SUFFIXES", "MAX_IMAGE_BYTES", "check_image_folder", "find_images", "load_image_folder"]

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras' directory loader reads
SPLITS = ("train", "test")
# The decoded arrays are held in memory: refuse, before decoding, a folder that would need more
# (the wrong folder, or an image size that does not fit the dataset).
MAX_IMAGE_BYTES = 16 * 2**30


def find_images(folder: Path) -> dict[str, dict[str, list[Path]]]:
    """The image files of ``folder``, by split and class: ``{"train": {"cats": [...]}, ...}``.

    Raises :class:`DatasetError`, saying how the folder must look, when ``train/`` or ``test/``
    is missing or holds no class folder with images, or ``test/`` has a class ``train/`` lacks.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"dataset folder {folder} does not exist")
    missing = [split for split in SPLITS if not (folder / split).is_dir()]
    if missing:
        raise DatasetError(
            f"dataset folder {folder} is a folder without {' and '.join(f'{s}/' for s in missing)} "
            "inside: put the images in train/<class>/ and test/<class>/ (one folder per class), "
            "or pass an .npz file with x_train, y_train, x_test, y_test")
    found: dict[str, dict[str, list[Path]]] = {}
    for split in SPLITS:
        classes: dict[str, list[Path]] = {}
        for sub in sorted(p for p in (folder / split).iterdir() if p.is_dir() and not p.name.startswith(".")):
            images = sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(sub).parts))
            if images:
                classes[sub.name] = images
        if not classes:
            raise DatasetError(f"dataset folder {folder / split} holds no class folder with images "
                               f"({', '.join(IMAGE_SUFFIXES)}): expected {split}/<class>/<image>")
        found[split] = classes
    extra = sorted(set(found["test"]) - set(found["train"]))
    if extra:
        raise DatasetError(f"dataset folder {folder}: test/ has the classes {', '.join(extra)}, "
                           "which train/ has no images of")
    return found


def check_image_folder(folder: Path, dataset: DatasetSpec | None) -> dict[str, dict[str, list[Path]]]:
    """:func:`find_images`, and the classes fit ``dataset`` (its class names, its class count);
    nothing is decoded. Returns what :func:`find_images` found."""
    found = find_images(folder)
    names = sorted(found["train"])
    if dataset is not None:
        if dataset.class_names and not set(names) <= set(dataset.class_names):
            unknown = sorted(set(names) - set(dataset.class_names))
            raise DatasetError(
                f"dataset folder {folder}: the class folders {', '.join(unknown)} are not classes of "
                f"{dataset.name} ({', '.join(dataset.class_names)})")
        if len(names) > dataset.classes:
            raise DatasetError(f"dataset folder {folder} has {len(names)} class folders: "
                               f"{dataset.name} has {dataset.classes} classes")
    return found


def load_image_folder(folder: Path, dataset: DatasetSpec | None = None, *, name: str | None = None) -> Dataset:
    """The images under ``folder`` (see the module docstring) as the splits of ``dataset``.

    Without ``dataset`` (or a dataset spec without class names), classes are numbered in folder
    name order and every image must have the size of the first one. Raises
    :class:`DatasetError` naming the file for an image that cannot be decoded.
    """
    folder = Path(folder)
    found = check_image_folder(folder, dataset)
    class_names = tuple(dataset.class_names) if dataset and dataset.class_names else tuple(sorted(found["train"]))
    label_of = {cls: index for index, cls in enumerate(class_names)}
    shape = tuple(dataset.image_shape) if dataset is not None else None
    count = sum(len(files) for split in found.values() for files in split.values())
    if shape is not None and count * int(np.prod(shape)) > MAX_IMAGE_BYTES:
        raise DatasetError(f"dataset folder {folder}: {count:,} images of {shape} would take more than "
                           f"the {MAX_IMAGE_BYTES / 2**30:.0f} GiB the grader holds in memory")
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover  (matplotlib depends on Pillow)
        raise DatasetError("reading an image folder needs Pillow: pip install pillow") from None
    arrays: dict[str, np.ndarray] = {}
    target = shape  # what every image is resized to; without a spec, the first image's size
    for split in SPLITS:
        images, labels = [], []
        for cls, files in found[split].items():
            for path in files:
                image = _decode(Image, path, target)
                if shape is None:
                    shape = image.shape
                elif image.shape != shape:
                    raise DatasetError(
                        f"{path} is {image.shape[1]}×{image.shape[0]}, the images before it "
                        f"{shape[1]}×{shape[0]}: register the dataset with an image_shape to resize them to")
                images.append(image)
                labels.append(label_of[cls])
        dtype = np.uint8 if len(class_names) <= 256 else np.int64
        y = np.asarray(labels, dtype=dtype)
        label_shape = dataset.label_shape if dataset is not None else "column"
        arrays[f"x_{split}"] = np.stack(images)
        arrays[f"y_{split}"] = y.reshape(-1, 1) if label_shape == "column" else y
    return Dataset(dataset.name if dataset is not None else (name or folder.name), source=f"image-folder:{folder}",
                   class_names=class_names, **arrays)


def _decode(Image: object, path: Path, shape: tuple[int, ...] | None) -> np.ndarray:
    """One image as a ``uint8`` array of ``shape`` (converted and resized), or as it is."""
    channels = shape[2] if shape is not None and len(shape) == 3 else (1 if shape is not None else None)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels or 3)
    if mode is None:
        raise DatasetError(f"images with {channels} channels are not supported: 1, 3 or 4")
    try:
        with Image.open(path) as opened:  # type: ignore[attr-defined]
            image = opened.convert(mode)
            if shape is not None and image.size != (shape[1], shape[0]):
                resample = getattr(Image, "Resampling", Image).BILINEAR  # type: ignore[attr-defined]
                image = image.resize((shape[1], shape[0]), resample)
            array = np.asarray(image, dtype=np.uint8)
    except DatasetError:
        raise
    except Exception as exc:  # a damaged or truncated file, or not an image at all
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise DatasetError(f"{path} is not a readable image ({reason})") from None
    if shape is not None and len(shape) == 3 and array.ndim == 2:
        array = array[:, :, None]
    return array
