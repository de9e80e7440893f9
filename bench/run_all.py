"""Every benchmark of nn-grader in one run, with the ratios the project promises.

    python bench/run_all.py [--epochs 12] [--small 8] [--fast 4] [--memory 100] [--write docs/performance.md]

Each figure is a wall-clock time of a real command or API call, measured in this run:

1. one small notebook and one training notebook (~1 minute): ``grade`` versus bare nbclient
   (``bench/bare_nbclient.py``) and nbgrader's ``autograde`` (``bench/bench_nbgrader.py``);
2. a batch of small notebooks: bare nbclient one after another versus ``grade`` with 1 and with
   2 workers, and nbgrader;
3. fast mode, 1 worker versus 2 (``bench/bench_workers.py``), and a re-grade after a rubric
   change versus the first grade (same script);
4. a student's ``grade check`` of the bundled CIFAR-10 lab;
5. ``--static`` throughput (``bench/bench_static.py``);
6. peak memory of the grader's own process over a batch (``bench/bench_memory.py``).

The machine is shared: the load average is printed beside every figure; the run waits (up to
``--wait`` seconds) for the load to fall under ``--max-load`` before it starts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    PYTHON, ROOT, SMALL_RUBRIC, TRAIN_RUBRIC, bare_command, compile_grader, grade_command, load, small_notebook, timed,
    train_notebook, write_batch,
)

BENCH = ROOT / "bench"


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []  # what, measured, target, verdict, load
        self.notes: list[str] = []

    def add(self, what: str, measured: str, target: str = "", ok: bool | None = None, load_: str = "") -> None:
        verdict = "" if ok is None else ("met" if ok else "NOT met")
        self.rows.append((what, measured, target, verdict, load_))
        print(f"  {what:<58} {measured:>22}  {target:<12} {verdict:<8} {load_}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


def _load_pair(t) -> str:
    return f"{t.load_before:.1f}→{t.load_after:.1f}"


def _check(t, what: str) -> None:
    if t.returncode not in (0, 1):  # grade exits 1 when some check failed: that is a result
        raise SystemExit(f"{what} failed ({t.returncode}):\n{t.output[-3000:]}")


def _json_line(text: str) -> dict:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"no JSON in the output:\n{text[-2000:]}")


def nbgrader(source: Path, submissions: list[Path]) -> dict:
    t = timed([PYTHON, str(BENCH / "bench_nbgrader.py"), str(source), *map(str, submissions)], timeout=1800)
    data = _json_line(t.output)
    data["load"] = _load_pair(t)
    return data


def one_notebook(report: Report, work: Path, label: str, make, rubric_text: str, *, repeats: int,
                 with_nbgrader: bool) -> None:
    """One notebook, bare nbclient and ``grade`` in turn, ``repeats`` times each: the machine is
    shared, so the fastest run of each is compared (the one least disturbed by others)."""
    subs = work / f"{label}-subs"
    paths = write_batch(subs, make, 1)
    rubric = work / f"{label}-rubric.yaml"
    rubric.write_text(rubric_text)
    bares, grades = [], []
    for attempt in range(repeats):
        bare = timed(bare_command(paths))
        _check(bare, "bare nbclient")
        graded = timed(grade_command(paths, rubric, work / f"{label}-out{attempt}", "--workers", "1"))
        _check(graded, "grade")
        bares.append(bare)
        grades.append(graded)
    bare, graded = min(bares, key=lambda t: t.seconds), min(grades, key=lambda t: t.seconds)
    every = lambda runs: ", ".join(f"{t.seconds:.1f}" for t in runs)  # noqa: E731
    ratio = graded.seconds / bare.seconds
    report.add(f"{label}: bare nbclient, one notebook (best of {every(bares)})", f"{bare.seconds:.1f} s", load_=_load_pair(bare))
    report.add(f"{label}: grade, one notebook (best of {every(grades)})", f"{graded.seconds:.1f} s", load_=_load_pair(graded))
    target = 1.05 if label == "train" else None
    report.add(f"{label}: grade / bare nbclient", f"{ratio:.3f}×", f"≤ {target}×" if target else "",
               ratio <= target if target else None)
    if with_nbgrader:
        result = nbgrader(paths[0], paths)
        if "error" in result:
            report.note(f"nbgrader on the {label} notebook: {result['error']}")
        else:
            report.add(f"{label}: nbgrader autograde, one notebook", f"{result['seconds']:.1f} s", load_=result["load"])
            report.add(f"{label}: nbgrader / bare nbclient", f"{result['seconds'] / bare.seconds:.3f}×")
            report.add(f"{label}: grade / nbgrader", f"{graded.seconds / result['seconds']:.3f}×")


def small_batch(report: Report, work: Path, count: int) -> None:
    paths = write_batch(work / "batch-subs", small_notebook, count)
    rubric = work / "batch-rubric.yaml"
    rubric.write_text(SMALL_RUBRIC)
    bare = timed(bare_command(paths))
    _check(bare, "bare nbclient")
    one = timed(grade_command(work / "batch-subs", rubric, work / "batch-out1", "--workers", "1"))
    _check(one, "grade -j1")
    two = timed(grade_command(work / "batch-subs", rubric, work / "batch-out2", "--workers", "2"))
    _check(two, "grade -j2")
    report.add(f"batch of {count} small: bare nbclient, one after another", f"{bare.seconds:.1f} s", load_=_load_pair(bare))
    report.add(f"batch of {count} small: grade -j1", f"{one.seconds:.1f} s", load_=_load_pair(one))
    report.add(f"batch of {count} small: grade -j2", f"{two.seconds:.1f} s", load_=_load_pair(two))
    report.add("batch: bare nbclient / grade -j1 (speed-up)", f"{bare.seconds / one.seconds:.2f}×", "≥ 1.2×",
               bare.seconds / one.seconds >= 1.2)
    report.add("batch: bare nbclient / grade -j2 (speed-up)", f"{bare.seconds / two.seconds:.2f}×")
    result = nbgrader(paths[0], paths)
    if "error" in result:
        report.note(f"nbgrader on the small batch: {result['error']}")
    else:
        report.add(f"batch of {count} small: nbgrader autograde", f"{result['seconds']:.1f} s", load_=result["load"])
        report.add("batch: nbgrader / bare nbclient", f"{result['seconds'] / bare.seconds:.3f}×")
        report.add("batch: nbgrader / grade -j1 (speed-up)", f"{result['seconds'] / one.seconds:.2f}×")


def workers_and_regrade(report: Report, count: int) -> None:
    t = timed([PYTHON, str(BENCH / "bench_workers.py"), "--count", str(count)], timeout=1800)
    data = _json_line(t.output)
    lp = _load_pair(t)
    report.add(f"fast mode, {count} notebooks: grade_batch 1 worker", f"{data['one_worker']:.1f} s", load_=lp)
    report.add(f"fast mode, {count} notebooks: grade_batch 2 workers", f"{data['two_workers']:.1f} s", load_=lp)
    speedup = data["one_worker"] / data["two_workers"]
    report.add("fast mode: 2 workers vs 1 (throughput)", f"{speedup:.2f}×", "≥ 1.7×", speedup >= 1.7)
    cores = os.cpu_count() or 1
    for label, key, wall in (("1 worker", "cpu_one_worker", data["one_worker"]), ("2 workers", "cpu_two_workers", data["two_workers"])):
        report.add(f"  fast mode, {label}: CPU s of grader + kernels + verifier; cores busy",
                   f"{data[key]:.0f} s; {data[key] / wall:.2f} of {cores}")
    report.add(f"re-grade of {count} after a rubric change", f"{data['regrade']:.2f} s", load_=lp)
    ratio = data["one_worker"] / data["regrade"]
    report.add("first grade / re-grade", f"{ratio:.0f}×", "≥ 50×", ratio >= 50)
    if not data["nothing_re_executed"]:
        report.note("the re-grade wrote stored evidence again: something was re-executed")
    if not data["scores_changed"]:
        report.note("the rubric change did not change any score (the bench's rubric edit had no effect)")


def self_check(report: Report, work: Path) -> None:
    """A student's ``grade check`` of the bundled CIFAR-10 lab (four models, fast mode)."""
    lab = ROOT / "examples" / "cifar10-lab"
    notebook = lab / "submissions" / "alice_correct.ipynb"
    if not notebook.is_file():
        report.note(f"no {notebook.relative_to(ROOT)}: the self-check was not measured")
        return
    t = timed([PYTHON, "-m", "grader.cli", "check", str(notebook), "--rubric", str(lab / "rubric.yaml"),
               "--out", str(work / "check-out"), "--quiet"])
    _check(t, "grade check")
    report.add("grade check of the CIFAR-10 lab (fast mode, 4 models)", f"{t.seconds:.1f} s", "≤ 60 s",
               t.seconds <= 60, load_=_load_pair(t))


