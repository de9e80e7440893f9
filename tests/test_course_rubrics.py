"""The course rubrics in rubrics/: each validates, and the reference solution earns every structure point.

A reference solution here is evidence built from the reference models (the architectures stored
in ``reference_models/architectures``), laid out like the course's notebook: the question cells,
the training cells, the written answers. Graded in fast mode, every check passes except those
that need fully trained weights (not assessed) and the manual items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import reference_models
from grader.checks import KINDS, grade
from grader.model.evidence import Cell, CellRef, CompileInfo, DataFingerprint, Evidence, FitArgs, ModelSnapshot, TrainingRun
from grader.model.results import Status
from grader.rubric.load import load_rubric, validate_rubric_file
from tests.tbmi26 import evidence_of, filled

RUBRICS = Path(__file__).resolve().parent.parent / "rubrics"
RUBRIC_FILES = sorted(RUBRICS.glob("*.yaml"))


@dataclass
class Fit:
    """A code cell that trains a reference model."""

    reference: str
    epochs: int | None = None
    variable: str = "model"
    mean: float = 0.5  # mean input value: 0.5 for pixels in [0, 1], 0 for standardized ones
    learning_rate: float | None = None


@dataclass
class Code:
    source: str


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+)$", re.MULTILINE)


def solution(*items: str | Fit | Code) -> Evidence:
    """Evidence of a notebook made of markdown cells (str), code cells and training cells."""
    cells, runs, heading = [], [], None
    for index, item in enumerate(items):
        if isinstance(item, str):
            found = _HEADING.search(item)
            heading = found.group(1).strip() if found else heading
            cells.append(Cell(index, "markdown", item, heading=heading))
            continue
        source = item.source if isinstance(item, Code) else f"history = {item.variable}.fit(x_train, y_train)"
        cells.append(Cell(index, "code", source, heading=heading, has_outputs=True))
        if isinstance(item, Fit):
            ref = reference_models.get(item.reference)
            epochs = item.epochs or ref.training.epochs
            runs.append(TrainingRun(
                index=len(runs), model_id=f"m{len(runs)}", cell=CellRef(index, heading=heading),
                architecture=reference_models.architecture(item.reference),
                compile=CompileInfo(optimizer=ref.compile.optimizer,
                                    learning_rate=item.learning_rate or ref.compile.learning_rate,
                                    loss=ref.compile.loss, metrics=list(ref.compile.metrics)),
                fit=FitArgs(epochs=epochs, epochs_run=epochs, batch_size=ref.training.batch_size, train_samples=2000,
                            x=DataFingerprint(samples=2000, minimum=min(0.0, item.mean - 2), maximum=1.0, mean=item.mean)),
                history={"loss": [1.0] * epochs, "accuracy": [0.5] * epochs,
                         "val_loss": [1.1] * epochs, "val_accuracy": [0.5] * epochs},
                variable=item.variable,
            ))
    models = [ModelSnapshot(run.model_id, run.variable, run.architecture) for run in runs[-1:]]
    return Evidence(submission="reference.ipynb", cells=cells, runs=runs, models=models, fast_mode=True)


SOLUTIONS = {
    # The lab's real 2022-23 template, filled in with the reference models (tests/tbmi26.py).
    "cifar10": evidence_of(filled("2023")),
    "mnist_cnn": solution(
        "# Convolutional Neural Networks for image data",
        "a) Where do we spend most learnable parameter? Can you explain the \"Param #\" of the dense_1 layer?",
        "In dense_1: 784 × 500 + 500 = 392,500 parameters.",
        "## cnn1",
        Fit("mnist_cnn1", mean=0.0),
        "How large is the accuracy on the validation set? Do you observe overfitting?",
        "About 98%; the curves stay close.",
        "## cnn2",
        Fit("mnist_cnn2", mean=0.0),
        "How is the performance of cnn2?",
        "99% on the validation set.",
    ),
    "dogs_vs_cats": solution(
        "# Dogs vs. Cats",
        "## Building our network",
        Fit("dogs_cats_convnet"),
        "## Why overfitting?",
        "Over 3M parameters for 2,000 images.",
        "## Using data augmentation",
        Code("train_datagen = ImageDataGenerator(\n    rescale=1./255,\n    rotation_range=40,\n    horizontal_flip=True,)\n"
             "test_datagen = ImageDataGenerator(rescale=1./255)"),
        Fit("dogs_cats_convnet_dropout"),
        "## Using a pretrained convnet",
        Fit("dogs_cats_vgg16_frozen"),
        "## Fine-tuning",
        Fit("dogs_cats_vgg16_finetune", learning_rate=1e-5),
        "Question: can steps 4 and 5 be merged?",
        "No: the large gradients of a random top destroy the pretrained base.",
    ),
    "lesson07_cnn": solution(
        "# Lesson 07: CNNs",
        Fit("hello_world_cnn"),
        "Question 2: The `Flatten` operation rearranges an input image (or feature map) into a sequence of numbers.",
        "4. all rows of the input are concatenated",
        "Question 3: For an input image shape of `28x28` what is the shape of the feature map after running "
        "the image through a single `5x5` convolutional filter?",
        "24x24",
        "Question 4: For an MNIST input image, how many parameters does a `Conv2D` layer require when being "
        "defined to produce `16` feature maps?",
        "Conv2D: 3·3·16 + 16 = 160. Dense: 784·16 + 16 = 12,560.",
        "Exercise: run the lesson notebook using the `fashionMNIST` dataset.",
        "Similar accuracy, a little lower.",
    ),
    "eight_faces": solution(
        "# 8 faces with fully connected networks",
        Fit("eight_faces_linear"),
        Fit("eight_faces_mlp"),
        "How good is the model? Look at the train valid and test accuracy.",
        "It overfits.",
        "# 8 faces with convolutional neural networks",
        Fit("eight_faces_cnn"),
        Fit("eight_faces_cnn_dropout"),
        Fit("eight_faces_cnn_bn"),
        "Do you expect it to be better then the last one with only fully connected layers?",
        "Yes, and it is.",
        "# 8 faces fine tuning",
        "What's the idea behind this so called fine tuning?",
        "Reuse features learned on a large dataset.",
        Fit("eight_faces_vgg_head"),
    ),
}


@pytest.mark.parametrize("path", RUBRIC_FILES, ids=[p.stem for p in RUBRIC_FILES])
def test_course_rubric_validates(path):
    assert validate_rubric_file(path) == []
    rubric = load_rubric(path)
    assert rubric.name == path.stem and rubric.max_points > 0


def test_every_seed_assignment_has_a_rubric():
    assert {p.stem for p in RUBRIC_FILES} >= {"mnist_cnn", "cifar10", "dogs_vs_cats", "lesson07_cnn", "eight_faces"}


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_reference_solution_earns_every_structure_point(name):
    rubric = load_rubric(RUBRICS / f"{name}.yaml")
    results = grade(rubric, SOLUTIONS[name], fast_mode=True)
    for task, result in zip(rubric.tasks, results):
        for check, outcome in zip(task.checks, result.checks):
            if check.kind == "manual":
                expected = Status.MANUAL
            elif KINDS[check.kind].accuracy or (check.kind == "compare" and "accuracy" in check.params):
                expected = Status.NOT_ASSESSED  # needs fully trained weights: not in fast mode
            else:
                expected = Status.PASSED
            assert outcome.status is expected, f"{task.id}: {outcome.title}: {outcome.message}"


def test_every_rubric_task_with_a_model_names_its_reference():
    model_tasks = [(path, task) for path in RUBRIC_FILES for task in load_rubric(path).tasks
                   if task.selector is not None and any(KINDS[c.kind].needs_model and c.kind != "manual" for c in task.checks)]
    assert model_tasks, "no bundled rubric has a model task: nothing to check"
    for path, task in model_tasks:
        assert task.reference, f"{path.name}: task {task.id} has no reference model"


def test_cifar10_rubric_states_the_lab_targets():
    rubric = load_rubric(RUBRICS / "cifar10.yaml")
    wanted = {(t.id, c.kind): c.params for t in rubric.tasks for c in t.checks}
    assert wanted[("fc", "test_accuracy")]["at_least"] == "45%"
    assert wanted[("cnn", "test_accuracy")]["at_least"] == "62%"
    assert wanted[("target", "test_accuracy")]["at_least"] == "75%"
    assert wanted[("target", "epochs")]["at_most"] == 25
    assert wanted[("cnn_efficiency", "compare")] == {"task": "fc", "params": "fewer", "accuracy": "higher"}


def test_lesson07_wrong_answers_fail_with_the_arithmetic_hint():
    rubric = load_rubric(RUBRICS / "lesson07_cnn.yaml")
    evidence = solution(
        Fit("hello_world_cnn"),
        "Question 3: what is the shape of the feature map after running the image through a single `5x5` convolutional filter?",
        "26x26",
        "Question 4: how many parameters does a `Conv2D` layer require?",
        "Conv2D: 144. Dense: 12,544.",
    )
    results = {t.task_id: t for t in grade(rubric, evidence, fast_mode=True)}
    shape = results["conv_output_shape"].checks[0]
    assert shape.status is Status.FAILED and "n − k + 1" in shape.message
    counts = results["param_counts"].checks
    assert [c.status for c in counts] == [Status.FAILED, Status.FAILED]
    assert "one bias per filter" in counts[0].message
