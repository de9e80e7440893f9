"""The grader's own copy of the recorder's log, taken as the kernel runs.

The recorder writes ``events.jsonl`` inside the kernel's working folder, where the notebook can
rewrite it: 12 epochs edited to 3, a better model swapped in with its ``weights_sha256`` patched.
What the kernel can write it can forge, so the grade must not rest on that file alone. A
:class:`Witness` is a named pipe the grader creates in the working folder before the kernel
starts and reads from its own event loop. The recorder opens it while it is installed (before any
cell of the notebook runs), removes its name, and writes every line twice: to the log file and
down the pipe. A line that went down the pipe is out of the kernel's reach: the notebook can add
lines of its own (the bundle reader finds records the recorder did not write) but cannot take
back or edit one the recorder sent.

When the run ends, :func:`reconcile` puts the witnessed lines in place of the sealed log and says
how the kernel's file differed from them (a ``rewritten`` finding). A model file the kernel
rewrote after the fit no longer matches the hash in the witnessed line, so the clean verifier
refuses it (status ``tampered``).

The pipe's contents are untrusted input like the file's: bounded by :data:`MAX_WITNESS_BYTES`
(beyond it the grader keeps reading, so the kernel never blocks, but drops what it reads), and
parsed by the same bundle reader.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from pathlib import Path

__all__ = ["MAX_WITNESS_BYTES", "WITNESS_NAME", "Witness", "reconcile"]

log = logging.getLogger(__name__)

WITNESS_NAME = "witness"  # in the working folder's .nn-grader/
MAX_WITNESS_BYTES = 64 * 2**20  # the bundle reader's cap on the log
_CHUNK = 1 << 16


class Witness:
    """A named pipe the recorder writes its log into, read by the grader as the kernel runs.

    Create it (:meth:`create`) before the kernel starts and :meth:`start` it on the event loop
    that runs the notebook; :meth:`close` after the kernel is stopped returns what came through."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._data = bytearray()
        self.overflow = False
        self.available = False

    @classmethod
    def create(cls, folder: Path) -> "Witness":
        witness = cls(folder / WITNESS_NAME)
        try:
            os.mkfifo(witness.path, 0o600)
            # Opened for reading now, without waiting for a writer: the recorder's open for
            # writing then succeeds at once, and data never waits for the grader to look.
            witness._fd = os.open(witness.path, os.O_RDONLY | os.O_NONBLOCK)
            witness.available = True
        except (OSError, AttributeError) as exc:  # no named pipes here: the log file alone is read
            log.warning("the grader cannot follow the recorder's log as it runs: %s", exc)
        return witness

    def start(self) -> None:
        if self._fd is None:
            return
        try:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._fd, self._read)
        except (RuntimeError, NotImplementedError, ValueError):  # no loop: read once at the end
            self._loop = None

    def _read(self) -> None:
        if self._fd is None:
            return
        while True:
            try:
                chunk = os.read(self._fd, _CHUNK)
            except BlockingIOError:
                return
            except OSError:
                self._stop_reading()
                return
            if not chunk:
                # Every writer closed it (the kernel ended, or a cell closed the recorder's end):
                # the pipe would now poll readable for ever. Its name is gone, so nothing can open
                # it again; close() reads what is left.
                self._stop_reading()
                return
            room = MAX_WITNESS_BYTES - len(self._data)
            if len(chunk) > room:
                self.overflow = True
                chunk = chunk[:max(room, 0)]
            self._data += chunk

    def _stop_reading(self) -> None:
        if self._loop is not None and self._fd is not None:
            try:
                self._loop.remove_reader(self._fd)
            except (ValueError, RuntimeError):
                pass
        self._loop = None

    def close(self) -> bytes:
        """Read what is left in the pipe (the kernel is stopped), close it, return every byte."""
        self._read()
        self._stop_reading()
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        try:
            if stat.S_ISFIFO(os.lstat(self.path).st_mode):
                os.unlink(self.path)
        except OSError:
            pass
        return bytes(self._data)


def reconcile(witnessed: bytes, events_file: Path, *, overflow: bool = False) -> str | None:
    """Put the witnessed lines in place of the kernel's ``events.jsonl``; say how the two differ.

    Returns ``None`` when the kernel's file holds exactly the lines the recorder sent, otherwise a
    sentence for the report. The file the grader then reads is the witnessed copy in every case:
    a line the kernel rewrote is read as it was sent, a line the kernel added to the file only is
    not read at all."""
    try:
        kernel_lines = events_file.read_bytes().splitlines() if events_file.is_file() else []
    except OSError:
        kernel_lines = []
    sent = witnessed.splitlines()
    if not overflow and witnessed and not witnessed.endswith(b"\n"):
        sent = sent[:-1]  # the kernel was stopped in the middle of a line: that line never arrived
    try:
        events_file.write_bytes(b"".join(line + b"\n" for line in sent))
    except OSError as exc:
        return f"the grader could not write its copy of the recorder's log ({exc.strerror})"
    if overflow:
        return None  # the log ran past its cap: the bundle reader says so; nothing to compare
    added = _added_lines(kernel_lines, sent)
    if added:
        first, count = added
        return (f"events.jsonl holds {count} line(s) the recorder never sent to the grader, the first at line {first} "
                "(written by the notebook, or after it closed the recorder's channel); they are not used")
    for number, (theirs, ours) in enumerate(zip(kernel_lines, sent), start=1):
        if theirs != ours:
            return (f"the notebook rewrote the recorder's log while it ran: line {number} of events.jsonl is not what "
                    "the recorder wrote; the grade uses the lines as the recorder sent them to the grader")
    # The recorder sends a line down the pipe before it writes it to the file, so a kernel stopped
    # between the two leaves the file one line short: only more than that was cut by the notebook.
    if len(kernel_lines) < len(sent) - 1:
        return (f"the notebook cut the recorder's log: events.jsonl holds {len(kernel_lines)} of the {len(sent)} lines "
                "the recorder wrote; the grade uses the lines as the recorder sent them to the grader")
    return None


def _added_lines(kernel_lines: list[bytes], sent: list[bytes]) -> tuple[int, int] | None:
    """``(first added line, lines added)`` when the kernel's file is every sent line, in order,
    with lines of its own between or after them (and at most the last sent line missing)."""
    if len(kernel_lines) <= len(sent) - 1:
        return None
    position, first = 0, None
    for number, line in enumerate(kernel_lines, start=1):
        if position < len(sent) and line == sent[position]:
            position += 1
        elif first is None:
            first = number
    if first is None or position < len(sent) - 1:
        return None
    return first, len(kernel_lines) - position
