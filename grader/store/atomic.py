"""Writing a file so that a reader sees the old content or the new, never a part of either.

One writer for every file the grader leaves in an output folder (results, evidence records,
reports, ``grading.log``): a batch killed at any moment, power loss included, leaves at worst a
temporary file named ``.<name>.tmp-<random>``, which readers ignore and
:meth:`grader.store.result_store.ResultStore.clean_leftovers` removes.

Example::

    >>> write_atomic(Path("out/alice/report.html"), b"<html>...</html>")   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

__all__ = ["TMP_SUFFIX", "fsync_dir", "read_plain", "write_atomic", "write_synced"]

# .result.json.tmp-<random>: the pattern clean_leftovers looks for next to every stored file.
TMP_SUFFIX = ".tmp-"


def write_atomic(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see the old content or the new, never a
    part: write a temporary file in the same folder, fsync it, rename it over ``path``. The
    folder must exist.

    ``sync=False`` skips the two fsyncs: the rename still keeps readers from a part, but power
    loss may leave an empty file. For what the next run writes again in seconds (the results and
    reports of a batch graded from saved outputs), not for what hours of training produced."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_SUFFIX}{uuid.uuid4().hex[:12]}")
    try:
        write_synced(tmp, data, sync=sync)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync:
        fsync_dir(path.parent)


def read_plain(path: Path) -> bytes:
    """The bytes of ``path``, never through a link: a kernel without a sandbox runs as the
    grader's user and could have put one there. Raises ``OSError`` as ``open`` does."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def write_synced(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Create ``path`` (it must not exist) with ``data``, flushed to disk (unless not ``sync``):
    a piece of an entry that is renamed into place as a whole (an evidence folder)."""
    with path.open("xb") as handle:
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename in the folder ``path`` durable. Not possible on every system (Windows):
    best effort."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
