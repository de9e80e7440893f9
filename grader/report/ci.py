"""Outputs for continuous integration: JUnit XML and a markdown summary.

* :func:`write_junit` — one ``<testcase>`` per check. Its ``classname`` is the task, which GitLab
  shows as the suite, so a merge request's test report groups checks by task. A failed check is a
  ``<failure>`` with the check's message; a check that could not be assessed, waits for a human or
  needs a person's review is ``<skipped>``; a submission problem (unreadable notebook, dead kernel,
  timeout) is an ``<error>``. The document validates against Jenkins' ``junit-10.xsd`` (vendored
  as ``tests/data/junit-10.xsd``), which GitLab's reader accepts too: the notebook is named on the
  ``<testsuite>`` (the schema has no ``testcase@file``) and skipped tests are counted per suite
  only (it has no ``testsuites@skipped``).

  A test's name is ``<task id>/<check id>: <check title>``: it never holds the score, so fixing a
  check keeps its name and CI servers track it as the same test. Points and partial credit are
  not a JUnit idea: they go into the suite's properties. A test's ``time`` is the training time of
  the model the task graded, on the task's first test (a model graded by two tasks counts once);
  the checks themselves take no measurable time.
* :func:`write_summary_markdown` — GitHub-flavoured markdown for a CI job summary
  (``$GITHUB_STEP_SUMMARY`` accepts at most 1 MiB per step: longer summaries are cut, with a note).

The exit code is the command line's business (see ``docs/ci.md``).
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from grader.notebook.cell_numbers import CellNumbers
from grader.model.evidence import Level
from grader.model.format import fmt_points
from grader.report.fix import task_status
from grader.report.text import STATUS_WORDS, clean_text
from grader.model.results import CheckResult, GradeResult, Status

SUMMARY_LIMIT = 1_000_000  # bytes; GitHub refuses a step summary over 1 MiB (1,048,576)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


# ---------------------------------------------------------------------------------------------
# JUnit XML.


def _xml_text(text: object, limit: int = 20_000) -> str:
    """Text XML 1.0 can carry: ANSI codes and forbidden control characters removed, length capped."""
    cleaned = _XML_ILLEGAL.sub("", clean_text(text))
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + " … (trimmed)"


def _points(points: float, max_points: float) -> str:
    return f"{fmt_points(points)}/{fmt_points(max_points)} {'pt' if max_points == 1 else 'pts'}"


def _unique(name: str, seen: dict[str, int]) -> str:
    # GitLab keeps only the first of two tests with the same name in a suite.
    seen[name] = seen.get(name, 0) + 1
    return name if seen[name] == 1 else f"{name} #{seen[name]}"


def _testcase_name(task_id: str, check: CheckResult, seen: dict[str, int]) -> str:
    """``q4_cnn/test_accuracy: test accuracy ≥ 62%``: ids and title only, never the score."""
    title = check.title or check.check
    return _unique(_xml_text(f"{task_id}/{check.check}: {title}", 300), seen)


def _with_reason(reason: str, message: str | None) -> str:
    """``Not assessed: <message>``, without saying it twice when the message already does."""
    message = (message or "").strip()
    if not message:
        return reason
    if reason.casefold() in message.casefold():
        return message
    return f"{reason}: {message}"


def _task_times(result: GradeResult) -> dict[str, float]:
    """Seconds of training behind each task, on the first task that grades a model."""
    evidence = result.evidence
    if evidence is None:
        return {}
    times: dict[str, float] = {}
    counted: set[str] = set()
    for task in result.tasks:
        if not task.model_id or task.model_id in counted:
            continue
        counted.add(task.model_id)
        seconds = [run.duration_s for run in evidence.runs_of(task.model_id) if run.duration_s is not None]
        if seconds:
            times[task.task_id] = sum(seconds)
    return times


def _time(seconds: float | None) -> str:
    return f"{max(seconds or 0.0, 0.0):.3f}"


def junit_tree(results: Sequence[GradeResult]) -> ET.ElementTree:
    """The JUnit document for ``results`` (one ``<testsuite>`` per submission)."""
    root = ET.Element("testsuites", name="nn-grader")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    several = len(results) > 1
    for result in results:
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        suite_name = "/".join(p for p in (result.assignment or result.rubric, result.student.key) if p)
        suite = ET.SubElement(root, "testsuite", name=_xml_text(suite_name, 200))
        if result.path:
            suite.set("file", _xml_text(result.path, 1000))
        if result.graded_at:
            suite.set("timestamp", _xml_text(result.graded_at, 40))
        properties = ET.SubElement(suite, "properties")
        for key, value in (("score", fmt_points(result.score)), ("max_score", fmt_points(result.max_score)),
                           ("pass_mark", fmt_points(result.pass_mark) if result.pass_mark is not None else ""),
                           ("passed", "" if result.passed is None else str(result.passed).lower()),
                           ("mode", result.mode), ("fast_mode", str(result.fast_mode).lower()),
                           ("student", result.student.key), ("notebook", result.path)):
            ET.SubElement(properties, "property", name=key, value=_xml_text(value, 500))
        prefix = f"{result.student.key}." if several else ""
        numbers = CellNumbers(result.evidence)  # cells as Jupyter shows them, as in the report
        times = _task_times(result)
        untold: list[str] = []  # selector messages no skipped test of their task carries
        problem_names: dict[str, int] = {}
        for problem in result.problems:
            case = ET.SubElement(suite, "testcase", classname=_xml_text(f"{prefix}submission", 200),
                                 name=_unique(_xml_text(problem.kind.replace("_", " "), 200), problem_names),
                                 time=_time(0))
            message = _xml_text(numbers.renumber(problem.message), 1000)
            error = ET.SubElement(case, "error", message=message, type=problem.kind)
            detail = _xml_text(problem.detail)
            if detail and detail != message:
                error.text = detail
            counts["tests"] += 1
            counts["errors"] += 1
        for task in result.tasks:
            classname = _xml_text(prefix + task.task_id, 200)
            seen: dict[str, int] = {}
            task_time = times.get(task.task_id)
            told = False
            if task.manual and not task.checks:
                name = _unique(_xml_text(f"{task.task_id}: {task.title or task.task_id}", 300), seen)
                case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=_time(0))
                message = ("awaits a human score" if task.human_score is None
                           else f"marked by hand: {_points(task.human_score, task.max_points)}")
                ET.SubElement(case, "skipped", message=message)
                counts["tests"] += 1
                counts["skipped"] += 1
            for check in task.checks:
                case = ET.SubElement(suite, "testcase", classname=classname,
                                     name=_testcase_name(task.task_id, check, seen), time=_time(task_time))
                task_time = None  # the training time is the task's first test's, once
                counts["tests"] += 1
                detail = numbers.renumber(_check_detail(check))
                if check.status is Status.FAILED:
                    failure = ET.SubElement(case, "failure", type=_xml_text(check.check, 100),
                                            message=_xml_text(numbers.renumber(check.message or check.title), 1000))
                    failure.text = detail
                    counts["failures"] += 1
                elif check.status is Status.NOT_ASSESSED:
                    skipped = ET.SubElement(case, "skipped",
                                            message=_xml_text(_with_reason("Not assessed", numbers.renumber(check.message)), 1000))
                    # Why the task found no model: said once, in the test it explains.
                    if task.selector_message and task.selector_message.strip() != (check.message or "").strip():
                        skipped.text = _xml_text(numbers.renumber(task.selector_message), 2000)
                    told = told or bool(task.selector_message)
                    counts["skipped"] += 1
                elif check.status is Status.MANUAL:
                    # Partial credit from a person is neither a pass nor a failure.
                    message = (f"marked by hand: {_points(check.points, check.max_points)}"
                               if "human_score" in check.details else "awaits a human score")
                    ET.SubElement(case, "skipped", message=message)
                    counts["skipped"] += 1
                elif check.status is Status.NEEDS_REVIEW:
                    # No points until a person accepts the figure: not a pass the CI may count.
                    ET.SubElement(case, "skipped",
                                  message=_xml_text(_with_reason("Needs review", check.message), 1000))
                    counts["skipped"] += 1
                elif detail:
                    ET.SubElement(case, "system-out").text = detail
            if task.selector_message and not told:
                untold.append(_xml_text(f"{task.task_id}: {numbers.renumber(task.selector_message)}\n", 2000))
        errors = result.evidence.cell_errors if result.evidence is not None else []
        lines = untold + [_xml_text(f"cell {numbers.number(e.cell, e.traceback)}: {e.ename}: {e.evalue}\n", 1000)
                          for e in errors[:50]]
        if lines:
            ET.SubElement(suite, "system-err").text = "".join(lines)
        for key, value in counts.items():
            suite.set(key, str(value))
            if key in totals:  # junit-10.xsd has no testsuites@skipped
                totals[key] += value
        if result.duration_s is not None:
            suite.set("time", _time(result.duration_s))
            total_time += max(result.duration_s, 0.0)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _time(total_time))
    ET.indent(root)
    return ET.ElementTree(root)


def _check_detail(check: CheckResult) -> str:
    lines = [check.message] if check.message else []
    if check.figure is not None:
        lines.append(f"figure: {check.figure}")
    if check.level is not None:
        lines.append(f"evidence: {check.level.label}")
    return _xml_text("\n".join(lines))


def write_junit(results: list[GradeResult], path: Path) -> Path:
    """Write JUnit XML for ``results`` to ``path`` (GitLab wants the ``.xml`` extension)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(results).write(path, encoding="utf-8", xml_declaration=True)
    return path


