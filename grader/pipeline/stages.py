"""The stages of grading one submission, and the two lists they make: :data:`EXECUTED`, where
the grader runs the notebook, and :data:`STATIC` (``--static``), where it reads the outputs the
notebook was saved with::

    EXECUTED: load → saved outputs → result key → stored evidence → kernel start
              → begin → notes → worker → execute → read bundle → start verifier → verify → integrity
              → saved-output fallback → store evidence → problems → check | problem → finish
    STATIC:   load → result key → begin → notes → static evidence → check | problem → finish

Each stage reads and writes the submission's :class:`~grader.pipeline.run.SubmissionRun` and
the batch's :class:`~grader.pipeline.session.GradingSession`; its seconds are logged under its
timing name in ``grading.log``. Nothing a submission does raises out of here: a bad file, a
failing cell, a dead kernel, a malformed bundle all end as a
:class:`~grader.model.results.GradeResult` with its problems listed (:func:`grade`).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from grader.checks.retraining import models_to_retrain
from grader.clean.retrain import apply_retraining, retrain_request
from grader.clean.client import FAST_VERIFY_SECONDS
from grader.clean.protocol import VerifyRequest
from grader.collect import Submission
from grader.errors import BundleError, NotebookError
from grader.execute.bundle import read_bundle as read_bundle_dir
from grader.findings.identical import notebook_hashes
from grader.findings.integrity import integrity_findings, load_test_images
from grader.model.evidence import Evidence, Finding
from grader.model.results import SubmissionProblem
from grader.notebook.load import load_notebook, load_notes, read_notebook_bytes
from grader.notebook.unfinished import had_outputs, placeholders
from grader.pipeline.compare import compare_with_measurement
from grader.pipeline.problems import fall_back_to_saved_outputs, problems_from
from grader.pipeline.run import Stage, SubmissionRun, always, run_stage, sound
from grader.pipeline.session import GradingSession
from grader.notebook.cells import cells_from_notebook
from grader.static.outputs import static_evidence

__all__ = ["EXECUTED", "STATIC", "stages_for", "grade"]


# ---------------------------------------------------------------------------------------------
# Ahead of a worker: the file, its key, its kernel


def load(session: GradingSession, run_: SubmissionRun) -> None:
    """Read the notebook: its cells, its placeholders, its hashes."""
    path = Path(run_.submission.path)
    try:
        # Static mode only reads the notebook: the grader's structural check, not the
        # whole schema (executed mode hands the notebook on to nbclient).
        run_.data = read_notebook_bytes(path)
        run_.nb = load_notebook(path, full_schema=not session.config.static, data=run_.data)
    except NotebookError as exc:
        run_.problem = SubmissionProblem(exc.kind, str(exc))
        return
    except OSError as exc:
        run_.problem = SubmissionProblem("invalid_notebook", f"the file could not be read: {exc.strerror or exc}")
        return
    run_.blanks = placeholders(run_.nb)


def read_saved_outputs(session: GradingSession, run_: SubmissionRun) -> None:
    """What the submitted file shows, read before the grader's run replaces its outputs."""
    assert run_.nb is not None
    run_.saved = static_evidence(run_.nb, str(run_.submission.path))


def result_key(session: GradingSession, run_: SubmissionRun) -> None:
    """The hashes of the file and the key its result and evidence are stored under."""
    assert run_.nb is not None
    run_.hashes = notebook_hashes(Path(run_.submission.path), run_.nb, data=run_.data)
    run_.had_outputs = had_outputs(run_.nb)
    settings = session.settings()
    settings.hidden.append(Path(run_.submission.path).parent)  # the other students' files
    run_.settings = settings
    run_.key = session.key_for(run_.submission, settings, notebook_bytes=run_.data)
    run_.data = None  # what was graded is hashed; the bytes are not needed again


def stored_evidence(session: GradingSession, run_: SubmissionRun) -> None:
    """Evidence of an earlier execution of the same notebook with the same settings."""
    run_.evidence = session.store.load_evidence(run_.key)
    run_.reused = run_.evidence is not None


