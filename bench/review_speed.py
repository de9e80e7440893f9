"""How fast `grade review` is on a class of 200: start-up, and opening the next answer.

    python bench/review_speed.py [--students 200]

Writes synthetic results (12 manual items each, as in the CIFAR-10 rubric) into a temporary
folder, then times building the app and fetching pages through Flask's test client, which runs
the whole request path (token, index, template, markdown) without the network.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from grader.model.results import CheckResult, GradeResult, Status, Student, TaskResult
from grader.store.result_store import ResultStore

ANSWER = ("CIFAR-10 is harder: **colour** images, a higher input dimension (32×32×3), much more variability "
          "within a class and similar classes (cat/dog, car/truck).\n\n- one\n- two\n\n`model.fit(...)`\n") * 3


def synthetic(key: str, items: int) -> GradeResult:
    tasks = []
    for n in range(items):
        manual = CheckResult("manual", "graded by hand", Status.MANUAL, 0.0, 1.0, "Graded by hand.",
                             details={"guidance": f"guidance of question {n}", "answer": f"{key}: {ANSWER}"})
        tasks.append(TaskResult(f"q{n:02d}", f"Question {n}", 0.0, 1.0, [manual], manual=True, answer=ANSWER))
    return GradeResult(student=Student(key=key, name=key), path=f"{key}.ipynb", max_score=float(items), tasks=tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--items", type=int, default=12)
    args = parser.parse_args()
    from grader.review.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        store = ResultStore(out)
        for i in range(args.students):
            store.save_result(synthetic(f"student{i:03d}", args.items))
        started = time.perf_counter()
        app = create_app(out, token="t")
        startup = time.perf_counter() - started
        client = app.test_client()
        client.get("/?token=t")
        timings = {"item list": [], "next answer": [], "save score": [], "student view": []}
        for _ in range(5):
            t = time.perf_counter(); client.get("/"); timings["item list"].append(time.perf_counter() - t)
        for i in range(50):
            key = f"student{i:03d}"
            t = time.perf_counter()
            page = client.get(f"/q/q03/manual?s={key}")
            timings["next answer"].append(time.perf_counter() - t)
            assert page.status_code == 200
            t = time.perf_counter()
            saved = client.post("/api/score", json={"token": "t", "question": "q03/manual", "student": key, "score": 1})
            timings["save score"].append(time.perf_counter() - t)
            assert saved.status_code == 200
        for i in range(10):
            t = time.perf_counter(); client.get(f"/s/student{i:03d}"); timings["student view"].append(time.perf_counter() - t)
        print(f"{args.students} results × {args.items} manual items")
        print(f"start-up (load + index): {startup * 1000:.0f} ms")
        for name, values in timings.items():
            values.sort()
            print(f"{name:>14}: median {statistics.median(values) * 1000:.1f} ms, "
                  f"max {values[-1] * 1000:.1f} ms ({len(values)} requests)")


if __name__ == "__main__":
    main()
