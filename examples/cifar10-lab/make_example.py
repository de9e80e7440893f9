"""Writes the example submissions of the CIFAR-10 lab (run from anywhere: paths are relative to
this file). The notebooks are committed; this script documents how they were made and rebuilds
them after a change to the lab.

    python examples/cifar10-lab/make_example.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent
OUT = HERE / "submissions"

INTRO = """# Lab 2 — Deep learning on CIFAR-10

Train fully connected and convolutional networks on CIFAR-10 (32×32 colour images, 10 classes).
Answer every question in the markdown cell after it."""

LOAD = """import numpy as np
from tensorflow import keras
from keras.datasets import cifar10
from keras.layers import Dense, Flatten, Conv2D, MaxPooling2D, Dropout, BatchNormalization, Activation
from keras.optimizers import SGD
from Custom import PlotModelEval

(X_train, y_train), (X_test, y_test) = cifar10.load_data()
X_train = X_train.astype("float32") / 255
X_test = X_test.astype("float32") / 255
Y_train = keras.utils.to_categorical(y_train, 10)
Y_test = keras.utils.to_categorical(y_test, 10)
print(X_train.shape, X_test.shape)"""

Q1 = "## Question 1\nThe shape of X_train and X_test has 4 values. What do each of these represent?"
A1 = "(number of images, height in pixels, width in pixels, colour channels RGB)"

Q2 = "## Question 2\nTrain a Fully Connected model that achieves above 45% accuracy on the test data."
FC = """model = keras.Sequential([
    keras.Input(shape=(32, 32, 3)),
    Flatten(),
    Dense(3072, activation="tanh"),
    Dense(1000, activation="tanh"),
    Dense(10, activation="softmax"),
])
model.compile(optimizer=SGD(learning_rate=0.01, momentum=0.9, nesterov=True),
              loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X_train, Y_train, epochs=EPOCHS_FC, batch_size=64, validation_split=0.2, verbose=2)
