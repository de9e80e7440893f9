"""``grade reference list | show | train``: the course's reference models (:mod:`grader.course.reference`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from grader.cli.root import _example, main
from grader.errors import GraderError
from grader.model.evidence import accuracy_of

if TYPE_CHECKING:
    from grader.course.reference import ProgressHook, TrainingProgress

# grader.course.reference.CACHE_ENV; that module (NumPy, the reference models) is imported by the
# commands that train, not by every `grade` command.
CACHE_ENV = "NN_GRADER_CACHE"


class CommandFailed(click.ClickException):
    """A :class:`GraderError` as Click shows it: the message, no traceback, the error's exit code."""

    def __init__(self, error: GraderError):
        super().__init__(str(error))
        self.exit_code = error.exit_code


def rich_progress() -> tuple[ProgressHook, Any]:
    """A progress hook drawing one bar per seed on stderr, and the ``rich`` Progress to enter."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from grader.course.reference import percent

    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[note]}"), console=Console(stderr=True), transient=False)
    tasks: dict[tuple[str, int], Any] = {}

    def hook(event: TrainingProgress) -> None:
        key = (event.model, event.seed)
        if key not in tasks:
            tasks[key] = bars.add_task(f"{event.model} seed {event.seed} ({event.run}/{event.runs})",
                                       total=event.epochs, note="")
        task = tasks[key]
        if event.phase == "epoch":
            acc = accuracy_of(event.logs)
            bars.update(task, completed=event.epoch, note="" if acc is None else f"train acc {100 * acc:.1f}%")
        elif event.phase in ("done", "cached"):
            note = f"test acc {percent(event.logs.get('test_accuracy', math.nan))}"
            bars.update(task, completed=event.epochs, note=note + (" (cached)" if event.phase == "cached" else ""))

    return hook, bars


def _data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--data", "data_source", default="auto", show_default=True,
                     help="auto (the Keras cache), synthetic, or an .npz file with x_train, y_train, x_test, y_test."),
        click.option("--train-size", type=click.IntRange(min=1), help="Train on a stratified subset of this size."),
        click.option("--test-size", type=click.IntRange(min=1), help="Evaluate on a stratified subset of this size."),
        click.option("--epochs", type=click.IntRange(min=1), help="Override the number of epochs."),
        click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                     help=f"Where results are cached (default ${CACHE_ENV} or ~/.cache/nn-grader)."),
        click.option("--no-cache", is_flag=True, help="Train again; neither read nor write cached results."),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Also write the report as JSON."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.group("reference", epilog=_example("grade reference show cifar10_cnn"))
def reference_group() -> None:
    """The course's reference models: list, show, train."""


@reference_group.command("list", epilog=_example("grade reference list"))
def list_command() -> None:
    """List every reference model with its documented parameter figures."""
    from grader.course.reference import format_reference_list, list_references

    click.echo(format_reference_list(list_references()))


@reference_group.command("show", epilog=_example("grade reference show cifar10_cnn"))
@click.argument("name")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), help="A local weights file to load.")
def show_command(name: str, weights: Path | None) -> None:
    """Print NAME's summary as Keras prints it, with the documented figures."""
    from grader.course.reference import show_reference

    try:
        click.echo(show_reference(name, weights=weights))
    except GraderError as exc:
        raise CommandFailed(exc) from None


@reference_group.command("train", epilog=_example("grade reference train mnist_fc --seeds 1 --epochs 1 --train-size 2000"))
@click.argument("name")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Train this many times, with seeds 0, 1, ...")
@click.option("--batch-size", type=click.IntRange(min=1), help="Override the batch size.")
@_data_options
def train_command(name: str, seeds: int, batch_size: int | None, data_source: str, train_size: int | None,
                  test_size: int | None, epochs: int | None, cache_dir: Path | None, no_cache: bool,
                  json_path: Path | None) -> None:
    """Train NAME once per seed and report its test accuracy, mean ± std."""
    from grader.course.reference import format_train_report, train_reference

    hook, bars = rich_progress()
    try:
        with bars:
            report = train_reference(name, seeds=range(seeds), epochs=epochs, batch_size=batch_size,
                                     data_source=data_source, train_size=train_size, test_size=test_size,
                                     cache_dir=cache_dir, use_cache=not no_cache, progress=hook)
    except GraderError as exc:
        raise CommandFailed(exc) from None
    click.echo(format_train_report(report))
    if json_path:
        json_path.write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
