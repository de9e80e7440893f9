"""Where the files that ship with the grader are: built-in rubrics and report templates.

In an installed wheel they are the packages ``grader._rubrics`` and ``grader._templates``; in a
source checkout they are the top-level ``rubrics/`` and ``templates/`` folders.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def _package_dir(package: str, fallback: str) -> Path:
    checkout = _ROOT / fallback
    if checkout.is_dir() and (_ROOT / "pyproject.toml").is_file():
        return checkout
    return Path(str(importlib.resources.files(package)))


def rubrics_dir() -> Path:
    return _package_dir("grader._rubrics", "rubrics")


def templates_dir() -> Path:
    return _package_dir("grader._templates", "templates")
