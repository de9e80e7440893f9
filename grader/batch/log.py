"""What a batch writes beside each result: ``grading.log`` and ``kernel.log``.

``grading.log`` says what happened to the submission (the time of each stage, cell errors,
limits), one entry per run: a resumed batch appends its re-check below the execution's entry,
and the result keeps the execution's run time (:func:`keep_execution`). ``kernel.log`` keeps
the end of what its kernel printed. ``tampering.log``, beside the results, says what a kernel
without a sandbox changed in the output folder, run by run.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from grader.model.results import GradeResult
from grader.printable import printable
from grader.store.atomic import write_atomic
from grader.store.seal import Tampering

__all__ = ["keep_execution", "read_log_tail", "copy_tail", "keep_logs", "write_submission_log", "write_tampering_log",
           "KERNEL_LOG_BYTES", "GRADING_LOG_BYTES", "RUN_SEPARATOR", "TAMPERING_LOG"]

# What is kept of a kernel's own log next to the result: its end, where the crash is.
KERNEL_LOG_BYTES = 1 << 20
# grading.log gains an entry per run; past this size the middle entries go (see _bounded_log).
GRADING_LOG_BYTES = 1 << 20
RUN_SEPARATOR = "===="
# Beside the results: what a kernel without a sandbox changed in the output folder, run by run.
TAMPERING_LOG = "tampering.log"


def keep_logs(folder: Path, result: GradeResult, *, key: str, timings: dict[str, float], reused: bool,
              workdir: Path | None = None, gpu: str | None = None, execution: dict | None = None,
              sync: bool = True) -> None:
    """Write a submission's ``kernel.log`` (from its kernel's working folder ``workdir``, if it
    ran) and add its entry to ``grading.log``, both in ``folder`` (``sync``: flushed to disk)."""
    kernel_log = None
    if workdir is not None:
        kernel_log = workdir / ".nn-grader" / "kernel.log"
        copy_tail(kernel_log, folder / "kernel.log", KERNEL_LOG_BYTES)
    write_submission_log(folder / "grading.log", result, key=key, timings=timings, reused=reused, gpu=gpu or None,
                         execution=execution, kernel_log=folder / "kernel.log" if kernel_log is not None else None,
                         sync=sync)


def keep_execution(store, key: str, result: GradeResult, timings: dict[str, float], *, reused: bool,
                   executed: bool) -> dict | None:
    """Keep the run time of the execution that recorded a result's evidence.

    A result re-checked from stored evidence (``reused``: a resumed batch, a rubric change)
    gets that execution's wall time and time of day from the store (:meth:`ResultStore.load_execution`),
    not the second its re-check took; evidence stored before run times were recorded gives
    the notebook's own execution time instead. A notebook that ran now (``executed``) has its
    run time recorded beside its evidence for later re-checks. Returns the stored record for a
    reused result (what ``grading.log`` says about it), None otherwise.
    """
    if not key or result.mode != "executed":
        return None
    if reused:
        result.evidence_reused = True
        record = store.load_execution(key)
        if record is None and result.evidence is not None and result.evidence.duration_s is not None:
            record = {"duration_s": result.evidence.duration_s, "timings": {}, "executed_at": "", "approximate": True}
        if record is not None:
            result.duration_s = record["duration_s"]
            result.executed_at = record["executed_at"]
        return record
    if executed and result.duration_s is not None:
        result.executed_at = result.graded_at
        store.save_execution(key, duration_s=result.duration_s, timings=timings, executed_at=result.executed_at)
    return None


def read_log_tail(source: Path, limit: int = KERNEL_LOG_BYTES) -> bytes | None:
    """The last ``limit`` bytes of a kernel's log (None when there is none), never through a
    link: the kernel could have put one in place of its log."""
    try:
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                handle.seek(size - limit)
            data = handle.read(limit)
    except OSError:
        return None
    if size > limit:
        data = f"[nn-grader: the first {size - limit:,} bytes of this log were left out]\n".encode() + data
    return data


def copy_tail(source: Path, target: Path, limit: int) -> None:
    """Copy the end of the log ``source`` to ``target`` (nothing when there is none)."""
    data = read_log_tail(source, limit)
    if data is not None:
        write_atomic(target, data)


def write_submission_log(path: Path, result: GradeResult, *, key: str = "", timings: dict[str, float] | None = None,
                         reused: bool = False, gpu: str | None = None, kernel_log: Path | None = None,
                         where: str | None = None, execution: dict | None = None, append: bool = True,
                         sync: bool = True) -> Path:
    """Add this run's entry to ``grading.log``: what happened to one submission, for an
    instructor who wonders why.

    The stages with their seconds, whether the notebook was executed or its stored evidence
    reused (then the run time kept from that execution, ``execution`` as
    :func:`keep_execution` returns it), cell errors, limits, timeouts, a dead kernel, and the
    problems and score of the result.

    Each run appends an entry under a ``==== <time> · <what happened> ====`` line, so a resumed
    batch or a rubric change adds its re-check below the entry of the execution, whose stages,
    cell errors and limits stay as they were. ``append=False`` starts the file afresh.
    """
    student = result.student
    who = student.key + "".join(f" · {v}" for v in (student.name, student.student_id and f"id {student.student_id}") if v)
    lines = [_run_separator(result, reused),
             f"nn-grader {result.grader_version} · {who}{' · late' if student.late else ''}",
             f"submission: {result.path}"]
    if student.note:
        lines.append(f"note: {student.note}")
    if key:
        lines.append(f"result key: {key}")
    mode = result.mode + (" (fast mode)" if result.fast_mode else "")
    lines.append(f"mode: {mode} · sandbox {result.sandbox}" + (f" · GPU {gpu}" if gpu else "") + (f" · {where}" if where else ""))
    if result.mode == "executed":
        evidence = result.evidence
        if reused:
            lines.append("evidence: reused from the store (the notebook and the settings are unchanged): not executed again")
        elif evidence is not None and evidence.cells:
            lines.append(f"evidence: executed now, {len(evidence.runs)} training run(s) recorded")
    if reused and result.mode == "executed":
        lines.append(_kept_run_time(execution))
        if timings:
            lines.append("stages of this re-check (seconds):")
            lines += [f"  {stage:<24}{seconds:8.2f}" for stage, seconds in timings.items()]
            lines.append(f"  {'total':<24}{sum(timings.values()):8.2f}")
    else:
        if timings:
            lines.append("stages (seconds):")
            lines += [f"  {stage:<24}{seconds:8.2f}" for stage, seconds in timings.items()]
        if result.duration_s is not None:
            lines.append(f"  {'total':<24}{result.duration_s:8.2f}")
    evidence = result.evidence
    if evidence is not None:
        if evidence.cell_errors:
            lines.append("cell errors:")
            lines += [f"  cell {e.cell.number}: {e.ename}: {_one_line(e.evalue)}" for e in evidence.cell_errors]
        for finding in evidence.findings:
            if finding.kind in ("limit", "setup", "bundle", "verification", "mismatch"):
                lines.append(f"{finding.kind}: {_one_line(finding.message)}")
        if evidence.timed_out:
            lines.append(f"timeout: {_one_line(evidence.timed_out)}")
        if evidence.kernel_died:
            lines.append(f"kernel died: {_one_line(evidence.kernel_died)}")
    if result.problems:
        lines.append("problems:")
        lines += [f"  [{p.kind}] {_one_line(p.message)}" for p in result.problems]
    score = f"score: {result.score:g}/{result.max_score:g}"
    if result.passed is not None:
        score += " (passed)" if result.passed else " (not passed)"
    lines.append(score)
    if kernel_log is not None:
        lines.append(f"kernel output: {kernel_log.name}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name or message holding a newline or an escape code must not forge a line (or an entry) of the log.
    entry = ("\n".join(printable(line) for line in lines) + "\n").encode("utf-8")
    earlier = b""
    if append:
        try:
            earlier = path.read_bytes()
        except OSError:  # the first run, or a log that cannot be read: start afresh
            earlier = b""
        if earlier and not earlier.endswith(b"\n"):
            earlier += b"\n"
        if earlier:
            earlier += b"\n"
    write_atomic(path, _bounded_log(earlier, entry, GRADING_LOG_BYTES), sync=sync)
    return path


def _run_separator(result: GradeResult, reused: bool) -> str:
    when = result.graded_at or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    if result.mode == "static":
        what = "graded from the outputs saved in the notebook"
    elif reused:
        what = "re-checked from the stored execution (not executed again)"
    elif result.evidence is not None and result.evidence.cells:
        what = "executed"
    else:
        what = "graded"
    return f"{RUN_SEPARATOR} {when} · {what} {RUN_SEPARATOR}"


def _kept_run_time(execution: dict | None) -> str:
    if execution is None:
        return "run time: unknown (the stored execution does not record it)"
    seconds = float(execution["duration_s"])
    if execution.get("approximate"):
        return (f"run time: {seconds:.2f} s, the notebook's execution as stored with its evidence "
                "(stored before run times were recorded)")
    when = execution.get("executed_at") or "an earlier run"
    stages = ", ".join(f"{stage} {value:.2f} s" for stage, value in (execution.get("timings") or {}).items()
                       if value >= 0.005)
    return f"run time: {seconds:.2f} s, kept from the execution of {when}" + (f" ({stages})" if stages else "")


def _bounded_log(earlier: bytes, entry: bytes, limit: int) -> bytes:
    """``earlier`` + ``entry``, at most about ``limit`` bytes: past it, the first entry (the
    execution, usually) and the newest ones are kept, and a line says how much was left out."""
    if len(earlier) + len(entry) <= limit:
        return earlier + entry
    marker = RUN_SEPARATOR.encode() + b" "
    second = earlier.find(b"\n" + marker, len(marker))
    first = earlier[: second + 1] if 0 < second < limit // 2 else earlier[: limit // 4]
    room = max(0, limit - len(first) - len(entry))
    tail = earlier[len(earlier) - room:] if room else b""
    start = tail.find(b"\n" + marker)  # an entry's first line, not "==== " inside a message
    tail = tail[start + 1:] if start >= 0 else b""
    left_out = len(earlier) - len(first) - len(tail)
    note = f"[nn-grader: {left_out:,} bytes of earlier runs' entries were left out]\n\n".encode()
    return first.rstrip(b"\n") + b"\n\n" + note + tail + entry


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_tampering_log(path: Path, found: list[Tampering]) -> None:
    """Add this run's findings to ``tampering.log`` beside the results, for the instructor."""
    when = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    lines = [f"{RUN_SEPARATOR} {when} · {len(found)} stored file(s) changed behind the grader's back {RUN_SEPARATOR}"]
    lines += [printable(item.message()) for item in found]
    try:
        earlier = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        write_atomic(path, _bounded_log(earlier + b"\n" if earlier else b"", ("\n".join(lines) + "\n").encode("utf-8"),
                                        GRADING_LOG_BYTES))
    except OSError as exc:  # the warnings in the log said it already
        logging.getLogger(__name__).warning("could not write %s: %s", path, exc)
