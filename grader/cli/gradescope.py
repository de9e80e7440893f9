"""``grade gradescope build --rubric R``: a Gradescope autograder zip."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.cli.root import EXIT_PASSED, _example, _guarded, main


@main.group("gradescope", epilog=_example("grade gradescope build --rubric cifar10 --support Custom.py --requirement scikit-learn"))
def gradescope_group() -> None:
    """Gradescope autograders that run nn-grader (docs/reports.md)."""


@gradescope_group.command("build", epilog=_example("grade gradescope build --rubric cifar10 --support Custom.py --requirement scikit-learn"))
@click.option("--rubric", "-r", required=True, help="Rubric file, or the name of a built-in rubric.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("autograder.zip"), show_default=True, help="The zip to write.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="An .npz dataset the notebooks get instead of the Keras download.")
@click.option("--hidden-test", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="An .npz with x_test, y_test to verify accuracy on.")
@click.option("--support", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A file copied next to the notebook (course helper module) (repeatable).")
@click.option("--notebook", default=None, help="The file name to grade when a submission holds several notebooks.")
@click.option("--mode", type=click.Choice(["fast", "full", "static"]), default="fast", show_default=True, help="fast: capped training as in grade check; full: train as the notebook says; static: saved outputs only.")
@click.option("--manual-items", type=click.Choice(["pending", "leave-out"]), default="pending", show_default=True, help="Unmarked manual items: 0-point tests with their maximum, or left out (marked as Gradescope questions).")
@click.option("--requirement", "requirements", multiple=True, help="An extra pip requirement setup.sh installs, e.g. scikit-learn (repeatable).")
@click.option("--wheel", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The nn-grader wheel to ship (default: built from this source tree).")
def gradescope_build(rubric: str, out: Path, data: Path | None, hidden_test: Path | None, support: tuple[Path, ...],
                     notebook: str | None, mode: str, manual_items: str, requirements: tuple[str, ...],
                     wheel: Path | None) -> None:
    """Write a Gradescope autograder zip: setup.sh, run_autograder, the rubric, data and nn-grader."""

    def work() -> int:
        from grader.report.gradescope import build_autograder

        built = build_autograder(rubric, out, data=data, hidden_test=hidden_test, support=list(support),
                                 notebook=notebook, mode=mode, wheel=wheel, requirements=requirements,
                                 manual_items=manual_items)
        click.echo(f"{built.path}: {len(built.members)} files, {built.wheel}, {built.max_points:g} points ({mode} mode)")
        click.echo("upload it under Configure Autograder (zip file upload)", err=True)
        return EXIT_PASSED

    sys.exit(_guarded(work))
