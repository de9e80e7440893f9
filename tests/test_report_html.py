"""The per-student report and the class overview, read as HTML (the browser test looks at them)."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grader.model.evidence import CellError, CellRef, LayerInfo, Verification
from grader.report import overview as report_overview, text as report_text, views as report_views, write as report_write
from grader.report.layers import align_layers
from grader.report.overview import render_class_overview
from grader.report.render import CSP
from grader.report.student import render_student_report
from grader.report.text import trim_head, trim_tail
from grader.report.write import report_folder, write_reports
from grader.model.results import GradeResult, Student, SubmissionProblem
from tests import report_samples as samples


class Page(HTMLParser):
    """Every tag with its attributes, the text, and the text of each element with a class."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text_parts: list[str] = []
        self.feed(text)

    BLOCKS = {"p", "div", "li", "td", "th", "tr", "dt", "dd", "h1", "h2", "h3", "pre", "br", "section",
              "figcaption", "blockquote", "summary", "article", "aside", "header", "footer", "title"}

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in self.BLOCKS:
            self.text_parts.append(" ")

    def handle_endtag(self, tag):
        if tag in self.BLOCKS:
            self.text_parts.append(" ")

    def handle_data(self, data):
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        # Joined as a browser shows them: a space between blocks, none between inline tags.
        return " ".join("".join(self.text_parts).split())

    def all(self, tag: str, **attrs) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def classes(self, name: str) -> list[dict[str, str]]:
        return [a for _, a in self.tags if name in a.get("class", "").split()]


STUB_PLOT = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4="


@pytest.fixture(autouse=True)
def quick_plots(monkeypatch):
    """Tests that render their own page get a stub figure: drawing ten plots per page is the slow
    part, and those tests are about something else. The module-scoped pages below (built before
    this fixture applies) have real figures, and the figure tests use them."""
    from grader.report import plots

    monkeypatch.setattr(plots, "learning_curve", lambda *args, **kwargs: STUB_PLOT)
    monkeypatch.setattr(plots, "score_histogram", lambda *args, **kwargs: STUB_PLOT)


@pytest.fixture(scope="module")
def alice() -> str:
    return render_student_report(samples.passing_student(), reference=samples.reference_architectures())


@pytest.fixture(scope="module")
def bob() -> str:
    return render_student_report(samples.failing_student(), reference=samples.reference_architectures())


# ---- self-contained and safe ---------------------------------------------------------------------


def test_report_is_one_self_contained_page(alice):
    page = Page(alice)
    assert page.all("meta", **{"http-equiv": "Content-Security-Policy"})[0]["content"] == CSP
    assert "default-src 'none'; img-src data:; style-src 'unsafe-inline'" in CSP
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    assert page.all("style")
    sources = [a["src"] for a in page.all("img")]
    assert sources and all(src.startswith("data:image/svg+xml;base64,") for src in sources)
    hrefs = [a["href"] for a in page.all("a")]
    assert all(href.startswith("#") for href in hrefs)
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", alice.replace("http://www.w3.org", ""))


def test_notebook_html_renders_as_text(bob):
    page = Page(bob)
    assert not page.all("script")
    assert not [a for a in page.all("img") if a.get("src") == "x"]
    assert samples.SCRIPT in page.text and samples.IMG in page.text
    assert html.escape(samples.SCRIPT, quote=False) in bob


def test_every_text_field_from_the_notebook_is_escaped():
    result = samples.failing_student()
    payload = '<b onmouseover="x()">bold</b>'
    result.student.note = payload
    result.tasks[0].title = payload
    result.tasks[0].selector = payload
    result.tasks[1].human_comment = payload
    result.tasks[1].human_score = 1
    result.evidence.cell_errors[0].ename = payload
    result.evidence.findings[0].message = payload
    result.problems.append(SubmissionProblem(kind="note", message=payload, detail=payload))  # a kind is never text
    page = render_student_report(result)
    assert "<b onmouseover" not in page
    assert not Page(page).all("b")


