"""Throughput with 1 and 2 workers in fast mode, and the cost of a re-grade after a rubric change.

    python bench/bench_workers.py [--count 4]

Grades ``count`` CIFAR-10 lab notebooks in fast mode with the Python API (``grade_batch``): once
with one worker, once with two (into another folder), then changes a threshold in the rubric and
grades the first folder again — everything is checked again, nothing is executed (the stored
evidence is reused; the script verifies that no stored entry was written again). Prints one
JSON line of seconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import os
import sys
import threading
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import FAST_RUBRIC, fast_notebook, write_batch  # noqa: E402


def _entries(out: Path) -> dict[str, int]:
    return {p.name: (p / "evidence.json").stat().st_ino for p in (out / ".store").iterdir()
            if p.is_dir() and len(p.name) == 64}


class TreeCpu:
    """CPU seconds used by this process and everything below it (kernels in their sandboxes,
    the verifier), sampled from /proc five times a second; other users' work is not counted.
    A process that ends between two samples loses at most its last 0.2 s."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, int], float] = {}  # (pid, start time) -> CPU seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TreeCpu":
        self._sample()
        self.base = sum(self.seen.values())
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values()) - self.base

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def _sample(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        stats: dict[int, list[str]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
        children: dict[int, list[int]] = {}
        for pid, fields in stats.items():
            children.setdefault(int(fields[1]), []).append(pid)
        todo = [os.getpid()]
        while todo:
            pid = todo.pop()
            fields = stats.get(pid)
            if fields is not None:  # utime, stime are fields 14, 15 of stat (11, 12 after the name)
                self.seen[(pid, int(fields[19]))] = (int(fields[11]) + int(fields[12])) / tick
            todo += children.get(pid, [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4)
    args = parser.parse_args()

    from grader.batch.local import grade_batch
    from grader.config import GradingOptions
    from grader.rubric.load import load_rubric
    from grader.collect import collect

    folder = Path(tempfile.mkdtemp(prefix="nn-grader-bench-workers-"))
    write_batch(folder / "subs", fast_notebook, args.count)
    rubric_path = folder / "rubric.yaml"
    rubric_path.write_text(FAST_RUBRIC.replace("LIMIT", "100_000"))
    submissions = collect([folder / "subs"], work_dir=folder / "collected").submissions

    cpu: dict[str, float] = {}

    def grade(label: str, out: str, workers: int) -> tuple[float, list]:
        with TreeCpu() as used:
            started = time.perf_counter()
            results = grade_batch(submissions, load_rubric(rubric_path), folder / out, workers=workers,
                                  options=GradingOptions(fast=True))
            seconds = time.perf_counter() - started
        cpu[label] = used.seconds
        return seconds, results

    one, first = grade("one", "out1", 1)
    two, _ = grade("two", "out2", 2)
    stored = _entries(folder / "out1")
    rubric_path.write_text(FAST_RUBRIC.replace("LIMIT", "20_000"))  # a threshold changes, nothing else
    regrade, again = grade("regrade", "out1", 1)
    print(json.dumps({
        "count": args.count, "one_worker": one, "two_workers": two, "regrade": regrade,
        # CPU seconds of the grading's own processes: how busy it kept the cores, which bounds
        # what a second worker can add.
        "cpu_one_worker": cpu["one"], "cpu_two_workers": cpu["two"],
        "executed_ok": sum(1 for r in first if r.evidence is not None and r.evidence.runs),
        "nothing_re_executed": _entries(folder / "out1") == stored,
        "scores_changed": [r.score for r in first] != [r.score for r in again],
    }))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
