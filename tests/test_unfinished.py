"""Unfinished work is called incomplete: the TBMI26 templates' placeholders, graded statically."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.batch.local import grade_batch
from grader.config import GradingOptions
from grader.model.results import Status, Student
from grader.rubric.load import load_rubric
from grader.collect import Submission
from grader.notebook.unfinished import empty_code_block, filled_code_block, is_placeholder_answer, unfinished_cells

COURSE = Path("/work/shared/courses/tbmi26")
if not COURSE.is_dir():  # the course material sits beside the project
    COURSE = Path(__file__).resolve().parents[2] / "shared" / "courses" / "tbmi26"
RUBRIC = Path(__file__).resolve().parents[1] / "rubrics" / "cifar10.yaml"
needs_course = pytest.mark.skipif(not COURSE.is_dir(), reason="the TBMI26 course templates are not here")

BLOCK = "# --------------------------------------------\n# === Your code here =========================\n# --------------------------------------------\n{body}\n# ============================================\n"


def _grade(tmp_path: Path, notebooks: dict[str, nbformat.NotebookNode]):
    subs = []
    for key, nb in notebooks.items():
        path = tmp_path / "subs" / f"{key}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        subs.append(Submission(path=path, student=Student(key=key)))
    return grade_batch(subs, load_rubric(RUBRIC), tmp_path / "out", options=GradingOptions(static=True, preflight=False))


def _template(year: str) -> nbformat.NotebookNode:
    return nbformat.read(COURSE / f"CIFAR10-Lab-template-{year}.ipynb", 4)


@needs_course
@pytest.mark.parametrize("year", ["2023", "2024"])
def test_untouched_template_is_incomplete_and_earns_nothing(tmp_path, year):
    (result,) = _grade(tmp_path, {"t": _template(year)})
    kinds = [p.kind for p in result.problems]
    assert "incomplete" in kinds
    assert result.score == 0
    assert "Your code here" in next(p.message for p in result.problems if p.kind == "incomplete")
    automatic = [c for c in result.checks if c.status is not Status.MANUAL]
    assert automatic and all(c.status is Status.NOT_ASSESSED for c in automatic)


@needs_course
def test_partly_filled_template_is_graded_and_names_the_unfinished_cells(tmp_path):
    nb = _template("2023")
    fc = nb.cells[11]
    fc.source = fc.source.replace(BLOCK.format(body="\n"), BLOCK.format(body="x = Dense(64, activation='relu')(x)\nx = Dense(10, activation='softmax')(x)"))
    assert filled_code_block(fc.source) and not empty_code_block(fc.source)
    nb.cells[18].source = "#### **Answer:**\nA small dense network with 64 hidden units."
    (result,) = _grade(tmp_path, {"p": nb})
    assert "incomplete" not in [p.kind for p in result.problems]
    unfinished = [f for f in result.evidence.findings if f.kind == "unfinished"]
    assert [f.cell.index for f in unfinished] == [23, 35, 42, 49, 56]
    assert "cell 24 still has the template placeholder `# === Your code here ===`" in unfinished[0].message
    assert "`???`" in unfinished[-1].message
    fc_task = next(t for t in result.tasks if t.task_id == "fc")
    assert "64 hidden units" in (fc_task.answer or "")


def test_a_filled_block_with_its_banners_kept_is_not_unfinished():
    cells = [nbformat.v4.new_code_cell(BLOCK.format(body="x = Dense(10)(x)  # output")),
             nbformat.v4.new_code_cell(BLOCK.format(body="\n   \n# TODO later\n")),
             nbformat.v4.new_code_cell("x = ???\nmodel = Model(x_in, x)"),
             nbformat.v4.new_code_cell("q = 'what???'  # a string, a question in a comment ???")]
    found = unfinished_cells(cells)
    assert [index for index, _ in found] == [1, 2]


def test_banners_are_found_however_the_lines_are_broken_and_written():
    """The one search that skips cells without a banner finds every banner the line-by-line
    reading does: other line breaks, other cases, spaces."""
    for opening in ("# === Your code here ===", "#=YOUR CODE HERE", "  #  ==   your Code here: the CNN",
                    "# ====== Your code here ======"):
        for breaking in ("\n", "\r\n", "\r", "\x0c", "\u2028"):
            empty = breaking.join(["x = 1", opening, "", "# a comment", "# ====", "y = 2"])
            filled = breaking.join(["x = 1", opening, "z = Dense(10)(z)", "# ===="])
            assert (empty_code_block(empty), filled_code_block(empty)) == (True, False), (opening, breaking)
            assert (empty_code_block(filled), filled_code_block(filled)) == (False, True), (opening, breaking)
    for none in ("x = 1", "# ==== the end", "# === Your code below ===", "print('=== your code here')"):
        assert not empty_code_block(none) and not filled_code_block(none)


def test_your_answer_here_is_no_answer():
    assert is_placeholder_answer('#### **<span style="color:green">Answer:</span>**\n\\[Your answer here\\]')
    assert is_placeholder_answer("[Your answer here]")
    assert not is_placeholder_answer("**Answer:** [Your answer here] four values: N, H, W, C")
    assert not is_placeholder_answer("**Answer:** four values")


def test_a_placeholder_answer_is_what_the_answer_finder_reads_as_empty():
    """One rule: what grading reads as no answer is what the answer checks call a placeholder."""
    from grader.checks.cells import find_answer
    from tests.rubric_fixtures import cells as make_cells
    from grader.model.evidence import Evidence

    for text, placeholder in [("**Answer:** Your answer here", True), ("Answer:\nType your answer", True),
                              ("[Your answer here] 24x24", False), ("Answer: 24x24", False)]:
        evidence = Evidence(submission="a.ipynb", cells=make_cells(("md", "Question 3: the shape?"), ("md", text)))
        found = find_answer(evidence, question="Question 3").text
        assert is_placeholder_answer(text) is placeholder, text
        assert (found == "") is placeholder, (text, found)