def test_page_title_names_assignment_student_and_score(alice):
    assert "<title>CIFAR-10 lab – Alice Lindqvist – 16.5/18</title>" in alice


# ---- score, checks, evidence ----------------------------------------------------------------------


def test_score_total_and_pass_mark_are_shown(alice):
    text = Page(alice).text
    assert "16.5 / 18 points" in text and "pass mark 12 points" in text and "✔ passed" in text


def test_summary_table_has_each_task_with_points_and_a_link(alice):
    page = Page(alice)
    assert {a["href"] for a in page.all("a")} >= {"#task-q2-fc", "#task-q9-best"}
    assert "5. CNN with Dropout ✘ failed 1 / 2" in page.text


def test_each_check_shows_icon_word_message_points_and_evidence_level(alice):
    text = Page(alice).text
    assert "✘ failed train − validation accuracy ≤ 0.10 The final gap is 0.14." in text
    assert "figure: 0.142 0 / 1 executed" in text
    assert "✔ passed test accuracy ≥ 62%" in text


def test_status_is_never_colour_alone():
    page = render_student_report(samples.failing_student())
    for word in ("passed", "failed", "not assessed"):
        icon = {"passed": "✔", "failed": "✘", "not assessed": "–"}[word]
        assert re.search(rf'aria-hidden="true">{icon}</span> {word}</span>', page)


def test_evidence_legend_explains_the_three_levels(alice):
    text = Page(alice).text
    for level in ("reported", "executed", "verified"):
        assert f"{level} {report_text.LEVEL_HELP[level]}" in text


def test_static_mode_says_figures_are_reported():
    page = Page(render_student_report(samples.static_student()))
    assert "Graded from the saved outputs" in page.text
    assert "reported" in [a.get("class", "").split()[-1].replace("level-", "") for a in page.classes("level")]


def test_fast_mode_shows_a_banner():
    assert "Fast mode: a quick self-check, not a grade" in Page(render_student_report(samples.fast_mode_student())).text


def test_unsandboxed_run_is_not_the_students_business():
    # Issue 16: how the grader ran is said in the class overview and the grading log only.
    text = Page(render_student_report(samples.timed_out_student())).text
    assert "plain process" not in text and "unsandboxed" not in text.lower() and "Sandbox" not in text


def test_submission_problems_are_shown_with_their_reason():
    text = Page(render_student_report(samples.invalid_notebook_student())).text
    assert "The notebook could not be read" in text and "‘<<<<<<< HEAD’ at line 212" in text
    timed_out = Page(render_student_report(samples.timed_out_student())).text
    assert "The run timed out" in timed_out


def test_findings_show_severity_word_and_kind(bob):
    text = Page(bob).text
    # cell 23: the count Jupyter showed for that cell (its traceback's "Cell In[23]"), as the error says
    assert "ℹ note Older Keras API (cell 23): Used the removed argument lr; graded as learning_rate." in text
    assert "⚠ warning Figures do not match (cell 16)" in text
    assert "<code>lr</code>" in bob


def test_selector_that_found_nothing_explains_why(bob):
    assert "No model was trained in the section “5. Dropout”" in Page(bob).text


# ---- models ---------------------------------------------------------------------------------------


def layer(cls, params=0):
    return LayerInfo(name=f"{cls.lower()}_7", class_name=cls, params=params)


def test_layers_align_by_class_name_marking_missing_extra_and_other_counts():
    student = [layer("Conv2D", 896), layer("Conv2D", 18496), layer("MaxPooling2D"), layer("Flatten"),
               layer("Dense", 100)]
    reference = [layer("Conv2D", 896), layer("MaxPooling2D"), layer("Dropout"), layer("Flatten"),
                 layer("Dense", 200)]
    rows = align_layers(student, reference)
    assert [r.status for r in rows] == ["same", "extra", "same", "missing", "same", "params"]
    assert rows[-1].note == "−100"