async def start_kernel(session: GradingSession, run_: SubmissionRun) -> None:
    """Start the notebook's kernel in its working folder (the part of a run that can go ahead)."""
    assert run_.nb is not None and run_.settings is not None
    run_.workdir = session.work_root / "runs" / run_.submission.student.key
    run_.settings.env.update(run_.env)
    from grader.execute.client import prepare  # where kernels run: a static batch starts without it

    try:
        run_.prepared = await prepare(run_.nb, run_.workdir, run_.settings)
    except Exception as exc:  # e.g. "Kernel died before replying to kernel_info" under load
        run_.problem = SubmissionProblem(
            "internal", f"the kernel for this notebook could not be started ({type(exc).__name__}: {exc}). "
            "Nothing of the notebook ran; it is not the student's fault. Run the same command again to retry it.")


# ---------------------------------------------------------------------------------------------
# With a worker: run, read, verify, check


def begin(session: GradingSession, run_: SubmissionRun) -> None:
    """The result, before any check: who, what, how; and what stopped the submission so far."""
    run_.result = session.new_result(run_.submission)
    run_.result.notebook_sha256, run_.result.code_sha256 = run_.hashes
    if run_.error is not None:
        run_.result.problems.append(run_.error)


def notes(session: GradingSession, run_: SubmissionRun) -> None:
    """The notebook's notes to the grader, as they are."""
    assert run_.nb is not None and run_.result is not None
    for note in load_notes(run_.nb):
        run_.result.problems.append(SubmissionProblem("note", note))


def take_worker(session: GradingSession, run_: SubmissionRun) -> None:
    """Nothing to do: its time is the time the submission waited for a worker (the runner's)."""


async def execute(session: GradingSession, run_: SubmissionRun) -> None:
    """Run the notebook in its started kernel."""
    from grader.execute.client import run

    assert run_.prepared is not None
    run_.execution = await run(run_.prepared)


def read_bundle(session: GradingSession, run_: SubmissionRun) -> None:
    """The evidence the recorder left in the kernel's sealed bundle, with what the run said."""
    execution = run_.execution
    assert execution is not None and run_.nb is not None
    submission = str(run_.submission.path)
    cells = cells_from_notebook(run_.nb)
    try:
        evidence = read_bundle_dir(execution.bundle_dir, submission=submission, cells=cells)
    except BundleError as exc:
        evidence = Evidence(submission=submission, cells=cells)
        evidence.findings.append(Finding("bundle", str(exc), severity="error"))
    evidence.cell_errors = execution.cell_errors
    evidence.kernel_died = execution.kernel_died
    evidence.timed_out = execution.timed_out
    evidence.duration_s = execution.duration_s
    evidence.fast_mode = bool(execution.notebook is not None and session.config.fast_mode)
    if execution.setup_error:
        evidence.findings.append(Finding("setup", execution.setup_error, severity="error"))
    if execution.limit_hit:
        evidence.findings.append(Finding("limit", execution.limit_hit, severity="error"))
    if execution.tampered:
        evidence.findings.append(Finding("tampered", execution.tampered, severity="error"))
    if execution.rewritten:  # the grade rests on the lines as sent: told, but no check is in doubt
        evidence.findings.append(Finding("rewritten", execution.rewritten, severity="warning"))
    if execution.closing_error:
        evidence.findings.append(Finding(
            "recorder", f"{execution.closing_error}. Something the notebook did to its kernel broke the grader's "
                        "recorder; what it recorded before counts, models left in variables were not recorded",
            severity="error"))
    for training in evidence.runs:  # weights paths become absolute for the verifier
        if training.weights_file:
            training.weights_file = str(execution.bundle_dir / training.weights_file)
    run_.evidence = evidence


def start_verifier(session: GradingSession, run_: SubmissionRun) -> None:
    """Start the clean process now if the batch expected to reuse every notebook's evidence."""
    if session.verifier is None and session.config.verify and run_.evidence is not None and run_.evidence.runs:
        session.start_verifier()