def static(report: Report) -> None:
    t = timed([PYTHON, str(BENCH / "bench_static.py"), "--count", "100"], timeout=900)
    _check(t, "bench_static")
    rates = re.findall(r"([\d.]+)\s*notebooks?/s", t.output)
    if rates:
        report.add("--static: notebooks per second (read + parse)", f"{float(rates[0]):.1f} /s", load_=_load_pair(t))
    else:
        report.note("bench_static printed no rate: " + t.output[-300:])


def memory(report: Report, count: int) -> None:
    t = timed([PYTHON, str(BENCH / "bench_memory.py"), "--count", str(count), "--workers", "2"], timeout=1800)
    data = _json_line(t.output)
    peak = data["peak"] / 2**20
    report.add(f"grader process peak RSS, {count} small submissions", f"{peak:.0f} MB", "< 500 MB", peak < 500,
               load_=_load_pair(t))
    quarters = ", ".join(f"{k}: {v / 2**20:.0f}" for k, v in data["rss_after"].items())
    report.add("  RSS after each quarter of the batch (MB)", quarters)
    keys = sorted(data["rss_after"], key=int)
    if len(keys) >= 2:
        growth = (data["rss_after"][keys[-1]] - data["rss_after"][keys[0]]) / 2**20
        report.add("  growth from the first to the last quarter", f"{growth:+.1f} MB", "flat", abs(growth) < 50)
    report.add("  TensorFlow / Keras imported in the grader process", f"{data['tensorflow_imported']} / {data['keras_imported']}",
               "False", not (data["tensorflow_imported"] or data["keras_imported"]))
    report.add(f"  {count} small submissions graded, 2 workers", f"{data['seconds']:.0f} s "
               f"({data['count'] / data['seconds']:.2f}/s)")


