"""The student report's first screen says what to fix (issue 16, item 4), read from the rendered HTML.

Each test is one bullet of the issue: the "What to fix" list, a cell error linked to the task it
broke, cells numbered as Jupyter shows them, no operator notices for students, folded confusion
matrices, an unreadable notebook's page, one way to write figures, one denominator on the overview.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from grader.model.format import fmt_number, fmt_percent
from grader.model.evidence import Cell, CellError, CellRef, Evidence, Figure, Level, Verification
from grader.report import text as report_text, views as report_views
from grader.report.overview import render_class_overview
from grader.report.student import render_student_report
from grader.model.results import GradeResult, Status, Student, SubmissionProblem
from tests import report_samples as samples

STUB_PLOT = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4="


@pytest.fixture(autouse=True)
def quick_plots(monkeypatch):
    """Figures are not what these tests read: a stub instead of matplotlib."""
    from grader.report import plots

    monkeypatch.setattr(plots, "learning_curve", lambda *args, **kwargs: STUB_PLOT)
    monkeypatch.setattr(plots, "score_histogram", lambda *args, **kwargs: STUB_PLOT)


class Tree(HTMLParser):
    """Elements with their attributes, text, and the ids and ``<details>`` they sit inside."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.elements: list[dict] = []  # {"tag", "attrs", "inside": [(tag, attrs), ...], "text": [...]}
        self.open: list[dict] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        element = {"tag": tag, "attrs": attrs, "inside": list(self.stack), "text": []}
        self.elements.append(element)
        if tag not in self.VOID:
            self.stack.append((tag, attrs))
            self.open.append(element)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        while self.stack:
            self.open.pop()
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        for element in self.open:
            element["text"].append(data)

    def text_of(self, element) -> str:
        return " ".join("".join(element["text"]).split())

    def by_id(self, ident: str):
        found = [e for e in self.elements if e["attrs"].get("id") == ident]
        assert len(found) == 1, f"{len(found)} elements with id {ident!r}"
        return found[0]

    def with_class(self, name: str):
        return [e for e in self.elements if name in e["attrs"].get("class", "").split()]

    def links_in(self, element) -> list[str]:
        start = self.elements.index(element)
        return [e["attrs"]["href"] for e in self.elements[start + 1:]
                if e["tag"] == "a" and "href" in e["attrs"] and (element["tag"], element["attrs"]) in e["inside"]]

    def ids(self) -> set[str]:
        return {e["attrs"]["id"] for e in self.elements if "id" in e["attrs"]}


def page_of(result: GradeResult, **kwargs) -> tuple[str, Tree]:
    html = render_student_report(result, **kwargs)
    return html, Tree(html)


# ---- a notebook in which Question 5's training cell raised NameError --------------------------------


def carol_q5(traceback: str = "") -> GradeResult:
    """Carol's case from the issue: Question 5's model was never trained, because its cell raised."""
    md = lambda i, text: Cell(i, "markdown", text, heading=text.lstrip("# "))  # noqa: E731
    cells = [
        md(0, "# Question 4"),
        Cell(1, "code", "model = build_cnn()", heading="Question 4"),
        Cell(2, "code", "model.fit(x_train, y_train, epochs=15)", heading="Question 4"),
        md(3, "# Question 5"),
        Cell(4, "code", "", heading="Question 5"),  # empty: Jupyter gives it no count
        Cell(5, "code", "model2 = build_dropout()", heading="Question 5"),
        Cell(6, "code", "model2.fit(x_trian, y_train, epochs=15)", heading="Question 5"),
    ]
    run = samples.run(0, "m_cnn", 2, "Question 4", samples.cnn_model(),
                      samples.history(15, start=0.3, train_end=0.7, val_end=0.64, rng=__import__("random").Random(1)))
    run.cell.heading = None
    evidence = Evidence(submission="carol.ipynb", cells=cells, runs=[run], cell_errors=[
        # As the kernel records it: by index, without the heading.
        CellError(CellRef(6), "NameError", "name 'x_trian' is not defined", traceback=traceback,
                  source=cells[6].source)])
    tasks = [
        samples.task("q4_cnn", "4. CNN classifier", [samples.check("total_params", "at most 100,000 parameters", True, 1)],
                     model_id="m_cnn", selector="the last model trained under a heading matching 'Question 4'"),
        samples.task("q5_dropout", "5. CNN with Dropout", [
            samples.check("contains", "contains a Dropout layer", False, 1, status=Status.NOT_ASSESSED,
                          message="No model was found for this task.", level=None)],
            selector="the last model trained under a heading matching 'Question 5'",
            selector_message="No model was trained under a heading matching 'Question 5'. Found 1 trained model: "
                             "fit 1 in cell 3 under 'Question 4' (81,834 params)."),
    ]
    result = samples.grade(Student(key="carol", name="Carol Nyström"), tasks, evidence=evidence)
    result.max_score = 2.0
    return result


