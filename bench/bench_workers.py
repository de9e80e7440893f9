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
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import FAST_RUBRIC, fast_notebook, write_batch  # noqa: E402


def _entries(out: Path) -> dict[str, int]:
    return {p.name: (p / "evidence.json").stat().st_ino for p in (out / ".store").iterdir()
            if p.is_dir() and len(p.name) == 64}


def _cpu() -> float:
    """CPU seconds the whole machine has spent busy (all processes: kernels run in sandboxes
    whose time is not reported to the grader)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4)
    args = parser.parse_args()

    from grader.batch import grade_batch
    from grader.grading import GradingOptions
    from grader.rubric import load_rubric
    from grader.submissions import collect

    folder = Path(tempfile.mkdtemp(prefix="nn-grader-bench-workers-"))
    write_batch(folder / "subs", fast_notebook, args.count)
    rubric_path = folder / "rubric.yaml"
    rubric_path.write_text(FAST_RUBRIC.replace("LIMIT", "100_000"))
    submissions = collect([folder / "subs"], work_dir=folder / "collected").submissions

    cpu: dict[str, float] = {}

    def grade(label: str, out: str, workers: int) -> tuple[float, list]:
        before = _cpu()
        started = time.perf_counter()
        results = grade_batch(submissions, load_rubric(rubric_path), folder / out, workers=workers,
                              options=GradingOptions(fast=True))
        cpu[label] = _cpu() - before
        return time.perf_counter() - started, results

    one, first = grade("one", "out1", 1)
    two, _ = grade("two", "out2", 2)
    stored = _entries(folder / "out1")
    rubric_path.write_text(FAST_RUBRIC.replace("LIMIT", "20_000"))  # a threshold changes, nothing else
    regrade, again = grade("regrade", "out1", 1)
    print(json.dumps({
        "count": args.count, "one_worker": one, "two_workers": two, "regrade": regrade,
        # CPU seconds the machine spent busy meanwhile: how busy the cores were, which bounds
        # what a second worker can add (other users' work counts too: see the load).
        "cpu_one_worker": cpu["one"], "cpu_two_workers": cpu["two"],
        "executed_ok": sum(1 for r in first if r.evidence is not None and r.evidence.runs),
        "nothing_re_executed": _entries(folder / "out1") == stored,
        "scores_changed": [r.score for r in first] != [r.score for r in again],
    }))


if __name__ == "__main__":
    main()
