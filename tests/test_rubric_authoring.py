"""Rubric authoring: ``grade rubric init`` drafts a rubric from a course template, ``explain``
shows what it picks in a filled-in notebook, ``validate --against`` checks selectors on the
template (grader.rubric.authoring)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_output

from grader.rubric.authoring import draft_rubric, find_questions, template_warnings
from grader.rubric.explain import explain_rubric
from grader.checks.base import fraction
from grader.cli import main
from grader.rubric.load import load_rubric, load_rubric_text, validate_rubric_file
from grader.static.outputs import static_evidence
from grader.notebook.unfinished import empty_code_block
from tests.nbfactory import code, md, notebook, write
from tests.tbmi26 import fill_block

HERE = Path(__file__).parent
COURSE = next((p for p in (HERE / "data" / "tbmi26", Path("/work/shared/courses/tbmi26"))
               if (p / "CIFAR10-Lab-template-2023.ipynb").exists()), None)
SUMMARIES = HERE / "data" / "summaries"
pytestmark = pytest.mark.skipif(COURSE is None, reason="the TBMI26 course templates are not available")

YEARS = ("2023", "2024")
FC = (SUMMARIES / "seed001_1_model_1.txt").read_text()  # 12,523,266 params
CNN = (SUMMARIES / "seed001_2_model_2.txt").read_text()  # 81,834
DROPOUT = (SUMMARIES / "seed004_4_faces_cnn_dropout.txt").read_text()  # 1,910,576
BATCHNORM = (SUMMARIES / "seed004_5_faces_cnn_bn.txt").read_text()  # 1,912,144
FINAL = (SUMMARIES / "seed000_3_cnn2_mnist.txt").read_text()  # 695,970


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """The course folder as an instructor has it: both templates and Custom.py."""
    folder = tmp_path / "course"
    folder.mkdir()
    for name in ("CIFAR10-Lab-template-2023.ipynb", "CIFAR10-Lab-template-2024.ipynb", "Custom.py"):
        shutil.copy(COURSE / name, folder / name)
    return folder


def template(course: Path, year: str) -> Path:
    return course / f"CIFAR10-Lab-template-{year}.ipynb"


def drafted(course: Path, year: str) -> Path:
    out = course / f"rubric-{year}.yaml"
    out.write_text(draft_rubric(template=template(course, year), out=out).text)
    return out


def epoch_log(epochs: int, accuracy: float) -> str:
    """A tf.keras 2 epoch log as the kernel printed it."""
    lines = []
    for k in range(1, epochs + 1):
        acc = accuracy + k / 200
        lines.append(f"Epoch {k}/{epochs}\n1250/1250 [==============================] - 9s 7ms/step - "
                     f"loss: {2 - acc:.4f} - accuracy: {acc:.4f} - val_loss: {2.1 - acc:.4f} - "
                     f"val_accuracy: {acc - 0.01:.4f}\n")
    return "".join(lines)


def ran(cell, *texts: str) -> None:
    # A student who ran a template cell wrote code in its "Your code here" block first.
    if empty_code_block(cell.source):
        cell.source = fill_block(cell.source, "x = Dense(10, activation='softmax')(Flatten()(x_in))")
    cell.outputs = [new_output("stream", name="stdout", text=text) for text in texts]
    cell.execution_count = 1


def filled_2023(course: Path) -> Path:
    """The 2023 template as a student hands it in: every section run, an extra experiment in
    section 5 (the second model there is the one meant), a model trained after Question 8 in
    the extra challenge, and only Question 2 answered."""
    nb = nbformat.read(template(course, "2023"), as_version=4)
    cells = nb.cells
    ran(cells[11], FC), ran(cells[13], epoch_log(15, 0.40))
    ran(cells[23], CNN), ran(cells[25], epoch_log(15, 0.60))
    ran(cells[35], DROPOUT), ran(cells[36], epoch_log(15, 0.60))
    ran(cells[42], BATCHNORM), ran(cells[43], epoch_log(15, 0.62))
    ran(cells[49], BATCHNORM), ran(cells[50], epoch_log(15, 0.70))
    extra = new_code_cell("model = make_final()\nmodel.summary()\nhistory = model.fit(X_train, y_train_c, epochs=20)")
    ran(extra, FINAL, epoch_log(20, 0.72))
    cells.insert(53, extra)  # before Question 8, now cell 54
    ran(cells[57], FINAL), ran(cells[58], epoch_log(5, 0.74))  # the extra challenge, after Question 8
    cells[18].source = ('#### **<span style="color:green">Answer:</span>**\n'
                        "Two Dense layers of 1000 units reached 47% on the test data.")
    path = course / "student-2023.ipynb"
    nbformat.write(nb, path)
    return path


def filled_2024(course: Path) -> Path:
    """The 2024 template run: each model built by a function, summary and log printed by the
    shared TrainModelAndPlotResults() in the cell that calls it."""
    nb = nbformat.read(template(course, "2024"), as_version=4)
    cells = nb.cells
    for index, (summary, accuracy) in {14: (FC, 0.4), 21: (CNN, 0.6), 28: (DROPOUT, 0.6),
                                       32: (BATCHNORM, 0.62), 36: (FINAL, 0.72)}.items():
        ran(cells[index], summary, epoch_log(15, accuracy))
    path = course / "student-2024.ipynb"
    nbformat.write(nb, path)
    return path


# ---------------------------------------------------------------------------------------------
# rubric init


@pytest.mark.parametrize("year", YEARS)
def test_init_drafts_one_task_per_question_of_the_tbmi26_template(course, year):
    rubric = load_rubric(drafted(course, year))
    assert [task.id for task in rubric.tasks] == [f"q{n}" for n in range(1, 9)]
    assert [task.id for task in rubric.tasks if task.selector] == ["q2", "q4", "q8"]


@pytest.mark.parametrize("year", YEARS)
def test_init_reads_the_thresholds_from_the_question_text(course, year):
    rubric = load_rubric(drafted(course, year))
    accuracy = {task.id: fraction(check.params["at_least"]) for task in rubric.tasks
                for check in task.checks if check.kind == "test_accuracy"}
    assert accuracy == pytest.approx({"q2": 0.45, "q4": 0.62, "q8": 0.75})
    epochs = [(task.id, check.params) for task in rubric.tasks for check in task.checks if check.kind == "epochs"]
    assert epochs == [("q8", {"at_most": 25})]


@pytest.mark.parametrize("year", YEARS)
def test_init_marks_every_accuracy_threshold_for_calibration(course, year):
    lines = drafted(course, year).read_text().splitlines()
    accuracy_lines = [line for line in lines if "- test_accuracy:" in line]
    assert len(accuracy_lines) == 3
    assert all("# TODO calibrate" in line for line in accuracy_lines)


@pytest.mark.parametrize("year", YEARS)
def test_init_makes_free_text_questions_manual_items_with_the_question_as_guidance(course, year):
    rubric = load_rubric(drafted(course, year))
    for task in rubric.tasks:
        if task.id in ("q1", "q3", "q5", "q6", "q7"):
            assert [check.kind for check in task.checks] == ["manual"]
            assert task.question
    q7 = rubric.task("q7").checks[0].params["guidance"]
    assert q7.startswith("When using BatchNorm one must take care to select a good minibatch size.")


@pytest.mark.parametrize("year", YEARS)
def test_init_lists_the_helper_module_the_template_imports(course, year):
    path = drafted(course, year)
    rubric = load_rubric(path)
    assert [p.name for p in rubric.support_files] == ["Custom.py"]
    assert "support_files: ['Custom.py']" in path.read_text()
    assert "sklearn" in rubric.packages  # Custom.py needs it
    assert rubric.dataset == "cifar10"


@pytest.mark.parametrize("year", YEARS)
def test_init_draft_passes_the_validator(course, year):
    draft = draft_rubric(template=template(course, year), out=course / "r.yaml")
    assert draft.problems == []
    (course / "r.yaml").write_text(draft.text)
    assert validate_rubric_file(course / "r.yaml") == []


@pytest.mark.parametrize("year", YEARS)
def test_init_builds_model_selectors_from_the_section_and_the_question_text(course, year):
    rubric = load_rubric(drafted(course, year))
    selectors = {task.id: task.selector for task in rubric.tasks if task.selector}
    assert selectors["q2"].section == r"Fully\s+connected\s+classifier"
    assert selectors["q2"].before == r"above\s+45%\s+accuracy"
    assert selectors["q4"].section == r"CNN\s+classifier"
    assert selectors["q8"].section == r"Putting\s+it\s+all\s+together"
    assert selectors["q8"].before == r"at\s+least\s+75%\s+test\s+accuracy"


def test_init_prints_the_draft_and_writes_it_with_out(course):
    runner = CliRunner()
    printed = runner.invoke(main, ["rubric", "init", str(template(course, "2023"))])
    assert printed.exit_code == 0, printed.output
    assert "id: q8" in printed.stdout
    out = course / "draft.yaml"
    written = runner.invoke(main, ["rubric", "init", str(template(course, "2023")), "-o", str(out)])
    assert written.exit_code == 0, written.output
    assert validate_rubric_file(out) == []
    again = runner.invoke(main, ["rubric", "init", str(template(course, "2023")), "-o", str(out)])
    assert again.exit_code != 0
    assert "--force" in again.output


def test_init_recognises_other_question_styles(tmp_path):
    nb = notebook(
        md("# Lab 3"),
        md("**Exercise 1:** Build a network with at most 100,000 parameters that reaches at least 90% "
           "validation accuracy."),
        code("model = make()\nmodel.fit(x, y, epochs=5)"),
        md("Q2. Why does the validation loss rise after epoch 3?"),
        md("Question 3: What is the receptive field of the last convolution?"),
    )
    path = write(nb, tmp_path / "lab3.ipynb")
    draft = draft_rubric(template=path, out=tmp_path / "r.yaml")
    assert draft.problems == []
    assert [(q.label, q.trains_model) for q in draft.questions] == [
        ("Exercise 1", True), ("Q2", False), ("Question 3", False)]
    rubric = load_rubric_text(draft.text, base=tmp_path)
    exercise = rubric.task("q1")
    assert exercise.selector.after  # the training code follows the question
    kinds = {check.kind: check.params for check in exercise.checks}
    assert kinds["total_params"] == {"at_most": 100_000}
    assert fraction(kinds["val_accuracy"]["at_least"]) == pytest.approx(0.9)


def test_init_takes_the_text_from_the_next_cell_when_the_question_cell_holds_its_label_only(tmp_path):
    nb = notebook(
        md("### Exercise 4"),
        md("Explain why max pooling makes the network tolerant to small shifts."),
        md("Answer:"),
        code("model.summary()"),
    )
    draft = draft_rubric(template=write(nb, tmp_path / "lab.ipynb"), out=tmp_path / "r.yaml")
    assert draft.problems == []
    (question,) = draft.questions
    assert (question.label, question.cell) == ("Exercise 4", 1)
    assert question.phrase and re.search(question.phrase, nb.cells[1].source, re.IGNORECASE)


def test_question_phrases_are_unique_in_the_template(course):
    evidence = static_evidence(nbformat.read(template(course, "2023"), as_version=4), "t")
    questions = find_questions(evidence=evidence)
    assert questions, "no question found in the template"
    for question in questions:
        regex = re.compile(question.phrase, re.IGNORECASE)
        matching = [c.index for c in evidence.cells if c.cell_type == "markdown" and regex.search(c.source)]
        assert matching == [question.cell], question.label


# ---------------------------------------------------------------------------------------------
# rubric validate --against


BROKEN = """name: broken
tasks:
  - id: cnn
    model: {section: 'Recurrent networks', before: 'Question 99'}
    checks:
      - total_params: {at_most: 100_000}
  - id: why
    question: 'explain backpropagation'
    checks:
      - manual: "names the chain rule"
