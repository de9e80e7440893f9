"""``grade calibrate RUBRIC``: is the rubric's accuracy threshold reachable (:mod:`grader.course.calibrate`)?"""

from __future__ import annotations

import json
from pathlib import Path

import click

from grader.cli.reference import CommandFailed, rich_progress
from grader.cli.root import _example, main
from grader.errors import GraderError


@main.command("calibrate", epilog=_example("grade calibrate cifar10 --seeds 2 --epochs 2 --train-size 5000   (a quick look)",
                                            "grade calibrate my_rubric.yaml                                  (3 seeds, as the rubric trains)"))
@click.argument("rubric")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Train each reference this many times, with seeds 0, 1, ...")
@click.option("--data", "data_source", default=None,
              help="auto (the Keras cache), synthetic, or an .npz file (default: the rubric's data_source).")
@click.option("--epochs", type=click.IntRange(min=1), help="Train every reference this many epochs (a quick run).")
@click.option("--train-size", type=click.IntRange(min=1), help="Train on a stratified subset of this size.")
@click.option("--test-size", type=click.IntRange(min=1), help="Evaluate on a stratified subset of this size.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where results are cached (default $NN_GRADER_CACHE or ~/.cache/nn-grader).")
@click.option("--no-cache", is_flag=True, help="Train again; neither read nor write cached results.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the report as JSON.")
def calibrate_command(rubric: str, seeds: int, data_source: str | None, epochs: int | None, train_size: int | None,
                      test_size: int | None, cache_dir: Path | None, no_cache: bool, json_path: Path | None) -> None:
    """Retrain RUBRIC's reference solutions and show the margin to each accuracy threshold."""
    from grader.course.calibrate import calibrate, format_calibration

    hook, bars = rich_progress()
    try:
        with bars:
            report = calibrate(rubric, seeds=range(seeds), epochs=epochs, data_source=data_source,
                               train_size=train_size, test_size=test_size, cache_dir=cache_dir,
                               use_cache=not no_cache, progress=hook)
    except GraderError as exc:
        raise CommandFailed(exc) from None
    click.echo(format_calibration(report))
    if json_path:
        json_path.write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