def test_layer_names_are_never_compared():
    rows = align_layers([LayerInfo(name="dense_7", class_name="Dense")], [LayerInfo(name="dense", class_name="Dense")])
    assert [r.status for r in rows] == ["same"]


def test_model_is_shown_beside_the_reference_with_differences_highlighted(bob):
    page = Page(bob)
    assert len(page.classes("layer-missing")) == 3
    assert len(page.classes("layer-params")) == 4
    assert "− 3 missing" in page.text and "≠ +2,448,568" in page.text


def test_model_without_reference_shows_its_layers_only():
    page = Page(render_student_report(samples.passing_student()))
    assert not page.classes("with-reference")
    assert not page.classes("layer-extra") and page.classes("layer-plain")


def test_each_model_gets_accuracy_and_loss_curves_with_alt_text(alice):
    images = Page(alice).all("img")
    assert len(images) == 10
    assert images[0]["alt"].startswith("Accuracy of model per epoch over 10 epochs: training accuracy goes from")
    assert images[1]["alt"].startswith("Loss of model per epoch")


def test_thresholds_come_from_accuracy_checks_not_from_gaps_or_counts():
    result = samples.passing_student()
    checks = [c for t in result.tasks for c in t.checks]
    lines = report_views._thresholds(checks)
    assert sorted((t.metric, t.value) for t in lines) == [
        ("accuracy", 0.45), ("accuracy", 0.6), ("accuracy", 0.62), ("accuracy", 0.75)]


def test_confusion_matrix_is_a_table_with_class_names_and_counts(alice):
    page = Page(alice)
    assert len(page.classes("confusion-table")) == 5
    assert "true ↓ predicted →" in page.text and "truck" in page.text and "recall" in page.text
    assert len(page.classes("diagonal")) == 50


def test_malformed_confusion_matrix_is_skipped_with_a_note():
    view = report_views.confusion_view(Verification(model_id="m", status="ok", confusion=[[1, 2], [3]]))
    assert view.note == "the confusion matrix is malformed" and not view.rows


def test_verification_failure_is_explained():
    result = samples.passing_student()
    result.evidence.verifications[0] = Verification(model_id="m_fc", status="unsafe",
                                                    message="the model has a Lambda layer")
    text = Page(render_student_report(result)).text
    assert "Not verified (needs unsafe deserialization): the model has a Lambda layer" in text


def test_models_no_task_selected_are_listed(bob):
    assert "Other models in the notebook Model Layers Parameters Training model_try2 3 197,322 not trained" in Page(bob).text


# ---- cell errors, answers, trimming ----------------------------------------------------------------


def test_cell_error_shows_source_and_trimmed_traceback(bob):
    text = Page(bob).text
    assert "Cell 19 (under “5. Dropout”) ✘ NameError: name 'x_trian' is not defined" in text
    assert "model.fit(x_trian, y_train, epochs=15)" in text
    assert "Trimmed: showing the last 40 of 161 lines." in text
    assert "module_159" in text and "module_0.py" not in text


def test_manual_item_shows_answer_and_human_score(alice):
    text = Page(alice).text
    assert "CIFAR-10 images are colour photographs" in text
    assert "Marked by hand: 1.5 / 2 points — Good; mention intra-class variation too." in text
    assert "✎ marked" in text


def test_manual_item_without_score_awaits_marking(bob):
    text = Page(bob).text
    assert "✎ awaits a human score" in text and "Up to 2 more points from answers that await a human score" in text


def test_huge_answer_is_trimmed_with_a_note(bob):
    assert "Trimmed: showing the first 3,000 of 9,880 characters." in Page(bob).text