BEGIN, END = "<!-- bench/run_all.py: begin -->", "<!-- bench/run_all.py: end -->"


def write_markdown(report: Report, path: Path, header: dict) -> None:
    """Put the table between the two markers of ``path`` (made if missing); the text around
    them — the discussion of the figures — stays as written."""
    lines = [
        BEGIN,
        f"- date: {header['date']}",
        f"- machine: {header['machine']}",
        f"- load average at the start: {header['load']:.2f} (the run waits up to {header['wait']:.0f} s for < {header['max_load']})",
        f"- whole run: {header['seconds']:.0f} s",
        "",
        "| measurement | measured | target | verdict | load before→after |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in report.rows]
    if report.notes:
        lines += ["", "Notes from the run:", ""] + [f"- {n}" for n in report.notes]
    lines.append(END)
    table = "\n".join(lines)
    text = path.read_text() if path.exists() else "# Performance\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + table + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + table + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="epochs of the training notebook (45–60 s on 2 idle cores)")
    parser.add_argument("--small", type=int, default=8, help="small notebooks in the batch")
    parser.add_argument("--fast", type=int, default=4, help="notebooks in the fast-mode batch")
    parser.add_argument("--memory", type=int, default=100, help="submissions in the memory batch")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each single-notebook command (the best counts)")
    parser.add_argument("--max-load", type=float, default=1.5)
    parser.add_argument("--wait", type=float, default=300, help="seconds to wait for the load to fall")
    parser.add_argument("--skip", action="append", default=[], help="skip: one, train, batch, workers, check, static, memory")
    parser.add_argument("--write", type=Path, default=None, help="write the table as markdown (docs/performance.md)")
    parser.add_argument("--keep", action="store_true", help="keep the notebooks and outputs (their grading.log files)")
    args = parser.parse_args()
    compile_grader()  # every command is timed as an installed grader runs: from bytecode

    deadline = time.monotonic() + args.wait
    while load() > args.max_load and time.monotonic() < deadline:
        print(f"load {load():.2f} > {args.max_load}: waiting", flush=True)
        time.sleep(15)
    start_load = load()
    if start_load > args.max_load:
        print(f"warning: the load is still {start_load:.2f}; measuring anyway (figures are noisier)", flush=True)
    started = time.perf_counter()
    report = Report()
    work = Path(tempfile.mkdtemp(prefix="nn-grader-bench-"))
    print(f"nn-grader benchmarks · {os.cpu_count()} cores · load {start_load:.2f} · work in {work}", flush=True)
    if "one" not in args.skip:
        one_notebook(report, work, "small", small_notebook, SMALL_RUBRIC, repeats=args.repeats, with_nbgrader=True)
    if "train" not in args.skip:
        one_notebook(report, work, "train", lambda i: train_notebook(i, args.epochs), TRAIN_RUBRIC,
                     repeats=args.repeats, with_nbgrader=True)
    if "batch" not in args.skip:
        small_batch(report, work, args.small)
    if "workers" not in args.skip:
        workers_and_regrade(report, args.fast)
    if "check" not in args.skip:
        self_check(report, work)
    if "static" not in args.skip:
        static(report)
    if "memory" not in args.skip:
        memory(report, args.memory)
    seconds = time.perf_counter() - started
    print(f"all benchmarks: {seconds:.0f} s", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if args.write:
        cpu = platform.processor() or platform.machine()
        write_markdown(report, args.write, {
            "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "load": start_load, "max_load": args.max_load,
            "wait": args.wait,
            "seconds": seconds, "machine": f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
                                          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"})
        print(f"written: {args.write}")


if __name__ == "__main__":
    main()
