"""The TBMI26 CIFAR-10 lab templates, filled in the ways students fill them in.

``tests/data/tbmi26/`` holds the lab's own templates (2022-23 and 2024, no student work) and the
course helper ``Custom.py``. The 2021 version, which asked ten questions, is derived here from the
2022-23 one by its documented differences (the Dropout and BatchNorm models get their own
"Train the ..." questions; the design task is Question 10).

``filled(version, ...)`` returns the template with every ``# === Your code here ===`` block filled
with a student's code, and a list of the cells that train a model, in order. ``evidence_of`` turns
that into the evidence a run of the notebook would give, with the reference architectures of the
course, so that selector and rubric tests need no kernel.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

import reference_models
from grader.model.evidence import CellError, CellRef, CompileInfo, DataFingerprint, Evidence, FitArgs, TrainingRun
from grader.notebook.cells import cells_from_notebook

TEMPLATES = Path(__file__).resolve().parent / "data" / "tbmi26"
CUSTOM_PY = TEMPLATES / "Custom.py"
VERSIONS = ("2021", "2023", "2024")

# Student code for each block, small enough to train in fast mode in a second. The 2022-23 and 2021
# templates give ``x_in`` (and, for the FC net, ``x = Flatten()(x_in)``) and expect ``x``.
FC = """x = Dense(48, activation='relu')(x)
x = Dense(24, activation='relu')(x)
x = Dense(10, activation='softmax')(x)"""
CNN = """x = Conv2D(8, (3, 3), activation='relu')(x_in)
x = MaxPooling2D((2, 2))(x)
x = Conv2D(12, (3, 3), activation='relu')(x)
x = MaxPooling2D((2, 2))(x)
x = Flatten()(x)
x = Dense(16, activation='relu')(x)
x = Dense(10, activation='softmax')(x)"""
DROPOUT = """x = Conv2D(8, (3, 3), activation='relu')(x_in)
x = MaxPooling2D((2, 2))(x)
x = Dropout(0.2)(x)
x = Conv2D(12, (3, 3), activation='relu')(x)
x = MaxPooling2D((2, 2))(x)
x = Dropout(0.2)(x)
x = Flatten()(x)
x = Dense(16, activation='relu')(x)
x = Dropout(0.5)(x)
x = Dense(10, activation='softmax')(x)"""
BATCHNORM = """x = Conv2D(8, (3, 3))(x_in)
x = BatchNormalization()(x)
x = Activation('relu')(x)
x = MaxPooling2D((2, 2))(x)
x = Conv2D(12, (3, 3))(x)
x = BatchNormalization()(x)
x = Activation('relu')(x)
x = MaxPooling2D((2, 2))(x)
x = Flatten()(x)
x = Dense(16, activation='relu')(x)
x = Dense(10, activation='softmax')(x)"""
FINAL = """x = Conv2D(16, (3, 3), padding='same')(x_in)
x = BatchNormalization()(x)
x = Activation('relu')(x)
x = MaxPooling2D((2, 2))(x)
x = Dropout(0.1)(x)
x = Conv2D(24, (3, 3), padding='same')(x)
x = BatchNormalization()(x)
x = Activation('relu')(x)
x = MaxPooling2D((2, 2))(x)
x = Dropout(0.2)(x)
x = Flatten()(x)
x = Dense(32, activation='relu')(x)
x = Dropout(0.3)(x)
x = Dense(10, activation='softmax')(x)"""
SOLUTION = {"fc": FC, "cnn": CNN, "dropout": DROPOUT, "batchnorm": BATCHNORM, "target": FINAL}
# The course's reference model for each block, for evidence built without a kernel.
REFERENCE = {"fc": "cifar10_fc", "cnn": "cifar10_cnn", "dropout": "cifar10_cnn_dropout",
             "batchnorm": "cifar10_cnn_bn", "target": "cifar10_cnn75"}
BLOCKS = ("fc", "cnn", "dropout", "batchnorm", "target")

_YOUR_CODE = re.compile(r"(?P<open>#\s*=+\s*Your code here\s*=*[^\n]*\n[ \t]*#\s*-+[^\n]*\n)(?:[ \t]*\n)*(?P<close>[ \t]*#\s*=+)")

# The 2021 template's question texts (from the course's 2021 report and the README of tests/data/tbmi26).
_RED = '#### **<span style="color:red">Question {n}:</span>**\n'
_GREEN = '#### **<span style="color:green">Answer:</span>**\n\\[Your answer here\\]'
_2021 = {
    "Question 2:": "Train a Fully Connected model that achieves above 45% accuracy on the test data. Provide a short "
                   "description of your model and show the evaluation image.",
    "Question 3:": "Compare the model from Q2 to the one you used for the MNIST dataset in the first assignment, in "
                   "terms of size and test accuracy. Why do you think this dataset is much harder to classify than "
                   "the MNIST handwritten digits?",
    "Question 4:": "Train a CNN model that achieves at least 62% test accuracy. Provide a short description of your "
                   "model and show the evaluation image.",
    "Question 5:": "Compare the CNN model with the previous Fully Connected model. You should find that the CNN is "
                   "much more efficient, i.e. achieves higher accuracy with fewer parameters. Explain in your own "
                   "words how this is possible.",
    "Question 6:": "Compare the models from Q4 and Q6 in terms of the training accuracy, validation accuracy, and "
                   "test accuracy. Explain the similarities and differences (remember that the only difference "
                   "between the models should be the addition of Dropout layers).\n\nHint: what does the dropout "
                   "layer do at test time?",
    "Question 7:": "When using BatchNorm one must take care to select a good minibatch size. Describe what problems "
                   "might arise if the wrong minibatch size is used. You can reason about this given the description "
                   "of BatchNorm in the Notebook, or you can search for the information in other sources. Do not "
                   "forget to provide links to the sources if you do!",
    "Question 8:": "Design and train a model that achieves at least 75% test accuracy in at most 25 epochs. Explain "
                   "your model and motivate the design choices you have made and show the evaluation image.",
}
_2021_NUMBER = {"Question 6:": 7, "Question 7:": 9, "Question 8:": 10}


def template(version: str) -> nbformat.NotebookNode:
    """The lab's template of ``version`` ("2021", "2023" or "2024"), unfilled."""
    if version == "2024":
        return nbformat.read(TEMPLATES / "CIFAR10-Lab-template-2024.ipynb", as_version=4)
    nb = nbformat.read(TEMPLATES / "CIFAR10-Lab-template-2023.ipynb", as_version=4)
    if version == "2023":
        return nb
    if version != "2021":
        raise ValueError(version)
    cells = []
    for cell in nb.cells:
        label = next((k for k in _2021 if cell.cell_type == "markdown" and k in cell.source and "color:red" in cell.source), None)
        if label == "Question 6:":  # the Dropout model gets its own question before the comparison
            cells += [nbformat.v4.new_markdown_cell(_RED.format(n=6) + "Train the modified CNN-model. Describe your "
                                                   "changes and show the evaluation image."),
                      nbformat.v4.new_markdown_cell(_GREEN)]
        if label == "Question 7:":  # and so does the BatchNorm model
            cells += [nbformat.v4.new_markdown_cell(_RED.format(n=8) + "Train the model and show the evaluation image."),
                      nbformat.v4.new_markdown_cell(_GREEN)]
        if label:
            number = _2021_NUMBER.get(label, int(label.split()[1].rstrip(":")))
            cell = copy.deepcopy(cell)
            cell.source = _RED.format(n=number) + _2021[label]
        cells.append(cell)
    nb.cells = cells
    for cell in nb.cells:  # 2021 students still wrote the Keras 2 optimizer arguments
        if cell.cell_type == "code":
            cell.source = cell.source.replace("SGD(learning_rate=0.01", "SGD(lr=0.01")
    return nb


