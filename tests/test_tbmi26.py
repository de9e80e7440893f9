"""The built-in cifar10 rubric on the real TBMI26 lab templates (2021, 2022-23, 2024), filled in
the ways students fill them in: every model task finds the model its question is about, and every
manual item finds the student's own answer cell.

The evidence here is what a run of the filled notebook records (tests/tbmi26.py), built without a
kernel; test_tbmi26_executed.py runs filled templates for real.
"""

from __future__ import annotations

import nbformat
import pytest

import reference_models
from grader.checks import grade
from grader.model.results import Status
from grader.rubric.load import load_rubric
from tests.tbmi26 import DROPOUT, REFERENCE, VERSIONS, evidence_of, filled

RUBRIC = load_rubric("cifar10")
MODEL_TASKS = {"fc": "fc", "cnn": "cnn", "cnn_efficiency": "cnn", "dropout": "dropout",
               "batchnorm": "batchnorm", "target": "target"}
# The question number of each manual item in each version.
QUESTIONS = {
    "2021": {"q1_shapes": 1, "q3_fc_vs_mnist": 3, "cnn_efficiency": 5, "q6_dropout_effect": 7, "q7_batch_size": 9, "design": 10},
    "2023": {"q1_shapes": 1, "q3_fc_vs_mnist": 3, "cnn_efficiency": 5, "q6_dropout_effect": 6, "q7_batch_size": 7, "design": 8},
}
QUESTIONS["2024"] = QUESTIONS["2023"]


def _params(reference: str) -> int:
    return reference_models.architecture(reference).total_params


def _tasks(evidence):
    return {t.task_id: t for t in grade(RUBRIC, evidence)}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_model_task_finds_the_model_of_its_question(version):
    lab = filled(version)
    tasks = _tasks(evidence_of(lab))
    for task_id, block in MODEL_TASKS.items():
        task = tasks[task_id]
        expected_cell = lab.cell_of(block)
        assert task.model_id is not None, f"{version} {task_id}: {task.selector_message}"
        assert f"in cell {expected_cell + 1} " in task.selector, f"{version} {task_id}: {task.selector}"
        assert f"({_params(REFERENCE[block]):,} params)" in task.selector


@pytest.mark.parametrize("version", VERSIONS)
def test_a_correct_lab_earns_every_structure_point(version):
    tasks = _tasks(evidence_of(filled(version)))
    structure = [(task, check) for task in tasks.values() for check in task.checks
                 # human-marked, or needs trained weights (fast-mode evidence)
                 if not (check.status is Status.MANUAL or check.check in ("test_accuracy", "compare"))]
    assert structure, f"{version}: no structure check to earn"
    for task, check in structure:
        assert check.status is Status.PASSED, f"{version} {task.task_id}: {check.title}: {check.message}"


@pytest.mark.parametrize("version", VERSIONS)
def test_manual_items_find_the_students_answer_not_the_next_course_cell(version):
    lab = filled(version)
    for task_id, number in QUESTIONS[version].items():
        lab.answer(number, f"My answer to question {number}.")
    tasks = _tasks(evidence_of(lab))
    for task_id, number in QUESTIONS[version].items():
        assert tasks[task_id].answer == f"My answer to question {number}.", task_id


@pytest.mark.parametrize("version", VERSIONS)
def test_the_templates_answer_placeholder_is_no_answer(version):
    tasks = _tasks(evidence_of(filled(version)))
    for task_id in QUESTIONS[version]:
        assert tasks[task_id].answer == "", f"{task_id}: {tasks[task_id].answer!r}"


def test_extra_experiments_in_a_section_grade_the_last_model_before_the_question():
    lab = filled("2023")
    first_try = lab.cell_of("cnn")
    # A first CNN that did badly, trained before the one the student keeps.
    lab.add_fit(first_try, "cnn", "model_try = Model(inputs=x_in, outputs=x)\nmodel_try.fit(X_train, y_train_c, epochs=3)")
    evidence = evidence_of(lab, references={first_try: "cifar10_fc"})
    task = _tasks(evidence)["cnn"]
    assert f"in cell {lab.cell_of('cnn') + 2} " in task.selector  # the second CNN cell
    assert "2 models were trained here" in task.selector and "chose the last" in task.selector


def test_the_extra_challenge_after_the_last_question_is_not_the_graded_model():
    lab = filled("2023")
    challenge = next(i for i, c in enumerate(lab.notebook.cells) if c.cell_type == "code" and "epochs=5" in c.source)
    lab.fits = sorted(lab.fits + [(challenge, "fc")])  # its fit trains something else entirely
    task = _tasks(evidence_of(lab))["target"]
    assert f"in cell {lab.cell_of('target') + 1} " in task.selector


def test_an_answer_that_quotes_a_later_question_does_not_move_the_selection():
    lab = filled("2023")
    # Question 3's answer, before the CNN section, quotes the CNN question's wording and the
    # Dropout section's.
    lab.answer(3, "Much harder: I doubt a CNN reaches at least 62% test accuracy, even with added dropout layers.")
    tasks = _tasks(evidence_of(lab))
    assert f"in cell {lab.cell_of('cnn') + 1} " in tasks["cnn"].selector, tasks["cnn"].selector_message
    assert tasks["cnn"].points == 3  # structure points of the CNN task


def test_a_note_repeating_the_question_before_the_training_cell_is_not_taken_for_the_question():
    lab = filled("2024")
    at = lab.cell_of("cnn")
    lab.insert(at, nbformat.v4.new_markdown_cell("My plan: conv blocks to get at least 62% test accuracy."))
    task = _tasks(evidence_of(lab))["cnn"]
    assert f"in cell {lab.cell_of('cnn') + 1} " in task.selector
    assert "chose cell" in task.selector and "the question cell" in task.selector


