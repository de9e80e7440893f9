"""Reading a child process's answer from a pipe, bounded in size and in time.

Both verifiers (:mod:`grader.clean.worker`, the forked one; :mod:`grader.clean.sandboxed`, the
bubblewrap one) read what a process that ran a student's model writes back: never more than a
cap, never past a deadline, and with a check of their own between reads (the forked child's
memory). What stopped the read is said in one word; the caller kills the process.

Example::

    data, stopped = read_bounded(fd, cap=1 << 20, seconds=60)
    if stopped:  # "size", "time", or what ``check`` said
        child.kill()
"""

from __future__ import annotations

import os
import select
import time
from typing import Callable

__all__ = ["read_bounded"]


def read_bounded(fd: int, *, cap: int, seconds: float | None, check: Callable[[], str | None] | None = None,
                 poll_s: float = 0.1, chunk: int = 1 << 20) -> tuple[bytes, str | None]:
    """The bytes read from ``fd`` until end of file, and what stopped the read early or None:
    ``"size"`` past ``cap`` bytes, ``"time"`` past ``seconds`` (None: no deadline), or the word
    ``check()`` returned (it is asked every ``poll_s`` seconds). ``fd`` is left open."""
    deadline = time.monotonic() + seconds if seconds else None
    chunks: list[bytes] = []
    size = 0
    while True:
        wait = poll_s if deadline is None else max(0.0, min(poll_s, deadline - time.monotonic()))
        ready, _, _ = select.select([fd], [], [], wait)
        if ready:
            data = os.read(fd, chunk)
            if not data:
                return b"".join(chunks), None
            chunks.append(data)
            size += len(data)
            if size > cap:
                return b"".join(chunks), "size"
        if deadline is not None and time.monotonic() >= deadline:
            return b"".join(chunks), "time"
        stopped = check() if check is not None else None
        if stopped:
            return b"".join(chunks), stopped
