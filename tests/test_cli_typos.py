"""A mistyped subcommand or option of `grade` is named as such, with the closest match, rather
than read as a submission path or an option of `grade run`."""

from __future__ import annotations

from click.testing import CliRunner

from grader.cli import main


def test_mistyped_subcommand_suggests_the_command():
    result = CliRunner().invoke(main, ["chek", "lab.ipynb", "--rubric", "cifar10"])
    assert result.exit_code == 2
    assert "No such command 'chek'" in result.output and "Did you mean 'check'" in result.output


def test_mistyped_version_option_suggests_version():
    result = CliRunner().invoke(main, ["--versoin"])
    assert result.exit_code == 2 and "Did you mean '--version'" in result.output


def test_a_path_that_looks_like_a_command_is_still_graded_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checks").mkdir()  # a folder of submissions named like a near-miss of `check`
    result = CliRunner().invoke(main, ["checks", "--rubric", "no-such-rubric"])
    assert "No such command" not in result.output
    assert result.exit_code == 2 and "no-such-rubric" in result.output


def test_run_options_before_the_paths_still_mean_run(tmp_path):
    result = CliRunner().invoke(main, ["--rubric", "no-such-rubric", str(tmp_path)])
    assert "No such option" not in result.output and "no-such-rubric" in result.output
