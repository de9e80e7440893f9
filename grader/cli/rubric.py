"""``grade rubric validate | init | explain | schema``: work with rubric files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.cli.grading import _load_rubric
from grader.cli.root import EXIT_PASSED, EXIT_USAGE, _example, _guarded, main
from grader.errors import GraderError


@main.group("rubric", epilog=_example("grade rubric validate my_rubric.yaml --against TEMPLATE.ipynb"))
def rubric_group() -> None:
    """Work with rubric files."""


@rubric_group.command("validate", epilog=_example("grade rubric validate cifar10-lab.yaml --against CIFAR10-Lab-template.ipynb"))
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--against", "template", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A course template (.ipynb): also warn about selectors and questions that match nothing in it.")
def rubric_validate(files: tuple[Path, ...], template: Path | None) -> None:
    """Check rubric FILES: unknown keys, wrong types, unknown checks, with line numbers."""
    from grader.rubric.load import load_rubric, validate_rubric_file

    def work() -> int:
        failed = False
        for path in files:
            problems = validate_rubric_file(path)
            if problems:
                failed = True
                for problem in problems:
                    click.echo(problem, err=True)
                continue
            warnings = []
            if template is not None:
                from grader.rubric.authoring import template_warnings

                warnings = template_warnings(rubric=load_rubric(path), template=template)
                for warning in warnings:
                    click.echo(warning, err=True)
            against = f" against {template.name}" if template is not None else ""
            click.echo(f"{path}: valid{against}" + (f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""))
        return EXIT_USAGE if failed else EXIT_PASSED

    sys.exit(_guarded(work))


@rubric_group.command("init", epilog=_example("grade rubric init CIFAR10-Lab-template.ipynb -o cifar10-lab.yaml"))
@click.argument("template", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the draft to this file (default: print it).")
@click.option("--force", is_flag=True, help="Overwrite the --out file if it exists.")
def rubric_init(template: Path, out: Path | None, force: bool) -> None:
    """Draft a rubric from a course TEMPLATE notebook: one task per question cell."""
    from grader.rubric.authoring import draft_rubric

    def work() -> int:
        if out is not None and out.exists() and not force:
            raise GraderError(f"{out} exists; choose another --out or add --force to overwrite it")
        draft = draft_rubric(template=template, out=out)
        if out is None:
            click.echo(draft.text, nl=False)
        else:
            out.write_text(draft.text, encoding="utf-8")
        models = len(draft.model_tasks)
        click.echo(f"drafted {len(draft.questions)} tasks from {template.name} ({models} model, "
                   f"{len(draft.questions) - models} free-text)" + (f" into {out}" if out else ""), err=True)
        for problem in draft.problems:
            click.echo(problem, err=True)
        if draft.problems:
            return EXIT_USAGE
        target = out or "RUBRIC"
        click.echo(f"next: grade rubric explain {target} FILLED.ipynb   (what each task picks)", err=True)
        return EXIT_PASSED

    sys.exit(_guarded(work))


@rubric_group.command("explain", epilog=_example("grade rubric explain cifar10-lab.yaml student.ipynb"))
@click.argument("rubric")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rubric_explain(rubric: str, notebook: Path) -> None:
    """Show which model and answer each task of RUBRIC picks in NOTEBOOK, and why.

    Reads the notebook's saved outputs; nothing is run.
    """
    from rich.console import Console

    from grader.rubric.explain import explain_rubric, explanation_table

    def work() -> int:
        loaded = _load_rubric(rubric)
        explained = explain_rubric(rubric=loaded, notebook=notebook)
        Console().print(explanation_table(explained, title=f"{loaded.name} in {notebook.name}"))
        return EXIT_PASSED

    sys.exit(_guarded(work))


@rubric_group.command("schema", epilog=_example(
    "grade rubric schema",
    "# yaml-language-server: $schema=file:///PATH/IT/PRINTS   (first line of a rubric: completion in the editor)"))
def rubric_schema() -> None:
    """Print the path of the rubric JSON Schema that ships with the grader.

    Editors with a YAML language server (VS Code, Neovim, ...) complete and check a rubric against
    it; `grade rubric validate` checks more (check parameters, line numbers).
    """
    from grader.rubric.schema import SCHEMA_PATH

    def work() -> int:
        if not SCHEMA_PATH.is_file():
            raise GraderError(f"the rubric schema is missing from this installation ({SCHEMA_PATH}); "
                              "reinstall nn-grader (pip install --force-reinstall nn-grader)")
        click.echo(str(SCHEMA_PATH))
        return EXIT_PASSED

    sys.exit(_guarded(work))