def test_trim_keeps_the_head_of_sources_and_the_tail_of_tracebacks():
    text = "\n".join(f"line {i}" for i in range(100))
    assert trim_head(text, max_lines=3, max_chars=1000).text == "line 0\nline 1\nline 2"
    tail = trim_tail(text, max_lines=2, max_chars=1000)
    assert tail.text == "line 98\nline 99" and tail.note == "showing the last 2 of 100 lines"


def test_ansi_codes_in_tracebacks_are_removed():
    result = samples.failing_student()
    result.evidence.cell_errors[0].traceback = "\x1b[0;31mNameError\x1b[0m: boom"
    page = render_student_report(result)
    assert "\x1b" not in page and "[0;31m" not in page and "NameError: boom" in page


def test_result_without_evidence_still_renders():
    page = render_student_report(GradeResult(student=Student(key="x"), path="x.ipynb"))
    assert "<h1>x</h1>" in page


def test_evidence_with_bad_shapes_does_not_break_the_page():
    result = samples.passing_student()
    result.evidence.runs[0].history = {"loss": [float("nan"), 1.0], "accuracy": []}
    result.evidence.cell_errors.append(CellError(cell=CellRef(index=3), ename="", evalue=""))
    assert "<h1>Alice Lindqvist</h1>" in render_student_report(result)


# ---- writing a class ------------------------------------------------------------------------------


def test_write_reports_writes_a_page_per_student_and_an_index(tmp_path):
    results = [samples.passing_student(), samples.invalid_notebook_student()]
    index = write_reports(results, tmp_path, references=samples.reference_architectures())
    assert index == tmp_path / "index.html"
    assert (tmp_path / "alice_lindqvist" / "report.html").is_file()
    assert (tmp_path / "carol" / "report.html").is_file()
    links = {a["href"] for a in Page(index.read_text(encoding="utf-8")).all("a")}
    assert {"alice_lindqvist/report.html", "carol/report.html"} <= links
    assert not list(tmp_path.rglob(".*.tmp*"))


def test_report_folders_cannot_escape_the_output_folder(tmp_path):
    result = samples.invalid_notebook_student()
    result.student.key = "../../etc/evil"
    write_reports([result], tmp_path)
    written = [p for p in tmp_path.rglob("report.html")]
    assert len(written) == 1 and tmp_path in written[0].parents
    assert report_folder("..") == "student" and report_folder("a/b") == "a_b"


def test_same_folder_names_get_a_suffix(tmp_path):
    a, b = samples.invalid_notebook_student(), samples.invalid_notebook_student()
    a.student.key, b.student.key = "Anna/K", "Anna:K"
    write_reports([a, b], tmp_path)
    assert sorted(p.parent.name for p in tmp_path.rglob("report.html")) == ["Anna_K", "Anna_K-2"]


def test_one_unrenderable_result_does_not_cost_the_others(tmp_path, monkeypatch):
    real = report_write.render_student_report

    def flaky(result, *, reference=None):
        if result.student.key == "carol":
            raise ValueError("odd data")
        return real(result, reference=reference)

    monkeypatch.setattr(report_write, "render_student_report", flaky)
    write_reports([samples.passing_student(), samples.invalid_notebook_student()], tmp_path)
    assert "This report could not be drawn" in (tmp_path / "carol" / "report.html").read_text(encoding="utf-8")
    assert "Alice Lindqvist" in (tmp_path / "alice_lindqvist" / "report.html").read_text(encoding="utf-8")


# ---- class overview --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def overview() -> str:
    results = samples.class_results(n=6)
    return render_class_overview(results, report_links={r.student.key: f"{r.student.key}/report.html" for r in results})


def test_overview_is_self_contained_with_a_histogram(overview):
    import base64
    import hashlib
    import html

    page = Page(overview)
    # One script, the table sorter, and the page's policy lets that exact text run and nothing else.
    scripts = re.findall(r"<script>(.*?)</script>", overview, re.S)
    assert len(scripts) == 1 and "table.sortable" in scripts[0] and "src=" not in overview.split("<script>")[1][:20]
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', overview).group(1))
    assert f"script-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy
    images = page.all("img")
    assert len(images) == 1 and images[0]["src"].startswith("data:image/svg+xml;base64,")
    assert images[0]["alt"].startswith("Histogram of the 10 graded scores out of 18")