def fill_block(source: str, code: str) -> str:
    """``source`` with its first empty "Your code here" block filled with ``code``, indented like
    the block."""
    match = _YOUR_CODE.search(source)
    if match is None:
        raise ValueError("no empty 'Your code here' block in this cell")
    indent = re.match(r"[ \t]*", match.group("close")).group(0)
    body = "".join(f"{indent}{line}\n" if line else "\n" for line in code.splitlines())
    return source[:match.start()] + match.group("open") + body + "\n" + match.group("close") + source[match.end():]


def _code_cells_with_blocks(nb: nbformat.NotebookNode) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and _YOUR_CODE.search(c.source)]


@dataclass
class Filled:
    notebook: nbformat.NotebookNode
    version: str
    fits: list[tuple[int, str]] = field(default_factory=list)  # (cell index, block) of each training cell

    def cell_of(self, block: str) -> int:
        return next(i for i, b in self.fits if b == block)

    def insert(self, at: int, *cells: nbformat.NotebookNode) -> None:
        """Insert cells before index ``at``; training cells after it move along."""
        self.notebook.cells[at:at] = list(cells)
        self.fits = [(i + len(cells) if i >= at else i, b) for i, b in self.fits]

    def add_fit(self, at: int, block: str, source: str) -> None:
        """A student's extra training cell, inserted before index ``at``."""
        self.insert(at, nbformat.v4.new_code_cell(source))
        self.fits = sorted(self.fits + [(at, block)])

    def answer(self, question: int, text: str) -> None:
        """Write ``text`` into the answer cell of the question numbered ``question`` in this version."""
        for i, cell in enumerate(self.notebook.cells):
            if cell.cell_type == "markdown" and f"Question {question}:" in cell.source and "color:red" in cell.source:
                answer = self.notebook.cells[i + 1]
                answer.source = answer.source.replace("\\[Your answer here\\]", text)
                return
        raise KeyError(question)

    def write(self, folder: Path, name: str = "lab.ipynb", *, custom: bool = True) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        nbformat.write(self.notebook, path)
        if custom:
            (folder / "Custom.py").write_bytes(CUSTOM_PY.read_bytes())
        return path


