"""The anchor: plain nbclient, executing notebooks one after another.

    python bench/bare_nbclient.py a.ipynb b.ipynb ...

What a script that "just runs the notebooks" does: for each notebook a fresh kernel in a
fresh working folder, every cell run (errors allowed), the kernel shut down, the executed
notebook written. No recording, no checks, no reports. Prints the seconds per notebook.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(paths: list[str]) -> None:
    for path in map(Path, paths):
        started = time.perf_counter()
        workdir = Path(tempfile.mkdtemp(prefix="bare-nbclient-"))
        try:
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                           resources={"metadata": {"path": str(workdir)}}).execute()
            nbformat.write(nb, workdir / path.name)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"{path.name} {time.perf_counter() - started:.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