def test_a_failed_build_cell_that_retrains_the_previous_model_earns_nothing():
    # The Dropout cell raised NameError, so `model` was still the CNN; the fit below it trained the
    # CNN once more under the Dropout section.
    lab = filled("2023")
    cnn_id = "m2"
    build = lab.cell_of("dropout") - 1
    evidence = evidence_of(lab, model_ids={lab.cell_of("dropout"): cnn_id},
                           errors={build: "NameError: name 'Dropuot' is not defined"})
    tasks = _tasks(evidence)
    dropout = tasks["dropout"]
    assert dropout.model_id is None and dropout.points == 0
    assert "trained again" in dropout.selector_message and "NameError" in dropout.selector_message
    assert f"Cell {build + 1}" in dropout.selector_message
    assert tasks["cnn"].model_id == cnn_id  # the CNN task keeps its model


def test_reused_model_variable_fits_stay_apart_when_ids_are_distinct():
    # Five models bound to `model` in turn: five ids, and the epoch limit counts one model only.
    lab = filled("2023")
    tasks = _tasks(evidence_of(lab))
    epochs = next(c for c in tasks["target"].checks if c.check == "epochs")
    assert epochs.status is Status.PASSED, epochs.message


def test_version_2024_models_built_in_functions_trained_by_the_shared_helper():
    lab = filled("2024")
    tasks = _tasks(evidence_of(lab))
    assert tasks["fc"].model_id == "m1" and tasks["target"].model_id == "m5"
    lacks = next(c for c in tasks["fc"].checks if c.check == "lacks")
    assert lacks.status is Status.PASSED


# A partly filled lab: one block left as the template has it (issue 12, item 7).


@pytest.mark.parametrize("version", VERSIONS)
def test_an_empty_block_whose_fit_trained_the_previous_model_is_incomplete(version):
    # The empty Dropout block left `x` from the CNN section: building failed (2022-23: the
    # Model(...) line; 2024: inside the function), and the fit cell trained the CNN once more.
    lab = filled(version, skip=("dropout",))
    fit = lab.cell_of("dropout")
    build = fit if version == "2024" else fit - 1
    evidence = evidence_of(lab, model_ids={fit: "m2"}, errors={build: "ValueError: Graph disconnected"})
    tasks = _tasks(evidence)
    dropout = tasks["dropout"]
    assert dropout.model_id is None and dropout.points == 0
    assert "your code block for this task is empty" in dropout.selector_message
    assert f"cell {build + 1} still has" in dropout.selector_message
    assert tasks["cnn"].model_id == "m2" and tasks["batchnorm"].model_id == "m4"


@pytest.mark.parametrize("version", VERSIONS)
def test_an_empty_block_that_built_a_model_from_leftovers_does_not_score_on_it(version):
    # No error: the template's `model = Model(inputs=x_in, outputs=x)` made a model of what the
    # CNN section left in `x`, a new object with the CNN's architecture, and trained it.
    lab = filled(version, skip=("dropout",))
    evidence = evidence_of(lab, references={lab.cell_of("dropout"): "cifar10_cnn"})
    tasks = _tasks(evidence)
    dropout = tasks["dropout"]
    assert dropout.model_id is None and dropout.points == 0, dropout.selector
    assert "your code block for this task is empty" in dropout.selector_message
    assert tasks["batchnorm"].points == _tasks(evidence_of(filled(version)))["batchnorm"].points


@pytest.mark.parametrize("version", VERSIONS)
def test_an_empty_block_whose_fit_never_ran_is_incomplete_not_a_missing_model(version):
    lab = filled(version, skip=("fc",))
    lab.fits = [(i, b) for i, b in lab.fits if b != "fc"]  # NameError: nothing was trained
    tasks = _tasks(evidence_of(lab))
    assert tasks["fc"].model_id is None
    assert "your code block for this task is empty" in tasks["fc"].selector_message
    assert tasks["cnn"].model_id == "m1" and tasks["cnn"].points == 3
    # every model check of the task says why, not "no model matched"
    model_checks = [c for c in tasks["fc"].checks if c.check != "manual"]
    assert model_checks and all(c.status is Status.NOT_ASSESSED and "code block for this task is empty" in c.message
                                for c in model_checks)


def test_the_incomplete_selection_is_marked_as_such():
    from grader.checks import select_model

    lab = filled("2023", skip=("batchnorm",))
    selection = select_model(next(t for t in RUBRIC.tasks if t.id == "batchnorm").selector, evidence_of(lab))
    assert selection.target is None and selection.incomplete
    full = select_model(next(t for t in RUBRIC.tasks if t.id == "batchnorm").selector, evidence_of(filled("2023")))
    assert full.target is not None and not full.incomplete


def test_a_model_written_in_a_cell_of_the_students_own_next_to_the_empty_block_is_graded():
    lab = filled("2023", skip=("dropout",))
    fit = lab.cell_of("dropout")
    own = (f"from tensorflow.keras.layers import Dropout\nx_in = Input(shape=X_train.shape[1:])\n{DROPOUT}\n"
           "model = Model(inputs=x_in, outputs=x)\nmodel.compile(loss='categorical_crossentropy', optimizer='sgd')")
    lab.insert(fit, nbformat.v4.new_code_cell(own))
    tasks = _tasks(evidence_of(lab))
    dropout = tasks["dropout"]
    assert dropout.model_id == "m3", dropout.selector_message
    assert f"in cell {lab.cell_of('dropout') + 1} " in dropout.selector
