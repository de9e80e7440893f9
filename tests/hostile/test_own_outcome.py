"""What a notebook does inside its kernel is that submission's outcome, never "the grader itself
failed" (issue 14): a loop that ignores SIGINT is a timeout, a patched ``json.dumps`` and a deeply
nested line in the grader's log are the notebook's doing, told as such, with a grade."""

from __future__ import annotations

import pytest

from grader.batch.local import grade_batch
from grader.config import GradingOptions
from grader.model.results import Student
from grader.rubric.load import load_rubric_text
from grader.collect import Submission
from tests.nbfactory import code, md, notebook, write

pytestmark = pytest.mark.slow  # real kernels, one of them stopped at its cell timeout

RUBRIC = """
name: own-outcome
tasks:
  - id: q1
    question: "Question 1"
    checks:
      - answer: {variable: answer, equals: 42}
"""

FIND_BUNDLE = "import os\nbundle = next(root for root, dirs, files in os.walk('.') if 'events.jsonl' in files)\n"
NOTEBOOKS = {
    "ignores_sigint": [code("answer = 42"), code("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                                 "while True:\n    time.sleep(0.1)")],
    "patched_dumps": [code("answer = 42\nimport json\njson.dumps = lambda *a, **k: '{}'")],
    "nested_line": [code("answer = 42\n" + FIND_BUNDLE + "with open(os.path.join(bundle, 'events.jsonl'), 'a') as log:\n"
                                                          "    log.write('[' * 100000 + ']' * 100000 + '\\n')")],
    "honest": [code("answer = 42")],
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    submissions = [Submission(write(notebook(md("## Question 1"), *cells), root / "in" / f"{name}.ipynb"), Student(name))
                   for name, cells in NOTEBOOKS.items()]
    options = GradingOptions(preflight=False, verify=False, cell_timeout=8, notebook_timeout=120, sandbox="none")
    return {r.student.key: r for r in grade_batch(submissions, load_rubric_text(RUBRIC), root / "out", options=options,
                                                     workers=2)}


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_no_notebook_makes_its_result_the_graders_failure(graded, name):
    result = graded[name]
    assert not [p for p in result.problems if p.kind in ("internal", "environment")], result.problems
    assert not result.problems_blocking  # a grade, in the gradebook


@pytest.mark.parametrize("name", ["honest", "nested_line"])
def test_what_the_recorder_saw_before_counts(graded, name):
    assert graded[name].score == 1, [c.message for c in graded[name].checks]


def test_a_loop_that_ignores_interrupts_is_a_timeout(graded):
    assert [p.kind for p in graded["ignores_sigint"].problems] == ["timeout"]


def test_a_broken_recorder_or_log_is_told_as_the_notebooks_doing(graded):
    # the line never came down the recorder's pipe: not read, and named as the notebook's doing
    kinds = {f.kind for f in graded["nested_line"].evidence.findings}
    assert "rewritten" in kinds, kinds
    patched = graded["patched_dumps"].evidence.findings
    assert any(f.kind in ("recorder", "bundle") for f in patched), [(f.kind, f.message) for f in patched]
