"""nbgrader's ``autograde`` on the same notebooks, for a side-by-side figure.

    python bench/bench_nbgrader.py SOURCE.ipynb SUBMISSION.ipynb ...

nbgrader lives in its own environment (``$NN_GRADER_BENCH_VENV``, default ``/work/bench-venv``;
``pip install nbgrader`` there, never into the project's). Its kernels run the same Python as
the grader's (a ``python3`` kernel spec on ``JUPYTER_PATH`` that points at this interpreter), so
both execute the notebooks with the same libraries.

Sets up a course folder (``source/``, ``submitted/<student>/``), runs ``generate_assignment``
once (not timed: a course does it once), then times ``nbgrader autograde`` over all
submissions. Prints one JSON line; ``{"error": ...}`` when nbgrader is not installed or fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_VENV, PYTHON  # noqa: E402

CONFIG = """\
c = get_config()
c.CourseDirectory.course_id = "bench"
c.Execute.timeout = 900
"""


def main(source: Path, submissions: list[Path]) -> dict:
    nbgrader = BENCH_VENV / "bin" / "nbgrader"
    if not nbgrader.exists():
        return {"error": f"nbgrader is not installed in {BENCH_VENV} (python -m venv {BENCH_VENV} && "
                         f"{BENCH_VENV}/bin/pip install nbgrader)"}
    course = Path(tempfile.mkdtemp(prefix="nn-grader-bench-nbgrader-"))
    try:
        kernel = course / "jupyter" / "kernels" / "python3"
        kernel.mkdir(parents=True)
        (kernel / "kernel.json").write_text(json.dumps({
            "argv": [PYTHON, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python"}))
        env = dict(os.environ, JUPYTER_PATH=str(course / "jupyter"), JUPYTER_DATA_DIR=str(course / "jupyter"))
        (course / "nbgrader_config.py").write_text(CONFIG)
        (course / "source" / "lab").mkdir(parents=True)
        shutil.copy(source, course / "source" / "lab" / "lab.ipynb")
        for attempt in range(2):  # its first run creates the database, and sometimes trips over it
            done = subprocess.run([str(nbgrader), "generate_assignment", "lab", "--force"], cwd=course, env=env,
                                  capture_output=True, text=True)
            if done.returncode == 0:
                break
        else:
            return {"error": "nbgrader generate_assignment failed: " + done.stderr[-600:]}
        for i, path in enumerate(submissions):
            target = course / "submitted" / f"student{i:03d}" / "lab"
            target.mkdir(parents=True)
            shutil.copy(path, target / "lab.ipynb")
        started = time.perf_counter()
        done = subprocess.run([str(nbgrader), "autograde", "lab", "--force"], cwd=course, env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        graded = len(list((course / "autograded").glob("*/lab/lab.ipynb")))
        if done.returncode != 0 or graded != len(submissions):
            return {"error": f"nbgrader autograde graded {graded} of {len(submissions)}: " + done.stderr[-600:]}
        return {"seconds": seconds, "count": graded}
    finally:
        shutil.rmtree(course, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    print(json.dumps(main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])))