def filled(version: str, code: dict[str, str] | None = None, *, skip: tuple[str, ...] = ()) -> Filled:
    """The template of ``version`` with the five model blocks filled (``code`` overrides
    :data:`SOLUTION` per block; ``skip`` leaves blocks as the template has them)."""
    code = {**SOLUTION, **(code or {})}
    nb = template(version)
    blocks = _code_cells_with_blocks(nb)[:5]  # the sixth (2022-23) is the optional extra challenge
    fits: list[tuple[int, str]] = []
    for block, index in zip(BLOCKS, blocks):
        cell = nb.cells[index]
        if block not in skip:
            cell.source = fill_block(cell.source, code[block])
        # The training cell: in 2024 the build cell itself calls TrainModelAndPlotResults.
        if version == "2024":
            fits.append((index, block))
        else:
            fit = next(i for i in range(index + 1, len(nb.cells))
                       if nb.cells[i].cell_type == "code" and ".fit(" in nb.cells[i].source)
            fits.append((fit, block))
    return Filled(nb, version, fits)


def evidence_of(lab: Filled, *, model_ids: dict[int, str] | None = None,
                references: dict[int, str] | None = None, errors: dict[int, str] | None = None) -> Evidence:
    """What a run of ``lab`` records: one fit per training cell with the course's reference
    architecture of its block. ``model_ids`` gives a cell's fit the id of another model (a fit
    that trained a model left from an earlier cell); ``errors`` adds cell errors."""
    cells = cells_from_notebook(lab.notebook)
    runs = []
    for index, block in lab.fits:
        reference = (references or {}).get(index, REFERENCE[block])
        ref = reference_models.get(reference)
        epochs = ref.training.epochs
        runs.append(TrainingRun(
            index=len(runs), model_id=(model_ids or {}).get(index, f"m{len(runs) + 1}"),
            cell=CellRef(index, heading=cells[index].heading),
            architecture=reference_models.architecture(reference),
            compile=CompileInfo(optimizer="SGD", learning_rate=0.01, loss="categorical_crossentropy", metrics=["accuracy"]),
            fit=FitArgs(epochs=epochs, epochs_run=epochs, batch_size=32, train_samples=40000,
                        x=DataFingerprint(samples=40000, minimum=0.0, maximum=1.0, mean=0.47)),
            history={"loss": [1.0] * epochs, "accuracy": [0.6] * epochs,
                     "val_loss": [1.1] * epochs, "val_accuracy": [0.55] * epochs},
            variable="model",
        ))
    # Several fits of one model object take the architecture of its first fit.
    first = {}
    for run in runs:
        if run.model_id in first:
            run.architecture = first[run.model_id].architecture
        first.setdefault(run.model_id, run)
    cell_errors = [CellError(CellRef(i, heading=cells[i].heading), *message.split(": ", 1))
                   for i, message in (errors or {}).items()]
    return Evidence(submission="lab.ipynb", cells=cells, runs=runs, cell_errors=cell_errors, fast_mode=True)
