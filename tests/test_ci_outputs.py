"""JUnit XML and the markdown job summary, as GitLab and GitHub read them (lms-formats.md §3)."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from lxml import etree

from grader.report.ci import SUMMARY_LIMIT, summary_markdown, write_junit, write_summary_markdown
from grader.model.results import CheckResult, Status
from tests import report_samples as samples

JUNIT_XSD = Path(__file__).parent / "data" / "junit-10.xsd"  # Jenkins' schema, vendored


def junit(tmp_path, results):
    return ET.parse(write_junit(results, tmp_path / "report.xml")).getroot()


def schema_errors(path: Path) -> list[str]:
    """What Jenkins' junit-10.xsd says about the file (libxml2's validator, as lxml runs it)."""
    schema = etree.XMLSchema(etree.parse(str(JUNIT_XSD)))
    schema.validate(etree.parse(str(path)))
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


@pytest.mark.parametrize("results", [
    pytest.param(lambda: [samples.failing_student()], id="one grade check"),
    pytest.param(lambda: [samples.fast_mode_student()], id="one fast-mode check"),
    pytest.param(lambda: samples.class_results(n=3), id="a batch"),  # with a timeout and an unreadable notebook
])
def test_junit_validates_against_the_jenkins_schema(tmp_path, results):
    path = write_junit(results(), tmp_path / "report.xml")
    assert schema_errors(path) == []


def test_gitlab_keeps_every_testcase_of_a_batch(tmp_path):
    # GitLab's JUnit reader keeps only the first of two tests with the same class and name.
    results = samples.class_results(n=3)
    cases = [(c.get("classname"), c.get("name")) for c in junit(tmp_path, results).iter("testcase")]
    assert len(cases) == len(set(cases)) == sum(len(r.checks) + len(r.problems) for r in results) + sum(
        1 for r in results for t in r.tasks if t.manual and not t.checks)


def test_the_schema_check_catches_what_jenkins_refuses(tmp_path):
    # The attributes the JUnit file used to carry: the vendored schema must refuse them.
    path = write_junit([samples.failing_student()], tmp_path / "report.xml")
    tree = ET.parse(path)
    tree.getroot().set("skipped", "1")
    tree.getroot().find("testsuite/testcase").set("file", "x.ipynb")
    tree.write(path, encoding="utf-8", xml_declaration=True)
    errors = schema_errors(path)
    assert any("'skipped' is not allowed" in e for e in errors)
    assert any("'file' is not allowed" in e for e in errors)


def test_every_testcase_has_a_time_and_the_notebook_is_named_on_its_suite(tmp_path):
    result = samples.failing_student()
    root = junit(tmp_path, [result])
    cases = list(root.iter("testcase"))
    assert cases and all(float(c.get("time")) >= 0 for c in cases)
    assert root.find("testsuite").get("file") == result.path
    # The training time of a task's model sits on the task's first test, counted once.
    times = sum(float(c.get("time")) for c in cases)
    assert 0 < times <= float(root.find("testsuite").get("time"))


def test_test_names_are_ids_and_titles_without_the_score(tmp_path):
    names = [c.get("name") for c in junit(tmp_path, [samples.failing_student()]).iter("testcase")]
    assert "q4_cnn/test_accuracy: test accuracy ≥ 62%" in names
    assert not [n for n in names if "pts)" in n or "pt)" in n]


def test_fixing_a_check_keeps_its_test_name(tmp_path):
    before = samples.failing_student()
    after = copy.deepcopy(before)
    for check in after.checks:
        check.status, check.points, check.message = Status.PASSED, check.max_points, "fixed"
    names = [[c.get("name") for c in junit(tmp_path, [r]).iter("testcase")] for r in (before, after)]
    assert names[0] == names[1]


def test_skip_messages_do_not_say_not_assessed_twice(tmp_path):
    root = junit(tmp_path, [samples.timed_out_student(), samples.fast_mode_student(), samples.failing_student()])
    messages = [s.get("message") for s in root.iter("skipped")]
    assert "Not assessed: the run timed out before this task." in messages
    assert "Not assessed in fast mode: the model trained on 512 images for 1 epoch." in messages
    assert not [m for m in messages if m.casefold().count("not assessed") > 1]


def test_why_a_task_found_no_model_is_told_in_its_skipped_tests(tmp_path):
    root = junit(tmp_path, [samples.failing_student()])
    skipped = root.find(".//testcase[@classname='q5_dropout']/skipped")
    assert skipped.get("message") == "Not assessed: No model was found for this task."
    assert "No model was trained in the section" in skipped.text
    system_err = root.find("testsuite/system-err").text
    assert "No model was trained in the section" not in system_err and "NameError" in system_err


def test_a_selector_message_no_skipped_test_carries_goes_to_system_err(tmp_path):
    result = samples.passing_student()
    result.tasks[0].selector_message = "Two models were trained under 'Question 2'; graded the last."
    root = junit(tmp_path, [result])
    assert "q2_fc: Two models were trained" in root.find("testsuite/system-err").text


def test_a_check_that_needs_review_is_skipped_not_passed(tmp_path):
    result = samples.passing_student()
    check = result.tasks[0].checks[1]
    check.status, check.points = Status.NEEDS_REVIEW, 0
    check.message = "Test accuracy 46.8%. Needs review: the figure comes from print()."
    case = junit(tmp_path, [result]).find(f".//testcase[@name='q2_fc/{check.check}: {check.title}']")
    assert case.find("skipped").get("message") == check.message
    assert case.find("system-out") is None
    check.message = "The figure comes from print()."
    case = junit(tmp_path, [result]).find(f".//testcase[@name='q2_fc/{check.check}: {check.title}']")
    assert case.find("skipped").get("message") == "Needs review: The figure comes from print()."


def test_submission_error_text_does_not_repeat_its_message(tmp_path):
    error = junit(tmp_path, [samples.timed_out_student()]).find(".//testcase[@classname='submission']/error")
    assert error.get("type") == "timeout" and "timeout of 60 min" in error.get("message")
    assert not (error.text or "").strip()


def test_junit_has_one_testcase_per_check_with_the_task_as_classname(tmp_path):
    result = samples.failing_student()
    root = junit(tmp_path, [result])
    cases = root.findall("./testsuite/testcase")
    by_class = [c.get("classname") for c in cases if c.get("classname") != "submission"]
    expected = [t.task_id for t in result.tasks for _ in (t.checks or [None])]
    assert by_class == expected


def test_failed_check_is_a_failure_with_its_message(tmp_path):
    root = junit(tmp_path, [samples.failing_student()])
    failure = root.find("./testsuite/testcase[@name='q4_cnn/test_accuracy: test accuracy ≥ 62%']/failure")
    assert failure is not None
    assert failure.get("message").startswith("Test accuracy 58.1% is below the target of 62%")
    assert "evidence: verified" in failure.text


def test_not_assessed_and_manual_items_are_skipped(tmp_path):
    root = junit(tmp_path, [samples.failing_student()])
    skipped = {c.get("classname"): c.find("skipped").get("message")
               for c in root.iter("testcase") if c.find("skipped") is not None}
    assert skipped["q5_dropout"].startswith("Not assessed")
    assert skipped["q3_manual"] == "awaits a human score"


def test_counts_add_up_on_suite_and_root(tmp_path):
    root = junit(tmp_path, [samples.failing_student()])
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases) == int(root.get("tests"))
    assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases) == 3
    assert int(suite.get("skipped")) == sum(c.find("skipped") is not None for c in cases) == 3
    assert root.get("skipped") is None  # not in junit-10.xsd


def test_unreadable_notebook_is_an_error_testcase(tmp_path):
    root = junit(tmp_path, [samples.invalid_notebook_student()])
    error = root.find("./testsuite/testcase[@classname='submission']/error")
    assert error.get("type") == "invalid_notebook" and "merge-conflict" in error.get("message")
    assert root.get("errors") == "1"


def test_score_travels_as_suite_properties(tmp_path):
    root = junit(tmp_path, [samples.passing_student()])
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["score"] == "16.5" and props["max_score"] == "18" and props["passed"] == "true"


def test_batch_junit_prefixes_classnames_with_the_student(tmp_path):
    root = junit(tmp_path, [samples.passing_student(), samples.failing_student()])
    classnames = {c.get("classname") for c in root.iter("testcase")}
    assert "alice_lindqvist.q4_cnn" in classnames and "bob.q4_cnn" in classnames
    assert len(root.findall("testsuite")) == 2


def test_duplicate_check_titles_get_distinct_names(tmp_path):
    result = samples.passing_student()
    task = result.tasks[0]
    task.checks.append(CheckResult(check="x", title=task.checks[0].title, status=Status.PASSED,
                                   points=1, max_points=1))
    names = [c.get("name") for c in junit(tmp_path, [result]).iter("testcase") if c.get("classname") == "q2_fc"]
    assert len(names) == len(set(names)) == 3


def test_control_characters_and_ansi_codes_are_removed_from_xml(tmp_path):
    result = samples.failing_student()
    result.tasks[2].checks[0].message = "bad\x00byte \x1b[31mred\x1b[0m \x07bell <tag>"
    failure = junit(tmp_path, [result]).find(".//testcase[@classname='q4_cnn']/failure")
    assert failure.get("message") == "badbyte red bell <tag>"


def test_summary_shows_score_tasks_and_what_to_fix(tmp_path):
    text = write_summary_markdown([samples.failing_student()], tmp_path / "s.md").read_text(encoding="utf-8")
    assert text.startswith("## CIFAR-10 lab: 4 / 18 points — ✘ not passed (pass mark 12)")
    assert "| 4. CNN classifier, ≥ 62% test accuracy | ✘ failed | 0 / 4 |" in text
    assert "### What to fix" in text and "**test accuracy ≥ 62%**" in text


def test_summary_shows_notebook_html_as_text(tmp_path):
    text = summary_markdown([samples.failing_student()])
    assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_summary_escapes_pipes_in_table_cells():
    result = samples.passing_student()
    result.tasks[0].title = "A | B"
    assert "| A \\| B |" in summary_markdown([result])


def test_summary_of_fast_mode_says_it_is_not_a_grade():
    assert "Fast mode" in summary_markdown([samples.fast_mode_student()])


def test_summary_of_a_class_lists_every_student():
    text = summary_markdown(samples.class_results(n=3))
    assert text.startswith("## CIFAR-10 lab: 8 submissions")
    assert "Carol Nyström" in text and "not graded" in text


def test_long_summary_is_cut_under_the_limit_with_a_note():
    result = samples.failing_student()
    check = result.tasks[2].checks[0]
    result.tasks[2].checks = [CheckResult(check="c", title=f"check {i}", status=Status.FAILED, points=0,
                                          max_points=1, message="x" * 500) for i in range(3000)]
    del check
    text = summary_markdown([result], limit=100_000)
    assert len(text.encode("utf-8")) <= 100_000
    assert text.rstrip().endswith("The HTML report and the JUnit file have everything._")
    assert text.count("<details>") <= text.count("</details>")


def test_default_summary_limit_is_under_one_mebibyte():
    assert SUMMARY_LIMIT < 1024 * 1024
