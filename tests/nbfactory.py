"""Small notebooks for tests, written in code: ``notebook(md("# Title"), code("x = 1"))``."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def md(source: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    cell = new_markdown_cell(source)
    if tags:
        cell.metadata["tags"] = tags
    return cell


def code(source: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    cell = new_code_cell(source)
    if tags:
        cell.metadata["tags"] = tags
    return cell


def notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# A tiny CIFAR-shaped training setup that runs in about a second once Keras is imported.
LOAD_CIFAR = """import numpy as np
import keras
from keras.datasets import cifar10
(x_train, y_train), (x_test, y_test) = cifar10.load_data()
x_train, x_test = x_train / 255.0, x_test / 255.0
y_train = keras.utils.to_categorical(y_train, 10)
y_test = keras.utils.to_categorical(y_test, 10)"""

SMALL_CNN = """def CreateCNNModel():
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(8, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model"""
# Conv2D 3·3·3·8 + 8 = 224; 15·15·8 = 1,800 inputs to Dense: 1,800·10 + 10 = 18,010.
SMALL_CNN_PARAMS = 224 + 18_010