def test_cell_error_names_the_cell_and_heading_and_links_from_the_task_it_broke():
    _, tree = page_of(carol_q5())
    task = tree.by_id("task-q5-dropout")
    assert "#cell-error-1" in tree.links_in(task)
    error_line = next(e for e in tree.with_class("task-error") if (e["tag"], e["attrs"]) and
                      ("section", task["attrs"]) in e["inside"])
    assert tree.text_of(error_line).startswith(
        "✘ Cell 4 (under “Question 5”) raised NameError: name 'x_trian' is not defined")
    # ... and the error links back to the task it broke.
    assert "#task-q5-dropout" in tree.links_in(tree.by_id("cell-error-1"))


def test_an_error_under_another_question_is_not_linked_to_a_task():
    _, tree = page_of(carol_q5())
    assert "#cell-error-1" not in tree.links_in(tree.by_id("task-q4-cnn"))


def test_cells_are_counted_as_jupyter_shows_them():
    # Position among the non-empty code cells: the empty cell and the markdown cells do not count.
    html, tree = page_of(carol_q5())
    assert tree.text_of(tree.by_id("cell-error-1")).startswith("Cell 4 (under “Question 5”)")
    # The grader's messages count every cell ("cell 3" is the file's third cell); the page renumbers them.
    selector = tree.text_of(tree.with_class("selector-message")[0])
    assert "fit 1 in cell 2 under 'Question 4'" in selector and "cell 3" not in selector


def test_the_execution_count_of_a_traceback_wins():
    _, tree = page_of(carol_q5(traceback="Traceback (most recent call last):\nCell In[12], line 1\n----> 1 model2.fit(x_trian)\n"
                                         "NameError: name 'x_trian' is not defined"))
    assert tree.text_of(tree.by_id("cell-error-1")).startswith("Cell 12 (under “Question 5”)")
    fix = tree.by_id("what-to-fix")
    assert "Cell 12 (under “Question 5”) raised NameError" in tree.text_of(fix)


# ---- what to fix ---------------------------------------------------------------------------------------


def test_what_to_fix_is_the_first_section_after_the_score():
    html, tree = page_of(samples.failing_student(), reference=samples.reference_architectures())
    sections = [e["attrs"].get("id") for e in tree.elements if e["tag"] == "section"]
    assert sections[0] == "what-to-fix"
    assert html.index('id="what-to-fix"') < html.index('id="summary-h"')


