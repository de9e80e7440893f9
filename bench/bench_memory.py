"""Peak memory of the grader's own process over a batch: is it small, and flat in the batch size?

    python bench/bench_memory.py [--count 100] [--workers 2]

Grades ``count`` small notebooks with the Python API (``grade_batch``, then the HTML reports, as
``grade`` does) and samples this process's resident memory (``VmRSS``) ten times a second. Kernels
and the verifier are separate processes and are not counted. Prints one JSON line: the peak
(``VmHWM``), the memory after each quarter of the batch, and whether TensorFlow or Keras was ever
imported here (it must not be).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import SMALL_RUBRIC, small_notebook, write_batch  # noqa: E402


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from grader.batch.local import grade_batch
    from grader.config import GradingOptions
    from grader.report.write import write_reports
    from grader.rubric.load import load_rubric
    from grader.collect import collect

    folder = Path(tempfile.mkdtemp(prefix="nn-grader-bench-memory-"))
    write_batch(folder / "subs", small_notebook, args.count)
    (folder / "rubric.yaml").write_text(SMALL_RUBRIC)
    rubric = load_rubric(folder / "rubric.yaml")
    submissions = collect([folder / "subs"], work_dir=folder / "collected").submissions

    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(_status("VmRSS"))
            time.sleep(0.1)

    at: dict[int, int] = {}
    done = 0

    def on_result(submission, result) -> None:
        nonlocal done
        done += 1
        if done % max(1, args.count // 4) == 0:
            at[done] = _status("VmRSS")

    start_rss = _status("VmRSS")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    results = grade_batch(submissions, rubric, folder / "out", options=GradingOptions(), workers=args.workers,
                          on_result=on_result)
    graded = time.perf_counter() - started
    write_reports(results, folder / "out")
    stop.set()
    sampler.join()
    print(json.dumps({
        "count": len(results), "workers": args.workers, "seconds": round(graded, 1),
        "rss_at_start": start_rss, "rss_after": at, "rss_end": _status("VmRSS"), "peak": _status("VmHWM"),
        "sampled_peak": max(samples or [0]),
        "tensorflow_imported": "tensorflow" in sys.modules, "keras_imported": "keras" in sys.modules,
        "graded_ok": sum(1 for r in results if not r.problems_blocking),
    }))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