# ---------------------------------------------------------------------------------------------
# Markdown summary.


def _md(text: object, limit: int = 500) -> str:
    """One table-safe line: HTML shown as text, pipes escaped, newlines folded."""
    line = re.sub(r"\s+", " ", clean_text(text)).strip()
    if len(line) > limit:
        line = line[:limit].rsplit(" ", 1)[0] + " …"
    return html.escape(line, quote=False).replace("|", "\\|")


def _status(status: Status, word: str | None = None) -> str:
    return f"{status.icon} {word or STATUS_WORDS[status]}"


def _verdict(result: GradeResult) -> str:
    if result.problems_blocking:
        return "✘ not graded"
    if result.passed is None:
        return ""
    return "✔ passed" if result.passed else "✘ not passed"


def _level(level: Level | None) -> str:
    return level.label if level is not None else "–"


def _single(result: GradeResult) -> list[str]:
    numbers = CellNumbers(result.evidence)  # cells as Jupyter shows them, as in the report
    title = result.assignment or result.rubric or "Assignment"
    verdict = _verdict(result)
    lines = [f"## {_md(title, 120)}: {fmt_points(result.score)} / {fmt_points(result.max_score)} points"
             + (f" — {verdict}" if verdict else "")
             + (f" (pass mark {fmt_points(result.pass_mark)})" if result.pass_mark is not None else ""), ""]
    if result.fast_mode:
        lines += ["> ⚡ **Fast mode**: trained on a small subset with capped epochs; checks that need a full "
                  "run are *not assessed*. This is a self-check, not a grade.", ""]
    for problem in result.problems:
        lines += [f"> ✘ **{_md(problem.kind.replace('_', ' '), 60)}**: {_md(numbers.renumber(problem.message), 1000)}", ""]
    if result.tasks:
        lines += ["| Task | Result | Points |", "|---|---|---:|"]
        for task in result.tasks:
            status = task_status(task)
            word = ("marked" if task.human_score is not None else "awaits marking") if status is Status.MANUAL else None
            lines.append(f"| {_md(task.title or task.task_id, 120)} | {_status(status, word)} | "
                         f"{fmt_points(task.points)} / {fmt_points(task.max_points)} |")
        lines.append("")
    to_fix = [(task, check) for task in result.tasks for check in task.checks if check.status is Status.FAILED]
    if to_fix:
        lines += ["### What to fix", ""]
        for task, check in to_fix:
            message = f" — {_md(numbers.renumber(check.message), 600)}" if check.message else ""
            unit = "point" if check.max_points == 1 else "points"
            lines.append(f"- ✘ **{_md(check.title, 160)}** ({_md(task.title or task.task_id, 80)}, "
                         f"{fmt_points(check.max_points)} {unit}){message}")
        lines.append("")
    unassessed = [(task, check) for task in result.tasks for check in task.checks
                  if check.status is Status.NOT_ASSESSED]
    if unassessed or any(task.selector_message for task in result.tasks):
        lines += ["### Not assessed", ""]
        for task in result.tasks:
            if task.selector_message:
                lines.append(f"- **{_md(task.title or task.task_id, 80)}**: {_md(numbers.renumber(task.selector_message), 600)}")
        for task, check in unassessed:
            if not task.selector_message:
                lines.append(f"- – **{_md(check.title, 160)}** ({_md(task.title or task.task_id, 80)})"
                             + (f": {_md(numbers.renumber(check.message), 400)}" if check.message else ""))
        lines.append("")
    errors = result.evidence.cell_errors if result.evidence is not None else []
    if errors:
        lines += ["### Cells that raised an error", ""]
        lines += [f"- cell {numbers.number(e.cell, e.traceback)}: `{_md(e.ename, 60)}`: {_md(e.evalue, 300)}"
                  for e in errors[:20]]
        if len(errors) > 20:
            lines.append(f"- … and {len(errors) - 20} more")
        lines.append("")
    if result.checks:
        lines += ["<details><summary>All checks</summary>", "",
                  "| Task | Check | Result | Points | Evidence |", "|---|---|---|---:|---|"]
        for task in result.tasks:
            for check in task.checks:
                lines.append(f"| {_md(task.task_id, 60)} | {_md(check.title, 160)} | {_status(check.status)} | "
                             f"{fmt_points(check.points)} / {fmt_points(check.max_points)} | {_level(check.level)} |")
        lines += ["", "</details>", ""]
    return lines


