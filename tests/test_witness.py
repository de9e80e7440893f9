"""The grader's copy of the recorder's log (grader.execute.witness), without a kernel."""

from __future__ import annotations

import asyncio
import os

import pytest

from grader.execute.witness import MAX_WITNESS_BYTES, Witness, reconcile

SENT = b'{"event": "start"}\n{"event": "fit"}\n{"event": "end"}\n'


@pytest.mark.parametrize("kernel_file, words", [
    (SENT, None),
    (SENT.rsplit(b"\n", 2)[0] + b"\n", None),  # stopped between the pipe and the file: one line short
    (b'{"event": "start"}\n', "cut the recorder's log"),
    (b'{"event": "start"}\n{"event": "fit", "epochs_run": 3}\n{"event": "end"}\n', "line 2 of events.jsonl is not"),
    (SENT + b'{"event": "evaluate"}\n', "1 line(s) the recorder never sent to the grader, the first at line 4"),
    (b'{"event": "start"}\n{"event": "x"}\n{"event": "fit"}\n{"event": "end"}\n', "the first at line 2"),
])
def test_the_witnessed_lines_replace_the_kernel_file_and_any_difference_is_named(tmp_path, kernel_file, words):
    events = tmp_path / "events.jsonl"
    events.write_bytes(kernel_file)
    problem = reconcile(SENT, events)
    assert events.read_bytes() == SENT
    if words is None:
        assert problem is None
    else:
        assert problem is not None and words in problem


def test_a_line_the_kernel_was_stopped_in_the_middle_of_is_left_out(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(SENT)
    assert reconcile(SENT + b'{"event": "ev', events) is None
    assert events.read_bytes() == SENT


def test_the_pipe_delivers_what_a_writer_sent_and_stops_polling_when_it_closes(tmp_path):
    async def main() -> bytes:
        witness = Witness.create(tmp_path)
        assert witness.available
        witness.start()
        fd = os.open(witness.path, os.O_WRONLY | os.O_NONBLOCK)
        os.unlink(witness.path)  # as the recorder does: nothing can open it again
        os.set_blocking(fd, True)
        for _ in range(200):  # more than a pipe's buffer: the reader must keep up
            os.write(fd, b"x" * 1000 + b"\n")
            await asyncio.sleep(0)
        os.close(fd)
        await asyncio.sleep(0.05)
        assert witness._loop is None  # end of file: the reader is removed, no busy loop
        return witness.close()

    data = asyncio.run(main())
    assert data == (b"x" * 1000 + b"\n") * 200


def test_what_comes_past_the_cap_is_read_and_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr("grader.execute.witness.MAX_WITNESS_BYTES", 10)
    witness = Witness.create(tmp_path)
    fd = os.open(witness.path, os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b"0123456789abcdef\n")
    os.close(fd)
    assert witness.close() == b"0123456789" and witness.overflow
    assert MAX_WITNESS_BYTES == 64 * 2**20
