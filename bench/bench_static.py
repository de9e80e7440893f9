"""How fast is ``grade --static``? Reads 100 notebooks with outputs, executes nothing.

Generates a class of notebooks in a temporary folder, each with three models the way students
hand them in: a summary table (Keras 1, tf.keras 2 or Keras 3, taken from the test fixtures),
a 25-epoch training log and printed test scores. Half of them keep every progress-bar redraw
(``\\b`` and ``\\r``, as nbclient saves them), the other half only the final lines (as JupyterLab
saves them). Then times :func:`grader.static.outputs.static_evidence` over all of them.

    python bench/bench_static.py [--count 100] [--epochs 25] [--redraws 60] [--real] [--jobs 2]

Prints notebooks per second for parsing alone, for the grader's loader plus parsing (static
mode's structural check, and the full schema check executed mode uses), and with ``--jobs`` the
same spread over that many processes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.static.outputs import output_text, static_evidence  # noqa: E402

FIXTURES = ROOT / "tests" / "data" / "summaries"


def keras3_tables() -> list[list[str]]:
    """Keras 3 summaries as a real kernel saved them: one display output per piece."""
    nb = nbformat.read(str(FIXTURES / "keras3_jupyter.ipynb"), as_version=4)
    tables = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "summary()" in cell.source and "fit(" not in cell.source:
            texts = [output.data["text/plain"] for output in cell.outputs
                     if output.output_type == "display_data"]
            if texts:
                tables.append(texts)
    return tables


def progress_log(rng: random.Random, epochs: int, redraws: int, keras3: bool,
                 keep_redraws: bool, steps: int = 782) -> str:
    out = []
    acc = 0.3
    for epoch in range(1, epochs + 1):
        out.append(f"Epoch {epoch}/{epochs}\n")
        width = 0
        shown = redraws if keep_redraws else 1
        for update in range(1, shown + 1):
            step = steps if update == shown else steps * update // shown
            acc = min(0.99, acc + rng.random() * 0.002)
            if keras3:
                bar = "\x1b[32m" + "━" * (20 * step // steps) + "\x1b[0m"
                text = (f"\x1b[1m{step}/{steps}\x1b[0m {bar} \x1b[1m12s\x1b[0m 15ms/step - "
                        f"accuracy: {acc:.4f} - loss: {2 - acc:.4f}")
            else:
                bar = "=" * (30 * step // steps)
                text = (f"{step}/{steps} [{bar:.<30}] - ETA: 3s - loss: {2 - acc:.4f} - "
                        f"acc: {acc:.4f}")
            if step == steps:
                text = text.replace(" - ETA: 3s", " - 20s 25ms/step")
                val = "val_accuracy" if keras3 else "val_acc"
                text += f" - val_loss: {2.1 - acc:.4f} - {val}: {acc - 0.02:.4f}"
            out.append("\b" * width + "\r" + text if keep_redraws else text)
            width = len(text)
        out.append("\n")
    return "".join(out)


def make_notebook(rng: random.Random, plain_tables: list[str], box_tables: list[list[str]],
                  epochs: int, redraws: int, keep_redraws: bool) -> nbformat.NotebookNode:
    cells = [new_markdown_cell("# Assignment 2: CNNs on CIFAR-10"),
             new_code_cell("import numpy as np\nfrom keras import layers")]
    for question in range(1, 4):
        keras3 = rng.random() < 0.5
        cells.append(new_markdown_cell(f"## Question {question}\nTrain a model that reaches "
                                       f"{50 + 10 * question}% test accuracy."))
        summary = new_code_cell(f"model = build_{question}()\nmodel.summary()")
        if keras3:
            summary.outputs = [new_output("display_data", data={"text/plain": text})
                               for text in rng.choice(box_tables)]
        else:
            summary.outputs = [new_output("stream", name="stdout", text=rng.choice(plain_tables))]
        fit = new_code_cell(f"history = model.fit(x_train, y_train, epochs={epochs}, "
                            "batch_size=64, validation_split=0.2)")
        fit.outputs = [new_output("stream", name="stdout",
                                  text=progress_log(rng, epochs, redraws, keras3, keep_redraws))]
        score = new_code_cell("score = model.evaluate(x_test, y_test, verbose=0)\n"
                              "print('Test loss:', score[0])\nprint('Test accuracy:', score[1])")
        score.outputs = [new_output("stream", name="stdout",
                                    text=f"Test loss: {rng.random() + 0.5}\n"
                                         f"Test accuracy: {rng.random() * 0.3 + 0.55}\n")]
        cells += [summary, fit, score, new_markdown_cell("The model overfits after epoch 12.")]
    return new_notebook(cells=cells)


TEMPLATE = Path("/work/shared/courses/tbmi26/CIFAR10-Lab-template-2023.ipynb")
TARGET_PER_S = 50.0


def real_notebook(rng: random.Random, box_tables: list[list[str]], epochs: int,
                  steps: int) -> nbformat.NotebookNode:
    """The TBMI26 CIFAR-10 template as a student hands it in: every course cell kept, three
    models each with a Keras 3 summary (several display outputs, ANSI codes), a fit log that
    kept every progress-bar redraw (one per 5 of ``steps``, as Keras 3 throttles them) and a ~50 KB PNG learning curve."""
    import base64

    template = nbformat.read(str(TEMPLATE), as_version=4) if TEMPLATE.exists() else new_notebook()
    cells = list(template.cells)
    png = base64.b64encode(rng.randbytes(37_500)).decode()  # ~50 KB of base64, as a plot is
    for question in range(1, 4):
        summary = new_code_cell(f"model = build_{question}()\nmodel.summary()")
        summary.outputs = [new_output("display_data", data={"text/plain": text})
                           for text in rng.choice(box_tables)]
        fit = new_code_cell(f"history = model.fit(X_train, Y_train, epochs={epochs}, "
                            "batch_size=32, validation_data=(X_val, Y_val))")
        fit.outputs = [new_output("stream", name="stdout",
                                  text=progress_log(rng, epochs, steps // 5, True, True, steps))]
        plot = new_code_cell("PlotModelEval(model, history, X_test, Y_test, labels)")
        plot.outputs = [new_output("display_data", data={"image/png": png,
                                                         "text/plain": "<Figure size 640x480>"}),
                        new_output("stream", name="stdout",
                                   text=f"Test accuracy: {rng.random() * 0.3 + 0.45:.4f}\n")]
        cells += [summary, fit, plot]
    return new_notebook(cells=cells, metadata=template.metadata)


def _load_and_parse(path: Path) -> tuple[int, int]:
    """One notebook as `grade --static` reads it (in a worker process for ``--jobs``)."""
    from grader.notebook.load import load_notebook

    evidence = static_evidence(load_notebook(path, full_schema=False), path.name)
    return len(evidence.runs), len(evidence.evaluations)


def _pool_rate(paths: list[Path], jobs: int) -> float:
    """Notebooks per second for load + parse spread over ``jobs`` processes (started and warmed
    before the clock starts: a batch pays that once)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_load_and_parse, paths[:jobs]))
        started = time.perf_counter()
        found = list(pool.map(_load_and_parse, paths, chunksize=4))
        elapsed = time.perf_counter() - started
    if sum(runs for runs, _ in found) != 3 * len(paths):
        raise SystemExit("static mode missed training runs in a worker")
    return len(paths) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100, help="notebooks to generate")
    parser.add_argument("--epochs", type=int, default=25, help="epochs per training log")
    parser.add_argument("--redraws", type=int, default=60,
                        help="progress-bar redraws kept per epoch in the raw half")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=0,
                        help="also time load + parse over this many processes (the cores)")
    parser.add_argument("--real", action="store_true",
                        help="real-sized lab notebooks: the TBMI26 template, 15 epochs x 1250 "
                             "steps with every redraw, 50 KB images (compared with 50/s)")
    args = parser.parse_args()
    if args.real and args.epochs == 25:
        args.epochs = 15

    rng = random.Random(args.seed)
    plain = [path.read_text() for path in sorted(FIXTURES.glob("seed*.txt"))
             if not path.name.endswith(".seed.txt")]
    boxes = keras3_tables()
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for number in range(args.count):
            if args.real:
                nb = real_notebook(rng, boxes, args.epochs, 1250)
            else:
                nb = make_notebook(rng, plain, boxes, args.epochs, args.redraws,
                                   keep_redraws=number % 2 == 0)
            path = Path(folder) / f"student_{number:03d}.ipynb"
            nbformat.write(nb, str(path))
            paths.append(path)
        size = sum(path.stat().st_size for path in paths)

        started = time.perf_counter()
        notebooks = [nbformat.read(str(path), as_version=4) for path in paths]
        read_s = time.perf_counter() - started
        # What the grader does per file: size cap, JSON, then the schema (executed mode) or
        # the structural check (static mode). A first call compiles the schema: not timed.
        from grader.notebook.load import load_notebook

        load_notebook(paths[0])

        started = time.perf_counter()
        for path in paths:
            load_notebook(path)
        full_load_s = time.perf_counter() - started
        # `grade --static` itself: the structural check instead of the whole schema.
        started = time.perf_counter()
        for path in paths:
            load_notebook(path, full_schema=False)
        load_s = time.perf_counter() - started

        per_notebook = []
        runs = evaluations = 0
        started = time.perf_counter()
        for path, nb in zip(paths, notebooks):
            one = time.perf_counter()
            evidence = static_evidence(nb, path.name)
            per_notebook.append(time.perf_counter() - one)
            runs += len(evidence.runs)
            evaluations += len(evidence.evaluations)
        parse_s = time.perf_counter() - started
        chars = sum(len(output_text(cell)) for nb in notebooks for cell in nb.cells
                    if cell.cell_type == "code")
        pool_rate = _pool_rate(paths, args.jobs) if args.jobs > 1 else None

    expected = 3 * args.count
    print(f"{args.count} notebooks, {size / 1e6:.1f} MB on disk, {chars / 1e6:.1f} M characters "
          f"of outputs, {args.epochs} epochs x 3 logs each")
    print(f"found {runs} training runs and {evaluations} evaluations (expected {expected} each)")
    print(f"read (nbformat):     {read_s:6.2f} s")
    median_ms = statistics.median(per_notebook) * 1e3
    print(f"static_evidence:     {parse_s:6.2f} s   median {median_ms:.1f} ms, "
          f"max {max(per_notebook) * 1e3:.1f} ms per notebook")
    print(f"load_notebook:       {load_s:6.2f} s   (static mode: JSON + structural check)")
    print(f"  with full schema:  {full_load_s:6.2f} s   (executed mode)")
    print(f"read + parse:        {args.count / (read_s + parse_s):6.1f} notebooks/s")
    print(f"load_notebook+parse: {args.count / (load_s + parse_s):6.1f} notebooks/s")
    print(f"  with full schema:  {args.count / (full_load_s + parse_s):6.1f} notebooks/s")
    print(f"parse only:          {args.count / parse_s:6.1f} notebooks/s")
    try:
        import orjson  # noqa: F401

        print("JSON reader:         orjson")
    except ImportError:
        print("JSON reader:         json (stdlib; install orjson for a faster load)")
    rates = [("parse only", args.count / parse_s),
             ("load_notebook + parse", args.count / (load_s + parse_s))]
    if pool_rate is not None:
        print(f"load+parse, {args.jobs} procs: {pool_rate:6.1f} notebooks/s")
        rates.append((f"load_notebook + parse on {args.jobs} processes", pool_rate))
    if args.real:
        for label, rate in rates:
            verdict = "meets" if rate >= TARGET_PER_S else "misses"
            print(f"target {TARGET_PER_S:.0f}/s, {label}: {rate:.1f}/s, {verdict} it")
    if runs != expected or evaluations != expected:
        raise SystemExit("static mode missed training runs or evaluations")


if __name__ == "__main__":
    main()
