"""How fast is ``grade run SUBMISSIONS --rubric cifar10 --static``, end to end?

Writes a class of TBMI26 CIFAR-10 lab notebooks (the course's 2022-23 and 2024 templates, filled
in by ``tests/tbmi26.py``) with the outputs a student's run saves: the summary Keras printed for
each of the five models (built here with Keras, once, before the clock starts), a training log
the printed test scores, a ~50 KB PNG per plot, and written answers. Half of the class saved every
progress-bar redraw (``--redraws`` per epoch, as nbclient keeps them), the other half only each
epoch's final line (as JupyterLab saves them). Then times the ``grade`` command on the
folder, in a fresh process as an instructor runs it, and prints notebooks per second and the
ratio to the 50/s target, and the CPU time it took (what a busy machine does not change).

    python bench/bench_static_batch.py [--count 100] [--epochs 15] [--steps 1250] [--redraws 60]
                                       [--repeat 1]
                                       [--profile out.prof] [--keep DIR]

``--profile`` runs the command under cProfile (slower) and prints the top functions;
``--keep`` writes the notebooks and the output folder there instead of a temporary folder.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_output

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_static import progress_log  # noqa: E402
from common import compile_grader  # noqa: E402
from tests.tbmi26 import REFERENCE, SOLUTION, filled  # noqa: E402

TARGET_PER_S = 50.0
ANSWER = ("The model has {params} parameters. It overfits after about ten epochs: the training "
          "accuracy keeps rising while the validation accuracy stays flat.")


def keras_summaries() -> dict[str, tuple[str, int]]:
    """Each lab block's summary as Keras prints it (``model.summary(100)``), with its size."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import reference_models

    summaries = {}
    for block, name in REFERENCE.items():
        model = reference_models.get(name).build()
        lines: list[str] = []
        model.summary(line_length=100, print_fn=lambda text, line_break=True: lines.append(text))
        summaries[block] = ("\n".join(lines) + "\n", model.count_params())
    return summaries


def _plot(png: str) -> nbformat.NotebookNode:
    return new_output("display_data", data={"image/png": png, "text/plain": "<Figure size 1600x600 with 3 Axes>"})


def lab_notebook(rng: random.Random, number: int, summaries: dict[str, tuple[str, int]], epochs: int,
                 steps: int, redraws: int) -> nbformat.NotebookNode:
    """One student's lab as handed in, with the outputs of its run."""
    version = ("2023", "2024")[number % 2]
    # Each student's own code (as in a real class; identical code is flagged and stored twice).
    code = {block: source.replace("Dense(10, activation='softmax')",
                                  f"Dense(10, activation='softmax', name='out_{number}')")
            for block, source in SOLUTION.items()}
    lab = filled(version, code)
    cells = lab.notebook.cells
    png = base64.b64encode(rng.randbytes(37_500)).decode()  # ~50 KB of base64, as a plot is

    def log(block: str) -> str:
        run_epochs = 25 if block == "target" and version == "2024" else epochs
        keep = number % 4 < 2  # the two halves alternate between the template versions
        return progress_log(rng, run_epochs, redraws, True, keep, steps)

    def scores() -> str:
        return f"Test loss = {rng.random() + 0.6:.3f}\nTest accuracy = {rng.random() * 0.35 + 0.45:.3f}\n"

    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        if "print(\"Shape of training data:\")" in cell.source:
            cell.outputs = [new_output("stream", name="stdout", text="Shape of training data:\n(50000, 32, 32, 3)\n"
                                       "(50000, 1)\nShape of test data:\n(10000, 32, 32, 3)\n(10000, 1)\n")]
        elif "PlotRandomFromEachClass(X_train" in cell.source:
            cell.outputs = [_plot(png)]
    for index, block in lab.fits:
        summary, params = summaries[block]
        if version == "2024":  # one cell builds, trains, scores and plots
            cells[index].outputs = [new_output("stream", name="stdout", text=summary),
                                    new_output("stream", name="stdout", text=log(block)),
                                    new_output("stream", name="stdout", text=scores() + "\n"), _plot(png)]
        else:
            build = next(i for i in range(index - 1, -1, -1) if "model.summary" in cells[i].source)
            cells[build].outputs = [new_output("stream", name="stdout", text=summary)]
            cells[index].outputs = [new_output("stream", name="stdout", text=log(block))]
            for after in range(index + 1, min(index + 4, len(cells))):
                source = cells[after].source
                if cells[after].cell_type == "code" and ".evaluate(" in source:
                    cells[after].outputs = [new_output("stream", name="stdout", text=scores())]
                elif cells[after].cell_type == "code" and "PlotModelEval(" in source:
                    cells[after].outputs = [new_output("stream", name="stdout", text="313/313 - 1s - 3ms/step\n"),
                                            _plot(png)]
    for question in range(1, 11):
        try:
            lab.answer(question, ANSWER.format(params=rng.randint(50_000, 2_000_000)))
        except (KeyError, IndexError):
            pass
    execution = 1
    for cell in cells:
        if cell.cell_type == "code":
            cell.execution_count = execution
            execution += 1
    return lab.notebook


