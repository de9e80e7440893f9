"""The default for other people's notebooks: no silent run without a sandbox (issue 14).

``grade run`` with ``--sandbox auto`` refuses, with the install command, where bubblewrap cannot
run; ``--sandbox none`` is a choice made out loud; a student's own ``grade check`` may fall back.
The probe is replaced, so these run the same on machines with and without bubblewrap.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from grader.execute import sandbox
from grader.cli.root import EXIT_USAGE, main
from tests.nbfactory import code, md, notebook, write

RUBRIC = """
name: sandbox-default
tasks:
  - id: q1
    question: "Question 1"
    checks:
      - answer: {pattern: '42'}
"""


@pytest.fixture
def no_bwrap(monkeypatch):
    monkeypatch.setattr(sandbox, "probe_bwrap", lambda: "bubblewrap is not installed")
    monkeypatch.setattr(sandbox, "_warned", set())


@pytest.fixture
def batch(tmp_path):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(RUBRIC)
    write(notebook(md("## Question 1"), md("42"), code("x = 1")), tmp_path / "in" / "alice.ipynb")
    return tmp_path, rubric


def test_a_batch_refuses_to_run_unsandboxed_by_default(no_bwrap, batch):
    root, rubric = batch
    result = CliRunner().invoke(main, ["run", str(root / "in"), "--rubric", str(rubric), "--out", str(root / "out")])
    assert result.exit_code == EXIT_USAGE, result.output
    assert "needs a sandbox" in result.output and "apt-get install bubblewrap" in result.output
    assert "--sandbox none" in result.output
    assert not (root / "out").exists()  # nothing half-written


def test_a_batch_runs_unsandboxed_when_asked_out_loud(no_bwrap, batch):
    root, rubric = batch
    result = CliRunner().invoke(main, ["run", str(root / "in"), "--rubric", str(rubric), "--out", str(root / "out"),
                                       "--sandbox", "none", "--static"])
    assert result.exit_code == 0, result.output


def test_static_grading_runs_no_kernel_and_needs_no_sandbox(no_bwrap, batch):
    root, rubric = batch
    result = CliRunner().invoke(main, ["run", str(root / "in"), "--rubric", str(rubric), "--out", str(root / "out"),
                                       "--static"])
    assert result.exit_code == 0, result.output


def test_a_students_own_check_may_fall_back(no_bwrap, monkeypatch):
    from grader.cli.run import _require_sandbox
    from grader.config import GradingOptions

    hardened = []
    monkeypatch.setattr(sandbox, "make_undumpable", lambda: hardened.append(True) or True)
    _require_sandbox(GradingOptions(sandbox="none"))  # asked for: no refusal
    assert hardened == [True]  # the grader's memory and environment are not the kernels' to read
    with pytest.raises(sandbox.SandboxUnavailable):
        _require_sandbox(GradingOptions(sandbox="auto"))
    assert sandbox.resolve_mode("auto") == "none"  # what grade check does: falls back, says so once
