"""Whose mistake is a failed import: the environment's, or the student's?

A module the assignment declares (the rubric's ``packages``) that does not import is the
environment's: every student would fail the same way. So is one an installed library needs and
the notebook never imported (``ImageDataGenerator(rotation_range=15)`` wants scipy), whether the
library lets the ``ModuleNotFoundError`` through or raises its own ``ImportError`` naming it. Anything else is the student's, told so
that they can act on it: a typo (``import num``) gets the module it probably meant, and a module
that is installed nowhere is taken for a helper file that was not submitted (``Custom.py``).
"""

from __future__ import annotations

import difflib
import pkgutil
import re
import sys
from pathlib import Path

from grader.execute.preflight import install_hint
from grader.model.results import SubmissionProblem

_MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")
# What libraries raise instead of a bare ModuleNotFoundError when an optional dependency is missing:
# Keras 3 ("This requires the scipy module. You can install it via `pip install scipy`", from
# ImageDataGenerator's rotations and shifts) and Keras 2 ("Image transformations require SciPy").
_LIBRARY_NEEDS = (
    re.compile(r"This requires the ([\w.]+) module\b"),
    re.compile(r"\brequires? (?:the )?`?(SciPy|scipy|PIL|Pillow|h5py|pydot|sklearn)`?", re.I),
)
_IMPORT_NAME = {"scipy": "scipy", "pil": "PIL", "pillow": "PIL", "h5py": "h5py", "pydot": "pydot", "sklearn": "sklearn"}
# Frames of an IPython traceback: "Cell In[3], line 2" (the notebook) or "File /…/x.py:12, in f"
# (a module); an installed package's file sits under site-packages or dist-packages.
_FRAME = re.compile(r"^(?:Cell In\[\d*\]|File [^\n]{1,500})", re.M)
_INSTALLED = re.compile(r"[/\\](?:site|dist)-packages[/\\]")
# Import names that exist on PyPI but are not installed here: not typos, just not provided.
_KNOWN_PACKAGES = frozenset({
    "sklearn", "cv2", "PIL", "skimage", "seaborn", "pandas", "scipy", "torch", "torchvision", "plotly",
    "tqdm", "h5py", "yaml", "tensorflow_datasets", "keras_tuner", "xgboost", "lightgbm", "statsmodels",
    "numpy", "matplotlib", "tensorflow", "keras", "jax", "imageio", "pydot", "graphviz", "visualkeras",
})


def _available_modules() -> set[str]:
    return {m.name for m in pkgutil.iter_modules()} | set(sys.builtin_module_names) | _KNOWN_PACKAGES


def raised_in_a_library(traceback: str) -> bool:
    """True when the innermost frame of ``traceback`` is an installed package's, not the notebook's:
    a library (Keras' ``ImageDataGenerator`` wanting scipy) imported what is missing."""
    frames = _FRAME.findall(traceback or "")
    return bool(frames) and frames[-1].startswith("File") and bool(_INSTALLED.search(frames[-1]))


def missing_module(evalue: str) -> str | None:
    """The module an import error's message says is missing: ``No module named 'x'``, or the words
    a library raises for an optional dependency it lacks (``This requires the scipy module``)."""
    match = _MISSING_MODULE.search(evalue)
    if match:
        return match.group(1)
    for pattern in _LIBRARY_NEEDS:
        if (match := pattern.search(evalue)) is not None:
            return _IMPORT_NAME.get(match.group(1).lower(), match.group(1))
    return None


def import_problem(evalue: str, cell_number: int, declared: list[str], *, traceback: str = "") -> SubmissionProblem | None:
    """The problem a ``ModuleNotFoundError`` (or a library's ``ImportError`` for a dependency it
    lacks) with message ``evalue`` stands for, blamed right.

    ``declared``: the modules the assignment needs (the rubric's ``packages``); ``traceback``: the
    error's traceback, to tell a module a library wanted from one the notebook imported."""
    full = missing_module(evalue)
    if full is None:
        return None
    top = full.split(".")[0]
    hint = install_hint(f"No module named '{full}'")
    if raised_in_a_library(traceback):
        return SubmissionProblem(
            "environment", f"cell {cell_number}: {evalue.strip().rstrip('.')}: an installed library needs `{top}` (the "
            f"notebook did not import it itself), and the grader's environment lacks it. This is not your mistake, and "
            f"it is not counted as your mistake. {hint}".strip())
    if top in {d.split(".")[0] for d in declared}:
        return SubmissionProblem(
            "environment", f"cell {cell_number}: {evalue}. The assignment needs `{top}`, but it is not installed where "
            f"the grader runs notebooks: this is not counted as your mistake. {hint}".strip())
    if full.startswith("google.colab"):
        return SubmissionProblem(
            "import", f"cell {cell_number}: `{full}` exists only on Google Colab; remove the Colab-only lines "
                      "(drive.mount, files.upload) so that the notebook runs anywhere.")
    if top in _KNOWN_PACKAGES:
        return SubmissionProblem(
            "import", f"cell {cell_number}: `{top}` is not installed where the grader runs, and the assignment does not "
                      f"list it (rubric `packages:`). Use the packages the course provides, or ask your instructor to add it.")
    # The common packages first: `num` is `numpy`, not `enum`.
    close = (difflib.get_close_matches(top, sorted(_KNOWN_PACKAGES), n=1, cutoff=0.6)
             or difflib.get_close_matches(top, sorted(_available_modules() - {top}), n=1, cutoff=0.6))
    if close and top.lower() == top:
        return SubmissionProblem(
            "import", f"cell {cell_number}: there is no module `{top}` (`import {top}`): check the spelling. "
                      f"Did you mean `{close[0]}`?")
    return SubmissionProblem(
        "import", f"cell {cell_number}: {top}.py was not found next to the notebook and no installed module is called "
                  f"`{top}`; submit it or ask your instructor to add it with --support (or the rubric's `support_files`).")


_IMPORT = re.compile(r"^\s*(?:from|import)\s+(\w+)", re.M)


def helpers_next_to(notebook: Path) -> list[Path]:
    """The student's own modules the notebook imports from its folder (``Custom.py``), for
    ``grade check``: a self-check runs the notebook with what lies next to it."""
    import nbformat

    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except Exception:  # an unreadable notebook is reported by the grading itself
        return []
    names = {m for cell in nb.cells if cell.cell_type == "code" for m in _IMPORT.findall(cell.source)}
    return sorted(p.resolve() for name in names for p in [notebook.parent / f"{name}.py"] if p.is_file())


# "[Errno 2] No such file or directory: 'mnist_4000.pkl.gz'"; h5py: "unable to open file: name = 'faces.hdf5'"
_MISSING_FILE = re.compile(r"(?:No such file or directory: |name = )'([^']+)'")


def missing_file_problem(ename: str, evalue: str, cell_number: int) -> SubmissionProblem | None:
    """A data file the notebook opens that is not in the grader's working folder: named, with
    how to supply it, instead of a bare FileNotFoundError."""
    if ename not in ("FileNotFoundError", "OSError"):
        return None
    match = _MISSING_FILE.search(evalue)
    if not match:
        return None
    name = Path(match.group(1)).name
    return SubmissionProblem(
        "missing_file", f"cell {cell_number}: the file `{match.group(1)}` was not found where the grader runs the notebook. "
        f"If it is a course data file, the instructor supplies it with the rubric's `support_files` or "
        f"`--support {name}` (for `grade check`, `--support PATH/{name}`); the cells that need it could not be graded.")
