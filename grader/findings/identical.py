"""Identical submissions: the same notebook file, or the same code cells once whitespace,
outputs and metadata are set aside.

Two hashes per submission are taken when it is loaded (:func:`notebook_hashes`) and kept in its
result; after the batch :func:`flag_identical` groups equal hashes and tells each student of the
group whose submission theirs equals. The whole set of code cells is compared, so the template's
own cells, which every submission shares, make no one identical; unfinished templates
("incomplete") are left out, since two students who handed in the blank template copied nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

from grader.model.evidence import Evidence, Finding
from grader.model.results import GradeResult

SAME_FILE = "same notebook file"
SAME_CODE = "same code cells"


def code_hash(nb: nbformat.NotebookNode) -> str:
    """SHA-256 of the notebook's code cells, each with its whitespace normalised (outputs,
    execution counts and metadata are not part of it); "" for a notebook without code."""
    parts = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        lines = [" ".join(line.split()) for line in str(cell.get("source", "")).splitlines()]
        text = "\n".join(line for line in lines if line)
        if text:
            parts.append(text)
    if not parts:
        return ""
    return hashlib.sha256("\n\x00\n".join(parts).encode("utf-8")).hexdigest()


def notebook_hashes(path: Path, nb: nbformat.NotebookNode | None = None, *,
                    data: bytes | None = None) -> tuple[str, str]:
    """(SHA-256 of the file's bytes, :func:`code_hash`); "" for what cannot be read. ``data``:
    the file's bytes, when they were read already."""
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError:
            return "", ""
    if nb is None:
        try:
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        except Exception:  # not a notebook: only the bytes can be compared
            return hashlib.sha256(data).hexdigest(), ""
    return hashlib.sha256(data).hexdigest(), code_hash(nb)


def flag_identical(results: list[GradeResult]) -> list[GradeResult]:
    """Mark every result whose notebook equals another's (``identical_to`` and a finding in its
    evidence); results without hashes (stored by an older grader) are hashed from their file.
    Returns the results that changed. Running it again gives the same marks."""
    changed = []
    for result in results:
        if not result.notebook_sha256 and result.path:
            result.notebook_sha256, result.code_sha256 = notebook_hashes(Path(result.path))
    eligible = [r for r in results if not any(p.kind in ("incomplete", "invalid_notebook") for p in r.problems)]
    by_file: dict[str, list[GradeResult]] = {}
    by_code: dict[str, list[GradeResult]] = {}
    for result in eligible:
        if result.notebook_sha256:
            by_file.setdefault(result.notebook_sha256, []).append(result)
        if result.code_sha256:
            by_code.setdefault(result.code_sha256, []).append(result)
    for result in results:
        marks = []
        same_file = {id(r) for r in by_file.get(result.notebook_sha256, []) if r is not result} if result in eligible else set()
        for other in by_file.get(result.notebook_sha256, []) if result in eligible else []:
            if other is not result:
                marks.append(f"{_who(other)} ({SAME_FILE})")
        for other in by_code.get(result.code_sha256, []) if result in eligible else []:
            if other is not result and id(other) not in same_file:
                marks.append(f"{_who(other)} ({SAME_CODE})")
        if marks != result.identical_to or (marks and not _has_finding(result)):
            result.identical_to = marks
            _set_finding(result, marks)
            changed.append(result)
    return changed


def _who(result: GradeResult) -> str:
    student = result.student
    return student.name or student.login or student.key


def _has_finding(result: GradeResult) -> bool:
    return result.evidence is not None and any(f.kind == "identical" for f in result.evidence.findings)


def _set_finding(result: GradeResult, marks: list[str]) -> None:
    if result.evidence is None:
        if not marks:
            return
        result.evidence = Evidence(submission=result.path)
    result.evidence.findings = [f for f in result.evidence.findings if f.kind != "identical"]
    if marks:
        words = []
        for mark in marks:
            who, _, how = mark.rpartition(" (")
            words.append(f"{who}'s submission ({how}")
        result.evidence.findings.append(Finding(
            "identical", "Identical to " + "; to ".join(words) + ". Identical submissions are flagged for the "
            "instructor to look at; nothing is deducted automatically.", severity="warning"))
