"""A loaded dataset: the four splits as numpy arrays, where they came from, and subsets of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.data.registry import SPECS

__all__ = ["Dataset", "subset"]


@dataclass
class Dataset:
    """The splits of dataset ``name``, as ``keras.datasets.<name>.load_data()`` returns them."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # "synthetic", "npz:/path", "keras-cache", "image-folder:/path"
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

