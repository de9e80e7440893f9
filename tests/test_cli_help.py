"""The command line reads as one tool: every command's help ends with an example, one thing has one
option name across commands (the old spellings still work for a release, with a notice), and
`grade rubric schema` finds the schema that ships with the package."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from grader.cli import main


def _command_paths(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under ``command``, as the words that name it after ``grade``."""
    paths = [path]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            paths += _command_paths(command.commands[name], (*path, name))
    return paths


COMMANDS = _command_paths(main)


def test_the_walk_finds_the_nested_commands():
    # So the test below cannot pass by walking nothing.
    for expected in [(), ("run",), ("export",), ("rubric",), ("rubric", "schema"), ("manual", "template"),
                     ("reference", "train"), ("calibrate",)]:
        assert expected in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "grade")
def test_every_command_help_ends_with_an_example(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    last_paragraph = result.output.rstrip().split("\n\n")[-1].strip()
    assert last_paragraph.startswith("Example"), f"`grade {' '.join(path)} --help` ends with:\n{last_paragraph}"
    # The example is a command line of this tool, not prose.
    assert "\n  grade " in "\n" + last_paragraph.split("\n", 1)[1].replace("    grade ", "  grade ")


# ---- one name for one thing -------------------------------------------------------------------


def _stored_results(tmp_path: Path) -> Path:
    from grader.store.result_store import ResultStore
    from tests.report_samples import failing_student, passing_student

    out = tmp_path / "out"
    store = ResultStore(out)
    for result in (passing_student(), failing_student()):
        store.save_result(result)
    return out


def test_export_takes_the_same_option_names_as_run():
    names = {cmd: {opt for p in main.commands[cmd].params if isinstance(p, click.Option) for opt in p.opts}
             for cmd in ("run", "export")}
    for option in ("--export", "--gradebook", "--column-id", "--grade-item"):
        assert option in names["run"] and option in names["export"], option


def test_new_names_export_without_a_notice(tmp_path):
    out = _stored_results(tmp_path)
    result = CliRunner().invoke(main, ["export", str(out), "--export", "csv", "--export", "canvas"])
    assert result.exit_code == 0, result.output
    assert "deprecated" not in result.stderr
    assert list((out / "exports").glob("canvas*")) and list((out / "exports").glob("*.csv"))


def test_old_to_still_exports_and_warns_once_on_stderr(tmp_path):
    out = _stored_results(tmp_path)
    result = CliRunner().invoke(main, ["export", str(out), "--to", "canvas", "--to=csv"])
    assert result.exit_code == 0, result.output
    notices = [line for line in result.stderr.splitlines() if "deprecated" in line]
    assert notices == ["grade: --to is deprecated and goes away in the next release; use --export"]
    assert "deprecated" not in result.stdout
    assert list((out / "exports").glob("canvas*")) and list((out / "exports").glob("*.csv"))


def test_old_template_means_gradebook(tmp_path):
    out = _stored_results(tmp_path)
    download = tmp_path / "gradebook.csv"
    download.write_text("Student,ID\n")
    # A downloaded gradebook is refused for the plain CSV format: the old name reached the same
    # parameter as --gradebook, and the message names the new one.
    old = CliRunner().invoke(main, ["export", str(out), "--export", "csv", "--template", str(download)])
    new = CliRunner().invoke(main, ["export", str(out), "--export", "csv", "--gradebook", str(download)])
    assert old.exit_code == new.exit_code == 2
    assert "--template is deprecated" in old.stderr and "use --gradebook" in old.stderr
    assert "deprecated" not in new.stderr
    assert old.stderr.splitlines()[-1] == new.stderr.splitlines()[-1]
    assert "--gradebook" in new.stderr


def test_a_value_spelled_like_an_old_option_is_left_alone(tmp_path):
    out = _stored_results(tmp_path)
    result = CliRunner().invoke(main, ["export", str(out), "--export", "csv", "--title", "--to"])
    assert result.exit_code == 0, result.output
    assert "deprecated" not in result.stderr


def test_old_names_are_hidden_from_help_and_typos_name_the_new_ones(tmp_path):
    help_text = CliRunner().invoke(main, ["export", "--help"]).output
    assert "--export" in help_text and "--gradebook" in help_text
    assert "--to" not in help_text and "--template" not in help_text
    # An old name with a wrong value is reported under the new name.
    wrong = CliRunner().invoke(main, ["export", str(tmp_path), "--to", "canvass"])
    assert wrong.exit_code == 2 and "'--export'" in wrong.output and "'canvass' is not one of" in wrong.output


# ---- the schema ---------------------------------------------------------------------------------


def test_rubric_schema_prints_the_path_of_a_json_schema():
    result = CliRunner().invoke(main, ["rubric", "schema"])
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path.is_absolute() and path.name == "rubric.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert "$schema" in schema and schema.get("type") == "object" and "tasks" in schema.get("properties", {})


# ---- the docs use the names the commands have -----------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
# A `grade ...` command line in the docs: in a code span, a code block, a shell prompt or a CI step.
_COMMAND_LINE = re.compile(r"(?:^|[`$(]\s*|^\s*(?:-|run:)\s*)grade(?= )([^`#|\n]*)")
_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _option_names(command: click.Command) -> set[str]:
    names = {opt for p in command.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)}
    for sub in getattr(command, "commands", {}).values():
        names |= _option_names(sub)
    return names


def test_every_option_the_docs_give_grade_exists():
    known = _option_names(main) | {"--help", "--version"}
    checked, unknown = 0, []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for match in _COMMAND_LINE.finditer(line):
                for option in _OPTION.findall(match.group(1)):
                    checked += 1
                    if option not in known:  # the old names (--to, --template) are not options
                        unknown.append(f"{doc.name}:{number}: {option} in {line.strip()}")
    assert checked > 20  # the pattern still finds the docs' command lines
    assert not unknown, "\n".join(unknown)
