"""Preflight: is the assignment's environment able to run the assignment at all?

Once per batch, before any submission, the grader runs a small notebook in the same kind of
kernel the submissions get: it imports the packages the rubric names and every course helper
module among the support files (``from Custom import PlotModelEval`` imports scikit-learn, say).
A failure there would fail every student in the same way, so the batch stops with one message
that says what to install, instead of forty reports that blame the students.

After a batch, :func:`shared_environment_errors` catches what the preflight could not: the same
import error in every submission.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

from nbformat.v4 import new_code_cell, new_notebook

from grader.errors import EnvironmentProblem
from grader.execute.settings import ExecutionSettings
from grader.model.results import GradeResult, SubmissionProblem

_MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")
# Import names that differ from the package to install.
_PACKAGE_OF = {"sklearn": "scikit-learn", "cv2": "opencv-python", "PIL": "pillow", "yaml": "pyyaml", "skimage": "scikit-image"}


def preflight_cells(settings: ExecutionSettings, packages: list[str]) -> list[str]:
    """The sources the preflight runs: one cell per package and per helper module."""
    sources = [f"import {name}" for name in packages]
    for support in settings.support_files:
        if support.suffix == ".py":
            sources.append(f"import {support.stem}")
    if any(re.search(r"plot_model", s) for s in sources):
        sources.append("import pydot")
    return sources


def run_preflight(settings: ExecutionSettings, packages: list[str]) -> None:
    """Raise :class:`EnvironmentProblem` naming what to install when a preflight cell fails."""
    sources = preflight_cells(settings, packages)
    if not sources:
        return
    nb = new_notebook(cells=[new_code_cell(source) for source in sources])
    workdir = Path(tempfile.mkdtemp(prefix="nn-grader-preflight-"))
    quick = replace(settings, fast=None, functions=[], variables=[], cell_timeout=min(settings.cell_timeout, 300))
    from grader.execute.client import drain_shutdowns, execute_notebook  # (what reads results needs no kernel)

    async def main():
        try:
            return await execute_notebook(nb, workdir / "run", quick)
        finally:
            await drain_shutdowns()

    try:
        execution = asyncio.run(main())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if execution.kernel_died or execution.setup_error:
        raise EnvironmentProblem(
            f"The grading kernel is broken before any student code runs: {execution.kernel_died or execution.setup_error}. "
            "No submission was graded.")
    if execution.cell_errors:
        error = execution.cell_errors[0]
        raise EnvironmentProblem(
            f"The assignment's environment is broken: `{error.source.strip()}` fails with {error.ename}: {error.evalue}. "
            f"{install_hint(error.evalue)}No submission was graded.")


def install_hint(message: str) -> str:
    match = _MISSING_MODULE.search(message)
    if not match:
        return ""
    module = match.group(1).split(".")[0]
    package = _PACKAGE_OF.get(module, module)
    return (f"Install `{package}` into the environment the kernels run in (pip install {package}), "
            "or name a prepared kernel in the rubric (`kernel:`), and run again. ")


def shared_environment_errors(results: list[GradeResult]) -> str | None:
    """The import error most executed submissions share (at least two), if there is one."""
    executed = [r for r in results if r.evidence is not None and r.mode == "executed" and r.evidence.cells]
    if len(executed) < 2:
        return None
    counts: Counter[str] = Counter()
    for result in executed:
        seen = {f"{e.ename}: {e.evalue}" for e in result.evidence.cell_errors if e.ename in ("ModuleNotFoundError", "ImportError")}
        counts.update(seen)
    # Most of a batch failing the same import is the environment's, even when a few students
    # happened to avoid the module.
    for message, count in counts.most_common(1):
        if count >= 2 and count * 2 > len(executed):
            return message
    return None


def mark_environment_problem(results: list[GradeResult], message: str) -> None:
    """Tell every affected result that its import error is the environment's, once."""
    note = (f"Most submissions failed with the same error, {message}: this is a problem of the grading "
            f"environment, not of this notebook. {install_hint(message)}")
    for result in results:
        errors = result.evidence.cell_errors if result.evidence is not None else []
        if not any(f"{e.ename}: {e.evalue}" == message for e in errors):
            continue  # this submission did not fail that way
        module = _MISSING_MODULE.search(message)
        if module:  # no longer the student's: drop the per-submission blame for that module
            result.problems[:] = [p for p in result.problems if not (p.kind == "import" and f"`{module.group(1).split('.')[0]}" in p.message)]
        if not any(p.kind == "environment" for p in result.problems):
            result.problems.append(SubmissionProblem("environment", note))
