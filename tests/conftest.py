"""Fixtures shared by the test files.

``tiny_rubric`` is the rubric of the batch tests (local, Dask, resume): one task whose answer is a
variable ``answer`` equal to 42, assigned in the code. Its notebooks are ``notebook(md("# Question 1"),
code("answer = 42"))`` (:mod:`tests.nbfactory`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

TINY_RUBRIC = """\
name: tiny
title: Tiny answers
tasks:
  - id: q1
    title: the answer
    checks:
      - answer: {{variable: answer, equals: {expected}}}
      - code: {{pattern: 'answer\\s*='}}
"""


@pytest.fixture
def tiny_rubric(tmp_path: Path) -> Callable[..., Path]:
    """Writes the tiny rubric and returns its path: ``tiny_rubric()`` writes ``tmp_path/rubric.yaml``;
    ``tiny_rubric(folder, expected=7, extra="kernel: x\\n")`` another answer, or top-level keys added."""

    def write(folder: Path = tmp_path, *, expected: int = 42, extra: str = "") -> Path:
        path = folder / "rubric.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TINY_RUBRIC.format(expected=expected) + extra, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="module")
def cifar():
    from grader.data.load import load_dataset

    return load_dataset("cifar10", source="synthetic", train_size=600, test_size=200)


@pytest.fixture(scope="module")
def test_images(cifar):
    from grader.findings.integrity import TestImages

    return TestImages(cifar.x_test)