def write_class(folder: Path, count: int, epochs: int, steps: int, redraws: int, seed: int) -> list[Path]:
    summaries = keras_summaries()
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        path = folder / f"student{number:03d}.ipynb"
        nbformat.write(lab_notebook(rng, number, summaries, epochs, steps, redraws), str(path))
        paths.append(path)
    return paths


def grade_command(submissions: Path, out: Path, profile: Path | None) -> list[str]:
    command = [sys.executable]
    if profile is not None:
        command += ["-m", "cProfile", "-o", str(profile)]
    return command + ["-m", "grader.cli", "run", str(submissions), "--rubric", "cifar10", "--static",
                      "--out", str(out), "--quiet"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100, help="notebooks in the class")
    parser.add_argument("--epochs", type=int, default=15, help="epochs per training log (the lab's)")
    parser.add_argument("--steps", type=int, default=1250, help="steps per epoch (40,000 images, batch 32)")
    parser.add_argument("--redraws", type=int, default=60,
                        help="progress-bar redraws kept per epoch in the half that keeps them")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="time the command this many times (best counts)")
    parser.add_argument("--profile", type=Path, default=None, help="run under cProfile, write the stats here")
    parser.add_argument("--keep", type=Path, default=None, help="folder for the notebooks and outputs (kept)")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-static-batch-"))
    try:
        submissions, out = folder / "submissions", folder / "out"
        if not sorted(submissions.glob("*.ipynb")):
            write_class(submissions, args.count, args.epochs, args.steps, args.redraws, args.seed)
        paths = sorted(submissions.glob("*.ipynb"))
        size = sum(path.stat().st_size for path in paths)
        print(f"{len(paths)} TBMI26 lab notebooks, {size / 1e6:.1f} MB on disk")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        compile_grader()  # timed as an installed grader runs: from bytecode
        times, cpus = [], []
        for _ in range(max(1, args.repeat)):
            shutil.rmtree(out, ignore_errors=True)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(grade_command(submissions, out, args.profile), env=env, cwd=folder,
                                  capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode not in (0, 1):
                sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
                raise SystemExit(f"grade run --static exited with {done.returncode}")
        graded = len(list(out.glob("*/result.json"))) or len(list(out.rglob("result.json")))
        if graded != len(paths):
            raise SystemExit(f"grade run --static stored {graded} results for {len(paths)} notebooks")
        best = min(times)
        rate = len(paths) / best
        print(f"grade run --static:  {best:6.2f} s for {len(paths)} notebooks"
              + (f" (best of {len(times)}: {', '.join(f'{t:.2f}' for t in times)})" if len(times) > 1 else ""))
        print(f"end to end:          {rate:6.1f} notebooks/s, {rate / TARGET_PER_S:.2f} x the {TARGET_PER_S:.0f}/s "
              f"target ({'meets' if rate >= TARGET_PER_S else 'misses'} it)")
        cpu = cpus[times.index(best)]
        load = os.getloadavg()[0]
        print(f"CPU time:            {cpu:6.2f} s in all processes ({cpu / len(paths) * 1e3:.0f} ms a notebook); "
              f"{os.cpu_count()} cores, load average {load:.1f} at the end"
              + (" (other work on this machine slows the clock)" if load > (os.cpu_count() or 1) else ""))
        if args.profile is not None:
            import pstats

            pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(40)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