"""


def test_validate_against_warns_for_selectors_that_match_nothing(course):
    path = course / "broken.yaml"
    path.write_text(BROKEN)
    result = CliRunner().invoke(main, ["rubric", "validate", str(path), "--against", str(template(course, "2023"))])
    assert result.exit_code == 0, result.output
    assert "model section 'Recurrent networks' matches no heading" in result.stderr
    assert "model before 'Question 99' matches no markdown cell" in result.stderr
    assert "question 'explain backpropagation' matches no markdown cell" in result.stderr
    assert "3 warnings" in result.stdout


@pytest.mark.parametrize("year", YEARS)
def test_validate_against_is_quiet_for_the_drafted_rubric(course, year):
    path = drafted(course, year)
    for other in YEARS:  # a draft from one version also fits the other
        assert template_warnings(rubric=load_rubric(path), template=template(course, other)) == []
    result = CliRunner().invoke(main, ["rubric", "validate", str(path), "--against", str(template(course, year))])
    assert result.exit_code == 0
    assert "warning" not in result.output


# ---------------------------------------------------------------------------------------------
# rubric explain


def test_explain_picks_each_question_model_in_a_filled_2023_template(course):
    rubric = load_rubric(drafted(course, "2023"))
    picks = {item.task_id: item for item in explain_rubric(rubric=rubric, notebook=filled_2023(course))}
    got = {task: (picks[task].target.run.cell.index, picks[task].target.architecture.total_params)
           for task in ("q2", "q4", "q8")}
    # q8: the second model of section 5 (cell 53), not the first try (cell 50) nor the extra challenge (58)
    assert got == {"q2": (13, 12_523_266), "q4": (25, 81_834), "q8": (53, 695_970)}
    assert "2 models were trained here" in picks["q8"].model_why


def test_explain_finds_the_answer_cells_and_tells_placeholders_from_answers(course):
    rubric = load_rubric(drafted(course, "2023"))
    picks = {item.task_id: item for item in explain_rubric(rubric=rubric, notebook=filled_2023(course))}
    assert picks["q2"].answer.cells == [18]
    assert picks["q2"].answer_status == "12 words"
    assert picks["q1"].answer.cells == [5]
    assert picks["q1"].answer_status == "no answer"  # "[Your answer here]" is still there


def test_explain_picks_models_trained_by_the_shared_helper_of_the_2024_template(course):
    rubric = load_rubric(drafted(course, "2024"))
    picks = {item.task_id: item for item in explain_rubric(rubric=rubric, notebook=filled_2024(course))}
    got = {task: (picks[task].target.run.cell.index, picks[task].target.architecture.total_params)
           for task in ("q2", "q4", "q8")}
    assert got == {"q2": (14, 12_523_266), "q4": (21, 81_834), "q8": (36, 695_970)}


def test_explain_says_why_nothing_was_picked_in_an_unrun_template(course):
    rubric = load_rubric(drafted(course, "2023"))
    picks = {item.task_id: item for item in explain_rubric(rubric=rubric, notebook=template(course, "2023"))}
    assert picks["q4"].target is None
    # The template's own block is still empty: incomplete, before any question of a missing fit.
    assert "your code block for this task is empty" in picks["q4"].model_why


def test_explain_command_prints_a_table_of_picks(course):
    rubric = drafted(course, "2023")
    result = CliRunner().invoke(main, ["rubric", "explain", str(rubric), str(filled_2023(course))],
                                env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "│ q8" in line)
    assert "fit 6" in row and "cell 54" in row and "695,970 params" in row


def test_the_draft_finds_the_question_cells_the_selectors_see():
    """One rule for a question cell: ``grade rubric init`` drafts a task for exactly the cells that
    the selectors rank as questions (and that end an answer)."""
    from grader.model.evidence import Evidence
    from grader.notebook.questions import is_question_cell
    from tests.rubric_fixtures import cells as make_cells

    questions = ["Question 2: Train a model", "**Q3.** Explain why", "#### Exercise 4.1 Build a CNN", "Task 3b) Fit it",
                 "Question   5: Motivate", "Aufgabe 1: Erkläre"]
    others = ["Answer: Question 2 is done", "4. Regularization", "Questions about the lab", "Question 2024 results"]
    firsts = questions + others
    for first in firsts:
        evidence = Evidence(submission="t.ipynb", cells=make_cells(("md", first + "\n\nMore words of the question.")))
        drafted = bool(find_questions(evidence=evidence))
        assert drafted is is_question_cell(evidence.cells[0]), first
    assert [is_question_cell(c) for c in make_cells(*[("md", f) for f in firsts])] == [True] * 6 + [False] * 4
