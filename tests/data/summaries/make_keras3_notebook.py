"""Writes keras3_jupyter.ipynb: a notebook run by a real Jupyter kernel with today's Keras.

Its saved outputs are what static mode reads from a Keras 3 submission: summaries split over
several display outputs with ANSI colours, progress bars redrawn with backspaces. Its last cell
prints what Keras itself knows about every model (layers, shapes, parameter counts, history),
so a test can compare the parsed outputs with the truth of the same run.

``python tests/data/summaries/make_keras3_notebook.py`` (from the repository root, ~20 s)
rewrites the fixture; the slow round-trip test builds the same notebook in a temporary folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "keras3_jupyter.ipynb"
TRUTH_MARK = "KERAS-TRUTH "

CELLS = [
    ("markdown", "# Keras 3 outputs\nModels of every kind the course uses."),
    ("code", """\
import os, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import keras
from keras import layers
keras.utils.set_random_seed(0)
x_train = np.random.rand(96, 16, 16, 3).astype("float32")
y_train = keras.utils.to_categorical(np.random.randint(0, 4, 96), 4)
x_test, y_test = x_train[:32], y_train[:32]"""),
    ("markdown", "## Question 1: a small CNN"),
    ("code", """\
cnn = keras.Sequential([
    keras.Input((16, 16, 3)),
    layers.Conv2D(8, 3, activation="relu"),
    layers.BatchNormalization(),
    layers.MaxPooling2D(2),
    layers.Conv2D(16, (5, 5), padding="same"),
    layers.Flatten(),
    layers.Dropout(0.2),
    layers.Dense(4, activation="softmax"),
])
cnn.summary()"""),
    ("code", """\
cnn.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
            loss="categorical_crossentropy", metrics=["accuracy"])
history = cnn.fit(x_train, y_train, epochs=3, batch_size=16, validation_split=0.25)
cnn.summary()"""),
    ("code", """\
score = cnn.evaluate(x_test, y_test)
print("Test loss:", score[0])
print("Test accuracy:", score[1])"""),
    ("markdown", "## Question 2: two branches"),
    ("code", """\
image = keras.Input((16, 16, 3), name="image")
left = layers.Conv2D(4, 3, name="left_branch_with_a_rather_long_layer_name")(image)
right = layers.Conv2D(4, 3, padding="valid")(image)
joined = layers.Concatenate()([left, right])
pooled = layers.GlobalAveragePooling2D()(joined)
branches = keras.Model(image, layers.Dense(4, activation="softmax")(pooled), name="branches")
branches.summary()"""),
    ("markdown", "## Question 3: a frozen VGG16 base"),
    ("code", """\
base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
base.trainable = False
transfer = keras.Sequential([keras.Input((32, 32, 3)), base, layers.Flatten(),
                             layers.Dense(8, activation="relu"), layers.Dense(4)],
                            name="transfer")
transfer.summary()
transfer.summary(expand_nested=True, show_trainable=True)"""),
    ("code", """\
unbuilt = keras.Sequential([layers.Dense(8), layers.Dense(2)], name="unbuilt")
unbuilt.summary()"""),
    ("code", f"""\
def truth(model):
    rows = []
    for layer in model.layers:
        try:
            shape = list(layer.output.shape)
        except Exception:
            shape = None
        rows.append([layer.name, type(layer).__name__, shape,
                     layer.count_params() if layer.built else 0,
                     [l.name for l in getattr(layer, "layers", [])]])
    count = lambda ws: int(sum(np.prod(w.shape) for w in ws))
    return {{"name": model.name, "layers": rows,
            "trainable": count(model.trainable_weights),
            "non_trainable": count(model.non_trainable_weights)}}
print({TRUTH_MARK!r} + json.dumps({{
    "models": [truth(m) for m in (cnn, branches, transfer, unbuilt)],
    "history": {{k: [float(v) for v in vs] for k, vs in history.history.items()}},
    "score": [float(s) for s in score],
}}))"""),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell(src) if kind == "markdown" else new_code_cell(src)
                for kind, src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def execute(path: Path, timeout: int = 300) -> nbformat.NotebookNode:
    """Runs the notebook in a real kernel and saves it with its outputs at ``path``."""
    from nbclient import NotebookClient

    nb = build()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, str(path))
    return nb


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE
    execute(target)
    print(f"wrote {target}")
