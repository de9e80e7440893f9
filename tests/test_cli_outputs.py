"""Output options are checked before the first kernel starts, and one output that fails at the
end does not stop the others."""

from __future__ import annotations

from click.testing import CliRunner

from grader.cli import main


def _batch(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    return folder


def test_unknown_export_format_is_refused_before_grading_with_the_choices(tmp_path):
    result = CliRunner().invoke(main, ["run", str(_batch(tmp_path)), "--rubric", "cifar10", "--export", "canvass",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "canvass" in result.output and "canvas" in result.output
    assert not (tmp_path / "out").exists()


def test_blackboard_without_column_id_is_refused_before_grading(tmp_path):
    result = CliRunner().invoke(main, ["run", str(_batch(tmp_path)), "--rubric", "cifar10", "--export", "blackboard",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--column-id" in result.output
    assert not (tmp_path / "out" / ".store").exists()  # nothing was graded


def test_unknown_layout_is_a_click_choice_error(tmp_path):
    result = CliRunner().invoke(main, ["run", str(_batch(tmp_path)), "--rubric", "cifar10", "--layout", "canvass"])
    assert result.exit_code == 2 and "'canvass' is not one of" in result.output


def test_export_command_writes_the_other_formats_when_one_fails(tmp_path):
    from tests.report_samples import passing_student, failing_student
    from grader.store.result_store import ResultStore

    out = tmp_path / "out"
    store = ResultStore(out)
    for result in (passing_student(), failing_student()):
        store.save_result(result)
    blocker = out / "exports" / "grades.csv"  # a folder where the plain CSV must go
    blocker.mkdir(parents=True)
    result = CliRunner().invoke(main, ["export", str(out), "--to", "csv", "--to", "canvas"])
    assert result.exit_code == 2, result.output
    assert "csv gradebook was not written" in result.output
    assert list((out / "exports").glob("canvas*"))
