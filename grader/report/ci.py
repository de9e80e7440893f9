"""Outputs for continuous integration: JUnit XML and a markdown summary.

* :func:`write_junit` — one ``<testcase>`` per check. Its ``classname`` is the task, which GitLab
  shows as the suite, so a merge request's test report groups checks by task. A failed check is a
  ``<failure>`` with the check's message; a check that could not be assessed, or waits for a human,
  is ``<skipped>``; a submission problem (unreadable notebook, dead kernel, timeout) is an
  ``<error>``. Partial credit is not a JUnit idea: points go into the test name and the suite's
  properties.
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

from grader.evidence import Level
from grader.report.html import STATUS_WORDS, clean_text, fmt_points, task_status
from grader.results import CheckResult, GradeResult, Status

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


def _testcase_name(check: CheckResult, seen: dict[str, int]) -> str:
    name = f"{_xml_text(check.title or check.check, 200)} ({_points(check.points, check.max_points)})"
    # GitLab keeps only the first of two tests with the same name in a suite.
    seen[name] = seen.get(name, 0) + 1
    return name if seen[name] == 1 else f"{name} #{seen[name]}"


def junit_tree(results: Sequence[GradeResult]) -> ET.ElementTree:
    """The JUnit document for ``results`` (one ``<testsuite>`` per submission)."""
    root = ET.Element("testsuites", name="nn-grader")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    several = len(results) > 1
    for result in results:
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        suite_name = "/".join(p for p in (result.assignment or result.rubric, result.student.key) if p)
        suite = ET.SubElement(root, "testsuite", name=_xml_text(suite_name, 200))
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
        for problem in result.problems:
            case = ET.SubElement(suite, "testcase", classname=_xml_text(f"{prefix}submission", 200),
                                 name=_xml_text(problem.kind.replace("_", " "), 200), file=result.path)
            error = ET.SubElement(case, "error", message=_xml_text(problem.message, 1000), type=problem.kind)
            error.text = _xml_text(problem.detail or problem.message)
            counts["tests"] += 1
            counts["errors"] += 1
        for task in result.tasks:
            classname = _xml_text(prefix + task.task_id, 200)
            seen: dict[str, int] = {}
            if task.manual and not task.checks:
                case = ET.SubElement(suite, "testcase", classname=classname, file=result.path,
                                     name=_xml_text(f"{task.title or task.task_id} (manual)", 200))
                message = ("awaits a human score" if task.human_score is None
                           else f"marked by hand: {_points(task.human_score, task.max_points)}")
                ET.SubElement(case, "skipped", message=message)
                counts["tests"] += 1
                counts["skipped"] += 1
            for check in task.checks:
                case = ET.SubElement(suite, "testcase", classname=classname, file=result.path,
                                     name=_testcase_name(check, seen))
                counts["tests"] += 1
                detail = _check_detail(check)
                if check.status is Status.FAILED:
                    failure = ET.SubElement(case, "failure", type=_xml_text(check.check, 100),
                                            message=_xml_text(check.message or check.title, 1000))
                    failure.text = detail
                    counts["failures"] += 1
                elif check.status is Status.NOT_ASSESSED:
                    message = f"not assessed: {check.message}" if check.message else "not assessed"
                    ET.SubElement(case, "skipped", message=_xml_text(message, 1000))
                    counts["skipped"] += 1
                elif check.status is Status.MANUAL:
                    # Partial credit from a person is neither a pass nor a failure.
                    message = (f"marked by hand: {_points(check.points, check.max_points)}"
                               if "human_score" in check.details else "awaits a human score")
                    ET.SubElement(case, "skipped", message=message)
                    counts["skipped"] += 1
                elif detail:
                    ET.SubElement(case, "system-out").text = detail
            if task.selector_message:
                suite_err = suite.find("system-err")
                if suite_err is None:
                    suite_err = ET.SubElement(suite, "system-err")
                    suite_err.text = ""
                suite_err.text += _xml_text(f"{task.task_id}: {task.selector_message}\n", 2000)
        errors = result.evidence.cell_errors if result.evidence is not None else []
        if errors:
            suite_err = suite.find("system-err")
            if suite_err is None:
                suite_err = ET.SubElement(suite, "system-err")
                suite_err.text = ""
            suite_err.text += "".join(
                _xml_text(f"cell {e.cell.number}: {e.ename}: {e.evalue}\n", 1000) for e in errors[:50])
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        if result.duration_s is not None:
            suite.set("time", f"{result.duration_s:.3f}")
            total_time += result.duration_s
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
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
    title = result.assignment or result.rubric or "Assignment"
    verdict = _verdict(result)
    lines = [f"## {_md(title, 120)}: {fmt_points(result.score)} / {fmt_points(result.max_score)} points"
             + (f" — {verdict}" if verdict else "")
             + (f" (pass mark {fmt_points(result.pass_mark)})" if result.pass_mark is not None else ""), ""]
    if result.fast_mode:
        lines += ["> ⚡ **Fast mode**: trained on a small subset with capped epochs; checks that need a full "
                  "run are *not assessed*. This is a self-check, not a grade.", ""]
    for problem in result.problems:
        lines += [f"> ✘ **{_md(problem.kind.replace('_', ' '), 60)}**: {_md(problem.message, 1000)}", ""]
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
            message = f" — {_md(check.message, 600)}" if check.message else ""
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
                lines.append(f"- **{_md(task.title or task.task_id, 80)}**: {_md(task.selector_message, 600)}")
        for task, check in unassessed:
            if not task.selector_message:
                lines.append(f"- – **{_md(check.title, 160)}** ({_md(task.title or task.task_id, 80)})"
                             + (f": {_md(check.message, 400)}" if check.message else ""))
        lines.append("")
    errors = result.evidence.cell_errors if result.evidence is not None else []
    if errors:
        lines += ["### Cells that raised an error", ""]
        lines += [f"- cell {e.cell.number}: `{_md(e.ename, 60)}`: {_md(e.evalue, 300)}" for e in errors[:20]]
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