async def verify(session: GradingSession, run_: SubmissionRun) -> None:
    """Measure every trained model's final state in the clean process (and retrain it, when asked)."""
    await asyncio.get_running_loop().run_in_executor(None, _verify, session, run_.evidence)


def _verify(session: GradingSession, evidence: Evidence) -> None:
    config, verifier = session.config, session.verifier
    assert verifier is not None and session.verify_data is not None
    last_run = {}
    for training in evidence.runs:
        if training.weights_file:
            last_run[training.model_id] = training
    retrain = models_to_retrain(session.rubric, evidence, everything=config.retrain)
    for model_id, training in last_run.items():
        observed = {}
        if training.fit.x is not None:
            observed = {"minimum": training.fit.x.minimum, "maximum": training.fit.x.maximum, "mean": training.fit.x.mean}
        verification = verifier.verify(VerifyRequest(
            model_path=training.weights_file, data_path=str(session.verify_data), model_id=model_id,
            preprocess=config.preprocess, observed=observed,
            class_names=session.class_names, expected_sha256=training.weights_sha256,
            # Fast mode bounds the clean evaluation by time too (grader.clean.client.FAST_VERIFY_SECONDS).
            time_budget_s=float(FAST_VERIFY_SECONDS) if config.fast_mode else None,
        ))
        evidence.verifications.append(verification)
        compare_with_measurement(evidence, training, verification, different_data=config.hidden_test is not None)
        train_data = session.served_data
        if model_id in retrain and verification.status == "ok" and train_data is not None:
            request = retrain_request(evidence, training, train_data=train_data, test_data=session.verify_data,
                                      caps=config.fast.caps() if config.fast else None, preprocess=config.preprocess)
            apply_retraining(verification, verifier.retrain(request, timeout_s=config.notebook_timeout))


async def integrity(session: GradingSession, run_: SubmissionRun) -> None:
    """Findings on training data, repeated fits and histories (grader.findings.integrity)."""
    await asyncio.get_running_loop().run_in_executor(None, _integrity, session, run_.evidence)


def _integrity(session: GradingSession, evidence: Evidence) -> None:
    served = session.served_data
    test_images = load_test_images(served) if served is not None else None
    evidence.findings.extend(integrity_findings(evidence, test_images=test_images,
                                                hidden_test=session.config.hidden_test is not None))


def saved_output_fallback(session: GradingSession, run_: SubmissionRun) -> None:
    """A notebook that trained nothing now is graded on the training its saved outputs show."""
    if run_.saved is not None and run_.evidence is not None:
        fall_back_to_saved_outputs(run_.evidence, run_.saved)


def store_evidence(session: GradingSession, run_: SubmissionRun) -> None:
    """Keep the evidence (and its files) for a re-check without running the notebook again."""
    assert run_.execution is not None and run_.evidence is not None
    session.store.save_evidence(run_.key, run_.evidence, run_.execution.bundle_dir)


def read_static_evidence(session: GradingSession, run_: SubmissionRun) -> None:
    """The evidence of the outputs the notebook was saved with (``--static``)."""
    assert run_.nb is not None
    run_.evidence = static_evidence(run_.nb, str(run_.submission.path))


def problems(session: GradingSession, run_: SubmissionRun) -> None:
    """The problems the evidence shows: environment errors, limits, timeouts, a dead kernel."""
    assert run_.evidence is not None and run_.result is not None
    problems_from(run_.evidence, run_.result, blanks=run_.blanks, had_outputs=run_.had_outputs,
                  declared=session.config.packages)


def check(session: GradingSession, run_: SubmissionRun) -> None:
    """Apply the rubric to the evidence."""
    assert run_.evidence is not None and run_.result is not None
    session._check(run_.result, run_.evidence)