def test_what_to_fix_lists_failed_checks_first_then_unassessed_then_loose_errors():
    _, tree = page_of(samples.failing_student(), reference=samples.reference_architectures())
    items = [e for e in tree.with_class("fix-item")]
    firsts = [tree.links_in(item)[0] for item in items]
    assert firsts == ["#task-q4-cnn", "#task-q5-dropout", "#cell-error-2"]
    statuses = [[s["attrs"]["class"].split()[-1] for s in tree.with_class("status")
                 if (item["tag"], item["attrs"]) in s["inside"]] for item in items[:2]]
    assert statuses == [["status-failed"] * 3, ["status-not_assessed"]]
    q4 = tree.text_of(items[0])
    assert "at most 100,000 parameters Your CNN has 2,530,402 parameters" in q4
    q5 = tree.text_of(items[1])
    assert "Cell 19 (under “5. Dropout”) raised NameError: name 'x_trian' is not defined, so no model was found" in q5
    assert "#cell-error-1" in tree.links_in(items[1])


def test_every_link_of_what_to_fix_leads_to_a_place_on_the_page():
    _, tree = page_of(samples.failing_student(), reference=samples.reference_architectures())
    links = tree.links_in(tree.by_id("what-to-fix"))
    assert links and all(link.startswith("#") and link[1:] in tree.ids() for link in links)


def test_needs_review_comes_after_failed_and_before_unassessed():
    result = samples.failing_student()
    review = result.tasks[0].checks[1]  # q2's accuracy: a figure the grader could not trust
    review.status, review.points, review.message = Status.NEEDS_REVIEW, 0.0, "Reported evidence only."
    _, tree = page_of(result)
    firsts = [tree.links_in(item)[0] for item in tree.with_class("fix-item")]
    assert firsts[:3] == ["#task-q4-cnn", "#task-q2-fc", "#task-q5-dropout"]


def test_nothing_to_fix_when_only_fast_mode_left_checks_for_the_full_run():
    _, tree = page_of(samples.fast_mode_student())
    fix = tree.by_id("what-to-fix")
    assert not tree.with_class("fix-item") and "Nothing to fix" in tree.text_of(fix)


def test_marks_awaited_from_a_person_are_not_something_to_fix():
    _, tree = page_of(samples.failing_student())
    assert "#task-q3-manual" not in tree.links_in(tree.by_id("what-to-fix"))


# ---- what the student report leaves out or folds ---------------------------------------------------------


def test_student_report_has_no_operator_notices():
    result = samples.timed_out_student()
    assert result.sandbox == "none"
    html, tree = page_of(result)
    text = tree.text_of(tree.elements[0])
    assert "unsandboxed" not in text.lower() and "plain process" not in text and "--sandbox" not in html


def test_overview_says_which_notebooks_ran_unsandboxed():
    results = samples.class_results(n=2)
    tree = Tree(render_class_overview(results, report_links={}))
    notice = tree.with_class("notice")
    assert len(notice) == 1
    assert tree.text_of(notice[0]).startswith("ℹ Ran unsandboxed 1 of 7 notebooks ran as a plain process")
    assert "Dave Okafor" in tree.text_of(notice[0])


def test_overview_has_no_sandbox_notice_when_every_notebook_was_sandboxed():
    tree = Tree(render_class_overview([samples.passing_student()], report_links={}))
    assert not tree.with_class("notice")


def test_confusion_matrices_are_folded():
    _, tree = page_of(samples.passing_student(), reference=samples.reference_architectures())
    tables = tree.with_class("confusion-table")
    assert len(tables) == 5
    for table in tables:
        folds = [attrs for tag, attrs in table["inside"] if tag == "details"]
        assert folds and "open" not in folds[-1]


def test_layers_are_open_where_a_layer_check_failed_and_folded_where_all_passed():
    _, tree = page_of(samples.failing_student(), reference=samples.reference_architectures())
    folds = {e["inside"][-1][1].get("id"): e for e in tree.with_class("fold-layers")}
    assert "open" in folds["model-q4-cnn"]["attrs"]  # too many parameters, wrong layer order
    assert "open" not in folds["model-q2-fc"]["attrs"]  # every check passed
    assert tree.text_of(next(e for e in tree.elements if e["tag"] == "summary"
                             and ("details", folds["model-q2-fc"]["attrs"]) in e["inside"])) == (
        "Layers beside the reference model: same layers and parameter counts")