def _class(results: Sequence[GradeResult]) -> list[str]:
    title = next((r.assignment or r.rubric for r in results if r.assignment or r.rubric), "Assignment")
    passed = sum(1 for r in results if r.passed)
    problems = sum(1 for r in results if r.problems)
    lines = [f"## {_md(title, 120)}: {len(results)} submissions, {passed} passed"
             + (f", {problems} with problems" if problems else ""), "",
             "| Student | Score | Result | Failed checks | Problems |", "|---|---:|---|---:|---|"]
    for r in sorted(results, key=lambda r: r.student.key):
        failed = sum(1 for c in r.checks if c.status is Status.FAILED)
        lines.append(f"| {_md(r.student.name or r.student.key, 80)} | {fmt_points(r.score)} / "
                     f"{fmt_points(r.max_score)} | {_verdict(r) or '–'} | {failed} | "
                     f"{_md('; '.join(p.message for p in r.problems), 200)} |")
    lines.append("")
    for r in sorted(results, key=lambda r: r.student.key):
        failed = [(t, c) for t in r.tasks for c in t.checks if c.status is Status.FAILED]
        if failed:
            lines += [f"<details><summary>{_md(r.student.name or r.student.key, 80)}: "
                      f"{len(failed)} failed</summary>", ""]
            lines += [f"- ✘ **{_md(c.title, 160)}** ({_md(t.task_id, 60)})"
                      + (f" — {_md(c.message, 400)}" if c.message else "") for t, c in failed]
            lines += ["", "</details>", ""]
    return lines


