"""What the benchmarks share: the notebooks and rubrics they grade, and how they time a command.

Three kinds of notebook, written in code so that every run grades the same bytes:

* **small** — a few cells of plain Python and numpy and a written answer, no Keras: the cost of
  grading itself (kernel start, recorder, checks, storage, reports) dominates;
* **train** — builds a small CNN and trains it on synthetic 32×32×3 data for about a minute on
  two cores (``epochs`` sets how long): the cost of grading next to real work;
* **fast** — a CIFAR-10 lab in the course's style (``cifar10.load_data()``, a CNN, ``fit`` for
  10 epochs), graded in fast mode, where the grader caps the training.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BENCH_VENV = Path(os.environ.get("NN_GRADER_BENCH_VENV", "/work/bench-venv"))


def _notebook(*cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def small_notebook(student: int) -> nbformat.NotebookNode:
    return _notebook(
        new_markdown_cell("# Lab 0: warming up"),
        new_code_cell("import numpy as np\nimport math"),
        new_code_cell("x = np.linspace(0, 1, 10_001)\ntotal = float((x ** 2).mean())\nprint(round(total, 4))"),
        new_markdown_cell("## Question 1: what is 6 × 7?"),
        new_code_cell(f"answer = {42 if student % 4 else 41}  # student {student}"),
        new_code_cell("print('the answer is', answer)"),
    )


SMALL_RUBRIC = """\
name: bench-small
title: "Bench: small notebook"
tasks:
  - id: q1
    title: "Question 1"
    checks:
      - answer: {variable: answer, equals: 42}
      - code: {pattern: 'np\\.linspace'}
"""


def train_notebook(student: int, epochs: int) -> nbformat.NotebookNode:
    return _notebook(
        new_markdown_cell("# Lab 3: a CNN on 32×32 colour images"),
        new_code_cell("import numpy as np\nimport keras\nfrom keras import layers"),
        new_code_cell(
            "rng = np.random.default_rng(0)\n"
            "x_train = rng.random((8000, 32, 32, 3), dtype='float32')\n"
            "y_train = keras.utils.to_categorical(rng.integers(0, 10, 8000), 10)\n"
            "x_test = rng.random((1000, 32, 32, 3), dtype='float32')\n"
            "y_test = keras.utils.to_categorical(rng.integers(0, 10, 1000), 10)"),
        new_markdown_cell("## Question 1: a small CNN"),
        new_code_cell(
            "keras.utils.set_random_seed(%d)\n"
            "model = keras.Sequential([\n"
            "    keras.Input((32, 32, 3)),\n"
            "    layers.Conv2D(16, 3, activation='relu'), layers.MaxPooling2D(2),\n"
            "    layers.Conv2D(32, 3, activation='relu'), layers.MaxPooling2D(2),\n"
            "    layers.Flatten(), layers.Dense(64, activation='relu'), layers.Dense(10, activation='softmax'),\n"
            "])\n"
            "model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])\n"
            "history = model.fit(x_train, y_train, epochs=%d, batch_size=64, validation_split=0.1, verbose=2)"
            % (student, epochs)),
        new_code_cell("loss, accuracy = model.evaluate(x_test, y_test, verbose=0)\nprint(f'test accuracy {accuracy:.3f}')"),
    )


TRAIN_RUBRIC = """\
name: bench-train
title: "Bench: a CNN trained for a minute"
dataset: cifar10
data_source: synthetic
tasks:
  - id: cnn
    title: "Question 1: a small CNN"
    model: {fit: -1}
    checks:
      - layers: "(Conv2D MaxPooling2D)+ Flatten Dense+"
      - total_params: {at_most: 200_000}
      - test_accuracy: {at_least: 5%}
"""


def fast_notebook(student: int) -> nbformat.NotebookNode:
    return _notebook(
        new_markdown_cell("# Lab 4: CIFAR-10"),
        new_code_cell("import numpy as np\nimport keras\nfrom keras.datasets import cifar10"),
        new_code_cell(
            "(x_train, y_train), (x_test, y_test) = cifar10.load_data()\n"
            "x_train, x_test = x_train / 255.0, x_test / 255.0\n"
            "y_train = keras.utils.to_categorical(y_train, 10)\n"
            "y_test = keras.utils.to_categorical(y_test, 10)"),
        new_markdown_cell("## Question 4: a CNN with at least 62% test accuracy"),
        new_code_cell(
            "def CreateCNNModel():\n"
            "    model = keras.Sequential([\n"
            "        keras.Input((32, 32, 3)),\n"
            f"        keras.layers.Conv2D({16 + student % 3 * 8}, (3, 3), activation='relu'),\n"
            "        keras.layers.MaxPooling2D((2, 2)),\n"
            "        keras.layers.Flatten(),\n"
            "        keras.layers.Dense(10, activation='softmax'),\n"
            "    ])\n"
            "    model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])\n"
            "    return model\n"
            "model = CreateCNNModel()\n"
            "history = model.fit(x_train, y_train, epochs=10, batch_size=64, validation_split=0.1)"),
        new_code_cell("model.evaluate(x_test, y_test)"),
        new_markdown_cell("## Question 5: what did you observe?"),
        new_markdown_cell("The CNN learns faster than the dense model."),
    )


FAST_RUBRIC = """\
name: bench-fast
title: "Bench: CIFAR-10 lab in fast mode"
dataset: cifar10
data_source: synthetic
pass_mark: 50%
tasks:
  - id: cnn
    title: "Question 4: a CNN"
    model: {before: "Question 5"}
    checks:
      - layers: "(Conv2D MaxPooling2D)+ Flatten Dense+"
      - total_params: {at_most: LIMIT}
      - test_accuracy: {at_least: 62%}
"""


def write_batch(folder: Path, make, count: int) -> list[Path]:
    """``count`` notebooks ``make(i)`` as ``folder/student_XX.ipynb``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"student_{i:03d}.ipynb"
        nbformat.write(make(i), path)
        paths.append(path)
    return paths


def compile_grader() -> None:
    """Write the bytecode of the grader's own modules, as ``pip install`` does for an installed
    package and Python does on the first run of an editable one. Where ``PYTHONDONTWRITEBYTECODE``
    is set (as on some CI and sandbox machines) an editable checkout would otherwise compile every
    module from source on every run, and each timed command would pay ~0.3 s that an instructor's
    does not."""
    import compileall

    for package in ("grader", "reference_models"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


def load() -> float:
    """The 1-minute load average (the machine is shared)."""
    return os.getloadavg()[0]


@dataclass
class Timed:
    seconds: float
    returncode: int
    output: str
    load_before: float
    load_after: float


def timed(command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
          timeout: float = 900) -> Timed:
    """Run ``command`` and measure its wall-clock time."""
    before = load()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=timeout)
    seconds = time.perf_counter() - started
    return Timed(seconds, done.returncode, done.stdout + done.stderr, before, load())


def grade_command(paths: list[Path] | Path, rubric: Path, out: Path, *extra: str) -> list[str]:
    targets = [str(p) for p in paths] if isinstance(paths, list) else [str(paths)]
    return [PYTHON, "-m", "grader.cli", *targets, "--rubric", str(rubric), "--out", str(out), "--quiet", *extra]


def bare_command(paths: list[Path]) -> list[str]:
    return [PYTHON, str(ROOT / "bench" / "bare_nbclient.py"), *map(str, paths)]