def test_unreadable_notebook_gets_its_explanation_and_nothing_else():
    result = samples.invalid_notebook_student()
    # As the grader leaves it: every task of the rubric, every check not assessed, an answer unmarked.
    graded = samples.failing_student()
    for task in graded.tasks:
        for check in task.checks:
            if check.status is not Status.MANUAL:
                check.status, check.points, check.message = Status.NOT_ASSESSED, 0.0, "Not assessed."
    result.tasks = graded.tasks
    html, tree = page_of(result)
    text = tree.text_of(tree.by_id("main"))
    assert "The notebook could not be read" in text and "‘<<<<<<< HEAD’ at line 212" in text
    for absent in ("not assessed", "awaits", "What to fix", "Summary", "About this report"):
        assert absent not in text, absent
    assert "more points from answers" not in html


def test_grader_failure_shows_no_score_rather_than_a_zero():
    result = samples.invalid_notebook_student()
    result.problems = [SubmissionProblem("internal", "The grader's set-up cell failed.")]
    html, tree = page_of(result)
    assert "no grade yet" in tree.text_of(tree.with_class("scorecard")[0])
    assert "<title>CIFAR-10 lab – Carol Nyström – no grade</title>" in html


# ---- figures -------------------------------------------------------------------------------------------


def test_accuracy_is_written_as_a_percentage_everywhere():
    result = samples.passing_student()
    result.evidence.verifications[0].test_accuracy = Figure(1.0, Level.VERIFIED, "clean re-evaluation")
    _, tree = page_of(result)
    verification = tree.text_of(tree.with_class("verification")[0])
    assert "test accuracy 100% verified" in verification
    text = tree.text_of(tree.elements[0])
    assert "test accuracy 1 " not in text and "figure: 0.4" not in text and "figure: 0.6" not in text


def test_figure_of_an_accuracy_check_matches_its_message():
    result = samples.failing_student()
    check = result.tasks[2].checks[2]
    check.message = "Test accuracy is below the target."  # the figure is not in the message: shown
    _, tree = page_of(result)
    figures = [tree.text_of(e) for e in tree.with_class("check-figure")]
    assert "figure: 58.1%" in figures


def test_the_report_writes_numbers_with_the_checks_formatter():
    for value in (2530402, 81834.0, 0.01, 1e-05, 7):
        assert report_text.fmt_figure(value) == fmt_number(value)
    assert report_text.fmt_figure(0.6234, "test_accuracy") == "62.3%"
    assert report_text.fmt_figure(1.0, "val_accuracy") == "100%"


def test_confusion_caption_and_recalls_are_percentages():
    view = report_views.confusion_view(Verification(model_id="m", status="ok", confusion=[[3, 1], [0, 4]],
                                              class_names=["cat", "dog"]))
    assert fmt_percent(view.accuracy) == "87.5%" and [fmt_percent(r) for r in view.recalls] == ["75%", "100%"]


# ---- class overview ----------------------------------------------------------------------------------------


def test_overview_says_what_every_score_is_out_of():
    results = samples.class_results(n=2)
    tree = Tree(render_class_overview(results, report_links={}))
    denominator = tree.text_of(tree.with_class("denominator")[0])
    assert denominator == "Scores are points out of 18 (16 automatic + 2 marked by hand)."
    header = next(e for e in tree.elements if e["tag"] == "th" and tree.text_of(e).startswith("Score"))
    assert tree.text_of(header) == "Score (of 18)"


def test_overview_marks_a_score_out_of_another_total():
    odd = samples.fast_mode_student()  # 4 points in all
    tree = Tree(render_class_overview([samples.passing_student(), odd], report_links={}))
    scores = [tree.text_of(e) for e in tree.elements if e["tag"] == "td" and "num" in e["attrs"].get("class", "")]
    assert "16.5" in scores and any(s.endswith("of 4") for s in scores)