def summary_markdown(results: Sequence[GradeResult], *, limit: int = SUMMARY_LIMIT) -> str:
    """The summary as text, at most ``limit`` bytes of UTF-8 (cut at a line, with a note)."""
    if not results:
        return "## nn-grader\n\nNo submission was graded.\n"
    lines = _single(results[0]) if len(results) == 1 else _class(results)
    text = "\n".join(lines).rstrip() + "\n"
    if len(text.encode("utf-8")) <= limit:
        return text
    note = ("\n\n_… The summary was cut here: it exceeded the 1 MiB a CI job summary may hold. "
            "The HTML report and the JUnit file have everything._\n")
    budget = limit - len(note.encode("utf-8")) - len("</details>\n".encode()) * 50
    kept: list[str] = []
    size = 0
    for line in text.splitlines():
        size += len(line.encode("utf-8")) + 1
        if size > budget:
            break
        kept.append(line)
    opened = sum(line.startswith("<details>") for line in kept) - sum(line == "</details>" for line in kept)
    kept += ["", "</details>"] * min(max(opened, 0), 50)
    return "\n".join(kept) + note


def write_summary_markdown(results: list[GradeResult], path: Path) -> Path:
    """Write the markdown summary of ``results`` to ``path`` (under 1 MiB, cut with a note)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary_markdown(results), encoding="utf-8")
    return path
