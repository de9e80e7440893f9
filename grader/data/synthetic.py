"""Synthetic stand-ins for the registered datasets: the real shapes, dtypes and class count, with
classes a small CNN can learn, so an accuracy check over synthetic data means something in tests."""

from __future__ import annotations

import numpy as np

from grader.data.dataset import Dataset
from grader.data.registry import spec

__all__ = ["synthetic"]


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