def problem(session: GradingSession, run_: SubmissionRun) -> None:
    """A submission that could not be read or started: its problem, and the rubric on no evidence
    (every check says what it misses)."""
    assert run_.problem is not None and run_.result is not None
    run_.result.problems.append(run_.problem)
    session._check(run_.result, Evidence(submission=str(run_.submission.path)))


def finish(session: GradingSession, run_: SubmissionRun) -> None:
    """How long grading the submission took, whatever happened."""
    assert run_.result is not None
    run_.result.duration_s = time.perf_counter() - run_.began


# ---------------------------------------------------------------------------------------------
# The two lists


def _stopped(session: GradingSession, run_: SubmissionRun) -> bool:
    return run_.problem is not None and run_.error is None


def _to_run(session: GradingSession, run_: SubmissionRun) -> bool:
    return sound(session, run_) and not run_.reused


def _may_reuse(session: GradingSession, run_: SubmissionRun) -> bool:
    return sound(session, run_) and not session.config.force


def _reused(session: GradingSession, run_: SubmissionRun) -> bool:
    return run_.reused


def _verifies(session: GradingSession, run_: SubmissionRun) -> bool:
    return _to_run(session, run_) and session.verifier is not None and session.verify_data is not None


# Ahead of a worker. "load" covers reading the file and working out its key, as it always has.
_LOAD = Stage("load", load, timing="load", ahead=True)
_SAVED = Stage("saved outputs", read_saved_outputs, timing="load", ahead=True)
_KEY = Stage("result key", result_key, timing="load", ahead=True)
_STORED = Stage("load stored evidence", stored_evidence, when=_may_reuse, timed=_reused, ahead=True)
_KERNEL = Stage("kernel start", start_kernel, when=_to_run, ahead=True)
# With a worker.
_BEGIN = Stage("begin", begin, timing=None, when=always)
_NOTES = Stage("notes", notes, timing=None)
_WORKER = Stage("waiting for a worker", take_worker, when=_to_run)
_EXECUTE = Stage("execute", execute, when=_to_run, ends_kernel=True)
_READ = Stage("read bundle", read_bundle, when=_to_run)
_VERIFIER = Stage("start verifier", start_verifier, timing=None, when=_to_run)
_VERIFY = Stage("verify", verify, when=_verifies)
_INTEGRITY = Stage("integrity checks", integrity, when=_to_run)
_FALLBACK = Stage("saved-output fallback", saved_output_fallback, timing="store evidence", when=_to_run)
_STORE = Stage("store evidence", store_evidence, when=_to_run)
_STATIC = Stage("static evidence", read_static_evidence, timing=None)
_PROBLEMS = Stage("problems", problems, timing=None)
_CHECK = Stage("check", check)
_PROBLEM = Stage("problem", problem, timing=None, when=_stopped)
_FINISH = Stage("finish", finish, timing=None, when=always)

EXECUTED: tuple[Stage, ...] = (_LOAD, _SAVED, _KEY, _STORED, _KERNEL, _BEGIN, _NOTES, _WORKER, _EXECUTE, _READ,
                               _VERIFIER, _VERIFY, _INTEGRITY, _FALLBACK, _STORE, _PROBLEMS, _CHECK, _PROBLEM, _FINISH)
# Nothing ran: there is no limit, timeout or dead kernel to tell, and no cell error of the grader's run.
STATIC: tuple[Stage, ...] = (_LOAD, _KEY, _BEGIN, _NOTES, _STATIC, _CHECK, _PROBLEM, _FINISH)


def stages_for(session: GradingSession) -> tuple[Stage, ...]:
    """The stage list of the session's mode."""
    return STATIC if session.config.static else EXECUTED


async def grade(session: GradingSession, submission: Submission, *, env: dict[str, str] | None = None) -> SubmissionRun:
    """Grade one submission, every stage in turn; the run's ``result`` is set whatever happens."""
    run_ = SubmissionRun(submission, env=dict(env or {}))
    for stage in stages_for(session):
        await run_stage(stage, session, run_)
    return run_
