"""The bounded pipe read both verifiers use on the answer of a process that ran a student's model
(grader.clean.pipes): it never reads past its cap, never waits past its deadline, and stops
when the caller's own check says so."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from grader.clean.pipes import read_bounded


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)


def _read(proc: subprocess.Popen, **kwargs):
    assert proc.stdout is not None
    try:
        return read_bounded(proc.stdout.fileno(), **kwargs)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_reads_everything_up_to_the_end_of_the_answer():
    data, stopped = _read(_child("import sys; sys.stdout.buffer.write(b'x' * 300_000)"), cap=1 << 20, seconds=30)
    assert (len(data), stopped) == (300_000, None)


def test_stops_past_the_cap_without_reading_the_rest():
    data, stopped = _read(_child("import sys\nwhile True: sys.stdout.buffer.write(b'x' * 65536)"),
                          cap=200_000, seconds=30, chunk=1 << 16)
    assert stopped == "size" and 200_000 < len(data) <= 200_000 + (1 << 16)


def test_stops_at_the_deadline_of_a_process_that_never_answers():
    started = time.monotonic()
    data, stopped = _read(_child("import time; time.sleep(60)"), cap=1 << 20, seconds=0.5)
    assert (data, stopped) == (b"", "time") and time.monotonic() - started < 5


def test_the_callers_check_stops_it_with_its_own_word():
    asked = []

    def check():
        asked.append(1)
        return "memory" if len(asked) >= 3 else None

    data, stopped = _read(_child("import time; time.sleep(60)"), cap=1 << 20, seconds=None, check=check, poll_s=0.01)
    assert (data, stopped) == (b"", "memory") and len(asked) == 3


def test_the_descriptor_is_left_to_the_caller():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"answer")
    os.close(write_fd)
    assert read_bounded(read_fd, cap=100, seconds=5) == (b"answer", None)
    os.fstat(read_fd)  # still open
    os.close(read_fd)