def test_overview_has_a_sortable_integrity_column(tmp_path):
    from grader.model.evidence import Finding

    results = samples.class_results(n=3)
    flagged = results[1]
    flagged.evidence.findings.append(Finding("trained_on_test", "fit #1 trained on the test set", severity="warning",
                                             model_id="m1"))
    page = render_class_overview(results, report_links={})
    heads = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', page.split('class="students sortable"')[1])
    assert "Integrity" in heads
    cells = re.findall(r'<td class="integrity-cell" data-sort="(\d+)">(.*?)</td>', page, re.S)
    assert len(cells) == len(results)
    marked = [text for sort, text in cells if int(sort) >= 1000]
    assert len(marked) == 1 and "Trained on test data" in marked[0]


def test_overview_shows_pass_rate_per_check_and_the_hardest(overview):
    text = Page(overview).text
    assert "Where the class struggled" in text
    assert re.search(r"Hardest checks: test accuracy ≥ \d+% \(.*\): \d+ of \d+ passed", text)
    assert re.search(r"test accuracy ≥ 62% \d+ / 10 \d+%", text)


def test_overview_links_every_student_and_flags_late_ones(overview):
    page = Page(overview)
    assert len([a for a in page.all("a") if a["href"].endswith("/report.html")]) == 11
    assert "Bob <script>alert(1)</script>" in page.text and "⚑ late" in page.text


def test_overview_lists_failed_submissions_with_reasons(overview):
    text = Page(overview).text
    assert "Submissions with problems 2" in text
    assert "Carol Nyström The notebook could not be read carol.ipynb is not a valid notebook" in text
    assert "Dave Okafor The run timed out" in text


def test_overview_shows_run_times(overview):
    text = Page(overview).text
    assert "1 h 00 min" in text and re.search(r"Run time: median \d+ min \d\d s, longest 1 h 00 min \(Dave Okafor\)", text)


def test_pass_rates_count_only_assessed_students():
    rates = report_overview.pass_rates(samples.class_results(n=0))
    dropout = next(t for t in rates if t.task_id == "q5_dropout")
    # Bob's Dropout model was not found, Dave's run timed out before it; Carol has no tasks.
    assert dropout.checks[0].not_assessed == 2
    assert dropout.checks[0].assessed == dropout.checks[0].passed + dropout.checks[0].failed == 2


def test_overview_of_no_results_renders():
    assert "No graded submission yet." in Page(render_class_overview([], report_links={})).text


# ---- cost -------------------------------------------------------------------------------------------


def test_rendering_reports_never_imports_keras_or_tensorflow():
    code = ("import sys; from tests import report_samples as s; from grader.report.student import render_student_report;"
            "render_student_report(s.passing_student());"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent.parent,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_notebook_with_hundreds_of_fits_gives_a_page_of_bounded_size():
    from dataclasses import replace

    result = samples.passing_student()
    template = result.evidence.runs[0]
    result.evidence.runs += [replace(template, index=i, model_id=f"loop{i}") for i in range(300)]
    result.evidence.runs += [replace(template, index=300 + i) for i in range(300)]  # fits on one model
    page = render_student_report(result)
    assert "… and 289 more fit calls" in page
    assert page.count("<th scope=\"row\">model</th>") <= report_text.LIMITS["other_models"]
    assert len(page) < 2_000_000


def test_overview_does_not_show_unmarked_answers_as_a_zero_pass_rate():
    results = [samples.failing_student(), samples.failing_student()]
    results[1].student.key = "bob2"
    text = Page(render_class_overview(results, report_links={})).text
    assert "3. Why is CIFAR-10 harder than MNIST? – ✎ awaits marking" in text