score = model.evaluate(X_test, Y_test, verbose=0)
print("Test accuracy:", score[1])
PlotModelEval(model, history, X_test, Y_test)"""

Q3 = "## Question 3\nWhy is CIFAR-10 much harder to classify than the MNIST handwritten digits?"
A3 = ("The images are in colour and show objects in many poses and backgrounds; a digit is a centred "
      "shape on a plain background, so far fewer features separate the classes.")

Q4 = "## Question 4\nTrain a CNN model that achieves at least 62% test accuracy."
CNN = """def CreateCNNModel(dropout=0.0, batchnorm=False):
    model = keras.Sequential()
    model.add(keras.Input(shape=(32, 32, 3)))
    model.add(Conv2D(32, (5, 5), activation="relu"))
    model.add(MaxPooling2D((2, 2)))
    EXTRA_BN_1
    model.add(Conv2D(64, (4, 4), activation="relu"))
    model.add(MaxPooling2D((3, 3)))
    EXTRA_BN_2
    SECOND_BLOCK
    model.add(Flatten())
    if dropout:
        model.add(Dropout(dropout))
    model.add(Dense(120, activation="relu"))
    model.add(Dense(10, activation="softmax"))
    model.compile(optimizer=SGD(learning_rate=0.01, momentum=0.9, nesterov=True),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model

model = CreateCNNModel()
history = model.fit(X_train, Y_train, epochs=EPOCHS, batch_size=64, validation_split=0.2, verbose=2)
score = model.evaluate(X_test, Y_test, verbose=0)
print("Test accuracy:", score[1])"""
SECOND_BLOCK = """model.add(Conv2D(120, (2, 2), activation="relu"))
    model.add(MaxPooling2D((2, 2)))"""

Q5 = "## Question 5\nTrain the CNN model with added Dropout layers."
DROPOUT = """model = CreateCNNModel(dropout=0.3)
history = model.fit(X_train, Y_train, epochs=EPOCHS, batch_size=64, validation_split=0.2, verbose=2)
score = model.evaluate(X_test, Y_test, verbose=0)
print("Test accuracy:", score[1])"""

Q7 = "## Question 7\nTrain the CNN model with added BatchNorm layers."
BN = """model = CreateCNNModel(batchnorm=True)
history = model.fit(X_train, Y_train, epochs=EPOCHS, batch_size=64, validation_split=0.2, verbose=2)
score = model.evaluate(X_test, Y_test, verbose=0)
print("Test accuracy:", score[1])"""

Q8 = ("## Question 8\nWhen using BatchNorm one must take care to select a good minibatch size. "
      "Describe what problems might arise if the wrong minibatch size is used.")
A8 = ("With very small minibatches the batch mean and variance are noisy estimates, so the normalisation "
      "jumps from batch to batch and training becomes unstable; the running statistics used at test time "
      "are then poor as well.")


def cnn(second_block: bool = True, bn: bool = True) -> str:
    code = CNN.replace("SECOND_BLOCK", SECOND_BLOCK if second_block else "")
    bn_line = 'if batchnorm:\n        model.add(BatchNormalization(momentum=0.9))' if bn else ""
    code = code.replace("EXTRA_BN_1", bn_line).replace("EXTRA_BN_2", bn_line)
    return "\n".join(line for line in code.splitlines() if line.strip() or not line)


def lab(*, fc: str = FC, cnn_code: str | None = None, dropout: str = DROPOUT, bn: str = BN,
        answers: tuple[str, str, str] = (A1, A3, A8), epochs: int = 5) -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(INTRO), new_code_cell(LOAD),
        new_markdown_cell(Q1), new_markdown_cell(answers[0]),
        new_markdown_cell(Q2), new_code_cell(fc.replace("EPOCHS_FC", "2")),
        new_markdown_cell(Q3), new_markdown_cell(answers[1]),
        new_markdown_cell(Q4), new_code_cell((cnn_code or cnn()).replace("EPOCHS", str(epochs))),
        new_markdown_cell(Q5), new_code_cell(dropout.replace("EPOCHS", str(epochs))),
        new_markdown_cell(Q7), new_code_cell(bn.replace("EPOCHS", str(epochs))),
        new_markdown_cell(Q8), new_markdown_cell(answers[2]),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def main() -> None:
    OUT.mkdir(exist_ok=True)
    # A complete, correct solution.
    nbformat.write(lab(), OUT / "alice_correct.ipynb")
    # The CNN lacks its third Conv2D/MaxPooling2D block: other parameter count, other layer order.
    nbformat.write(lab(cnn_code=cnn(second_block=False)), OUT / "bob_missing_layer.ipynb")
    # A typo in the Dropout cell: that cell fails, the BatchNorm cell after it still runs.
    nbformat.write(lab(dropout=DROPOUT.replace("CreateCNNModel(dropout=0.3)", "CreateCNNModell(dropout=0.3)")),
                   OUT / "carol_failing_cell.ipynb")
    # An unfinished notebook: models are defined but nothing is trained.
    never = lab(fc=FC.split("history =")[0] + "# TODO: train the model",
                cnn_code=cnn().split("model = CreateCNNModel()")[0] + "model = CreateCNNModel()\n# TODO: train",
                dropout="# TODO", bn="# TODO", answers=("TODO", "TODO", "TODO"))
    nbformat.write(never, OUT / "dave_never_trains.ipynb")
    # A file broken by a git merge conflict: not valid JSON any more.
    text = nbformat.writes(lab())
    lines = text.splitlines()
    cut = len(lines) // 3
    broken = lines[:cut] + ["<<<<<<< HEAD", lines[cut], "=======", lines[cut].replace("64", "32"),
                            ">>>>>>> origin/main"] + lines[cut + 1:]
    (OUT / "erin_merge_conflict.ipynb").write_text("\n".join(broken) + "\n")


if __name__ == "__main__":
    main()
