"""Grading one submission from file to result, and the state a batch shares.

A :class:`GradingSession` holds what every submission of a batch uses: the rubric, the data
prepared once as ``.npz``, the clean :class:`~grader.clean.verify.Verifier` (one Keras import for the
whole batch) and the :class:`~grader.store.result_store.ResultStore`. :meth:`GradingSession.grade` runs the
stages for one submission:

    load → execute (or parse saved outputs, ``--static``) → read bundle → verify → check → result

and never raises for anything a submission does: a bad file, a failing cell, a dead kernel, a
malformed bundle all end as a :class:`~grader.model.results.GradeResult` with its problems listed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from grader import __version__
from grader.execute.bundle import read_bundle
from grader.data.datasets import load_dataset
from grader.errors import BundleError, DatasetError, NotebookError
from grader.model.evidence import CellRef, Evidence, Finding, accuracy_of
from grader.execute.client import Execution, ExecutionSettings, PreparedRun, prepare, run
from grader.findings.integrity import integrity_findings, load_test_images
from grader.execute.limits import Limits
from grader.notebook.load import load_notebook, load_notes
from grader.findings.blame import import_problem, missing_file_problem
from grader.model.results import GradeResult, SubmissionProblem
from grader.clean.retrain import apply_retraining, models_to_retrain, retrain_request
from grader.execute.sandbox import resolve_mode
from grader.store.result_store import ResultStore, result_key
from grader.collect.submissions import Submission
from grader.notebook.unfinished import filled_code_block, had_outputs, incomplete_message, placeholders, unfinished_cells, unfinished_words
from grader.clean.verify import FAST_VERIFY_SECONDS, Verifier, VerifyRequest

# Accuracy the kernel printed and accuracy the grader measured may differ this much before the
# report flags it (the grader's preprocessing is inferred; batch-norm statistics, float noise).
MISMATCH_TOLERANCE = 0.02


@dataclass
class GradingOptions:
    fast: bool = False
    static: bool = False
    data: str | None = None  # overrides the rubric: "synthetic", "auto" or an .npz path
    verify: bool = True
    force: bool = False
    compat: bool | None = None  # None: as the rubric says
    cell_timeout: float | None = None
    notebook_timeout: float | None = None
    hidden_test: Path | None = None
    kernel_env: dict[str, str] = field(default_factory=dict)
    preflight: bool = True  # check the environment once before the batch (off for a self-check)
    sandbox: str = "auto"  # auto | bwrap | none (grader.execute.sandbox)
    limits: dict = field(default_factory=dict)  # over the rubric's: memory, processes, cpu_time, file_size, disk, output
    retrain: bool = False  # retrain every trained model in the grader's process (grader.clean.retrain)
    support: list[Path] = field(default_factory=list)  # --support: copied next to each notebook, besides the rubric's


class GradingSession:
    """Everything a batch shares. Use as an async context manager or call :meth:`close`."""

    def __init__(self, rubric, out_dir: Path, options: GradingOptions | None = None):
        self.rubric = rubric
        self.options = options or GradingOptions()
        self.out_dir = Path(out_dir)
        self.store = ResultStore(self.out_dir)
        self.work_root = Path(tempfile.mkdtemp(prefix="nn-grader-work-"))
        self.datasets: dict[str, Path] = {}
        self.verify_data: Path | None = None
        self.class_names: list[str] = []
        self.verifier: Verifier | None = None
        # Resolved once: `--sandbox bwrap` on a machine without it fails before the first notebook.
        self.sandbox = "none" if self.options.static else resolve_mode(self.options.sandbox)

    # -- shared preparation
    def prepare_data(self, *, start_verifier: bool = True) -> None:
        """Load the rubric's dataset once (raises DatasetError with what to do when unavailable).

        ``start_verifier=False`` when nothing will be executed (every result is stored): the
        verifier's Keras import would cost seconds for nothing. :meth:`start_verifier` later."""
        name = getattr(self.rubric, "dataset", None)
        if not name or self.options.static:
            return
        source = self.options.data or getattr(self.rubric, "data_source", "auto") or "auto"
        fast = self.fast_caps()
        train_size = test_size = None
        if fast:
            train_size = max(4 * fast.get("train_samples", 512), 2000)
            test_size = max(fast.get("test_samples", 512), 1000)
        path, self.class_names = _prepared_dataset(name, source, train_size, test_size,
                                                   cache=self.store.store_dir / ".data", target=self.work_root / "data")
        self.datasets = {name: path}
        self.verify_data = Path(self.options.hidden_test) if self.options.hidden_test else path
        if start_verifier:
            self.start_verifier()

    def start_verifier(self) -> None:
        """Start the clean verifier process, if the batch verifies and has data to verify on."""
        if self.options.verify and self.verify_data is not None and self.verifier is None:
            self.verifier = Verifier().start()
            # The worker imports Keras when its first request comes: ask one (for no model) now,
            # so that the import overlaps the first notebooks instead of delaying their results.
            import threading

            threading.Thread(target=self.verifier.verify, args=(VerifyRequest(model_path="", data_path=""),),
                             daemon=True, name="verifier warm-up").start()

    def fast_caps(self) -> dict[str, int] | None:
        if not self.options.fast:
            return None
        caps = getattr(self.rubric, "fast", None)
        if caps is None:
            return {"epochs": 1, "train_samples": 512, "steps_per_epoch": 8, "test_samples": 512}
        return {k: int(v) for k, v in vars(caps).items() if v}

    def settings(self) -> ExecutionSettings:
        rubric, options = self.rubric, self.options
        limits = Limits.from_rubric(getattr(rubric, "limits", None)).replace(**options.limits)
        return ExecutionSettings(
            cell_timeout=options.cell_timeout or getattr(rubric, "cell_timeout", 600.0),
            notebook_timeout=options.notebook_timeout or getattr(rubric, "notebook_timeout", 3600.0),
            fast=self.fast_caps(),
            compat=options.compat if options.compat is not None else getattr(rubric, "compat", True),
            datasets=dict(self.datasets),
            # --support wins over a rubric file of the same name.
            support_files=[p for p in getattr(rubric, "support_files", []) if p.name not in {s.name for s in options.support}]
            + list(options.support),
            functions=list(rubric.functions_to_call()),
            variables=list(rubric.variables_wanted()),
            kernel_name=getattr(rubric, "kernel", None),
            env=dict(options.kernel_env),
            sandbox=self.sandbox,
            limits=limits,
            max_output_bytes=limits.output,
            # Out of the kernel's sight even inside folders it must see (a rubric next to the venv).
            hidden=[p for p in (self.out_dir, getattr(rubric, "path", None), options.hidden_test) if p],
        )

    def close(self) -> None:
        if self.verifier is not None:
            self.verifier.close()
            self.verifier = None
        import shutil

        shutil.rmtree(self.work_root, ignore_errors=True)

    # -- one submission
    def key_for(self, submission: Submission, settings: ExecutionSettings) -> str:
        execution = settings.fingerprint()
        # The prepared data lies in this session's temporary folder: its path changes with every
        # batch, its file name (the data's fingerprint) only with the data.
        execution["datasets"] = {k: Path(v).name for k, v in sorted(settings.datasets.items())}
        return result_key(
            notebook_bytes=Path(submission.path).read_bytes(),
            support_files=settings.support_files,
            settings={"execution": execution, "static": self.options.static,
                      "data": {k: p.name for k, p in self.datasets.items()}, "verify": self.options.verify,
                      "hidden_test": str(self.options.hidden_test or ""), **self._retrain_key()},
            grader_version=__version__,
        )

    def _retrain_key(self) -> dict[str, str]:
        """Retraining changes the stored evidence: part of the key, only when asked for (so
        results stored before retraining existed stay valid)."""
        if self.options.retrain:
            return {"retrain": "all"}
        if any(c.params.get("retrain") for task in getattr(self.rubric, "tasks", []) for c in task.checks):
            return {"retrain": "checks"}
        return {}

    async def start(self, submission: Submission, *, env: dict[str, str] | None = None) -> "_Started":
        """The part of grading that can run ahead: read the file, start its kernel.

        ``env``: extra variables for this kernel only, which do not change what it computes
        (``CUDA_VISIBLE_DEVICES`` of the GPU it runs on); they are not part of the result key."""
        started = _Started(submission, time.perf_counter())
        try:
            # Static mode only reads the notebook: the grader's structural check, not the
            # whole schema (executed mode hands the notebook on to nbclient).
            started.nb = load_notebook(Path(submission.path), full_schema=not self.options.static)
        except NotebookError as exc:
            started.problem = SubmissionProblem(exc.kind, str(exc))
            return started
        except OSError as exc:
            started.problem = SubmissionProblem("invalid_notebook", f"the file could not be read: {exc.strerror or exc}")
            return started
        if not self.options.static:
            from grader.static.outputs import static_evidence

            # What the submitted file shows, read before the grader's run replaces its outputs.
            started.saved = static_evidence(started.nb, str(submission.path))
        started.blanks = placeholders(started.nb)
        from grader.findings.identical import notebook_hashes

        started.hashes = notebook_hashes(Path(submission.path), started.nb)
        started.had_outputs = had_outputs(started.nb)
        settings = self.settings()
        settings.hidden.append(Path(submission.path).parent)  # the other students' files
        started.settings = settings
        started.key = self.key_for(submission, settings)
        started.lap("load")
        if self.options.static:
            return started
        if not self.options.force:
            started.evidence = self.store.load_evidence(started.key)
            if started.evidence is not None:
                started.cached = True
                started.lap("load stored evidence")
                return started
        workdir = self.work_root / "runs" / submission.student.key
        settings.env.update(env or {})
        started.workdir = workdir
        try:
            started.prepared = await prepare(started.nb, workdir, settings)
        except Exception as exc:  # e.g. "Kernel died before replying to kernel_info" under load
            started.problem = SubmissionProblem(
                "internal", f"the kernel for this notebook could not be started ({type(exc).__name__}: {exc}). "
                "Nothing of the notebook ran; it is not the student's fault. Run the same command again to retry it.")
            return started
        started.lap("kernel start")
        return started

    async def finish(self, started: "_Started") -> GradeResult:
        """Run, verify, check: the rest of :meth:`grade` for a started submission."""
        submission = started.submission
        result = GradeResult(
            student=submission.student, path=str(submission.path), rubric=str(getattr(self.rubric, "path", "") or ""),
            assignment=getattr(self.rubric, "title", "") or getattr(self.rubric, "name", ""),
            max_score=float(getattr(self.rubric, "max_points", 0.0)), pass_mark=getattr(self.rubric, "pass_mark", None),
            mode="static" if self.options.static else "executed", fast_mode=bool(self.options.fast), sandbox=self.sandbox,
            grader_version=__version__, graded_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )
        result.notebook_sha256, result.code_sha256 = started.hashes
        try:
            if started.problem is not None:
                result.problems.append(started.problem)
                self._check(result, Evidence(submission=str(submission.path)))
            else:
                evidence = await self._evidence(started, result)
                self._check(result, evidence)
                started.lap("check")
        except Exception as exc:  # a grader bug must cost one submission, not the batch
            result.problems.append(SubmissionProblem("internal", f"internal grader error: {type(exc).__name__}: {exc}",
                                                     traceback.format_exc()[-4000:]))
        result.duration_s = time.perf_counter() - started.began
        return result

    async def grade(self, submission: Submission) -> GradeResult:
        return await self.finish(await self.start(submission))

    async def _evidence(self, started: "_Started", result: GradeResult) -> Evidence:
        from grader.static.outputs import cells_from_notebook, static_evidence

        nb = started.nb
        for note in load_notes(nb):
            result.problems.append(SubmissionProblem("note", note))
        if self.options.static:
            return static_evidence(nb, str(started.submission.path))
        if started.evidence is not None:
            evidence = started.evidence
        else:
            assert started.prepared is not None
            started.lap("waiting for a worker")
            execution = await run(started.prepared)
            started.lap("execute")
            if started.on_executed is not None:  # the kernel is done: a batch starts the next one
                started.on_executed()
            evidence = self._read(execution, cells_from_notebook(nb), str(started.submission.path))
            started.lap("read bundle")
            if self.verifier is None and self.options.verify and evidence.runs:
                self.start_verifier()  # a batch that expected to reuse everything
            if self.verifier is not None and self.verify_data is not None:
                await asyncio.get_running_loop().run_in_executor(None, self._verify, evidence)
                started.lap("verify")
            await asyncio.get_running_loop().run_in_executor(None, self._integrity, evidence)
            started.lap("integrity checks")
            if started.saved is not None:
                fall_back_to_saved_outputs(evidence, started.saved)
            self.store.save_evidence(started.key, evidence, execution.bundle_dir)
            started.lap("store evidence")
        _problems_from(evidence, result, started, list(getattr(self.rubric, "packages", []) or []))
        return evidence

    def _read(self, execution: Execution, cells, submission: str) -> Evidence:
        try:
            evidence = read_bundle(execution.bundle_dir, submission=submission, cells=cells)
        except BundleError as exc:
            evidence = Evidence(submission=submission, cells=cells)
            evidence.findings.append(Finding("bundle", str(exc), severity="error"))
        evidence.cell_errors = execution.cell_errors
        evidence.kernel_died = execution.kernel_died
        evidence.timed_out = execution.timed_out
        evidence.duration_s = execution.duration_s
        evidence.fast_mode = bool(execution.notebook is not None and self.options.fast)
        if execution.setup_error:
            evidence.findings.append(Finding("setup", execution.setup_error, severity="error"))
        if execution.limit_hit:
            evidence.findings.append(Finding("limit", execution.limit_hit, severity="error"))
        if execution.tampered:
            evidence.findings.append(Finding("tampered", execution.tampered, severity="error"))
        if execution.closing_error:
            evidence.findings.append(Finding(
                "recorder", f"{execution.closing_error}. Something the notebook did to its kernel broke the grader's "
                            "recorder; what it recorded before counts, models left in variables were not recorded",
                severity="error"))
        for run_ in evidence.runs:  # weights paths become absolute for the verifier
            if run_.weights_file:
                run_.weights_file = str(execution.bundle_dir / run_.weights_file)
        return evidence

    def _verify(self, evidence: Evidence) -> None:
        """Measure every trained model's final state in the clean process."""
        assert self.verifier is not None and self.verify_data is not None
        last_run = {}
        for run_ in evidence.runs:
            if run_.weights_file:
                last_run[run_.model_id] = run_
        retrain = models_to_retrain(self.rubric, evidence, everything=self.options.retrain)
        for model_id, run_ in last_run.items():
            observed = {}
            if run_.fit.x is not None:
                observed = {"minimum": run_.fit.x.minimum, "maximum": run_.fit.x.maximum, "mean": run_.fit.x.mean}
            preprocess = getattr(self.rubric, "preprocess", "auto") or "auto"
            verification = self.verifier.verify(VerifyRequest(
                model_path=run_.weights_file, data_path=str(self.verify_data), model_id=model_id,
                preprocess=preprocess if isinstance(preprocess, str) else "auto", observed=observed,
                class_names=self.class_names, expected_sha256=run_.weights_sha256,
                # Fast mode bounds the clean evaluation by time too (grader.clean.verify.FAST_VERIFY_SECONDS).
                time_budget_s=float((self.fast_caps() or {}).get("verify_seconds", FAST_VERIFY_SECONDS))
                if self.options.fast else None,
            ))
            evidence.verifications.append(verification)
            _compare(evidence, run_, verification, different_data=bool(self.options.hidden_test))
            train_data = self.datasets.get(getattr(self.rubric, "dataset", None) or "")
            if model_id in retrain and verification.status == "ok" and train_data is not None:
                request = retrain_request(evidence, run_, train_data=train_data, test_data=self.verify_data,
                                          caps=self.fast_caps(),
                                          preprocess=preprocess if isinstance(preprocess, str) else "auto")
                timeout = self.options.notebook_timeout or getattr(self.rubric, "notebook_timeout", 4 * 3600.0)
                apply_retraining(verification, self.verifier.retrain(request, timeout_s=timeout))

    def _integrity(self, evidence: Evidence) -> None:
        """Findings on training data, repeated fits and histories (grader.findings.integrity)."""
        served = self.datasets.get(getattr(self.rubric, "dataset", None) or "")
        test_images = load_test_images(served) if served is not None else None
        evidence.findings.extend(integrity_findings(evidence, test_images=test_images))

    def _check(self, result: GradeResult, evidence: Evidence) -> None:
        from grader.checks import grade as apply_rubric

        result.evidence = evidence
        result.tasks = apply_rubric(self.rubric, evidence, fast_mode=bool(self.options.fast))
        result.score = round(sum(task.points for task in result.tasks), 4)
        if result.max_score == 0.0:
            result.max_score = sum(task.max_points for task in result.tasks)
        _mark_unfinished(result, evidence)
        if result.pass_mark is not None:
            result.passed = result.score >= result.pass_mark


def _mark_unfinished(result: GradeResult, evidence: Evidence) -> None:
    """Name every code cell that still holds a template placeholder; a template with nothing
    filled in (no filled code block, no answer) is "incomplete" and earns nothing, instead of
    points for what the untouched template happens to satisfy ("no Conv2D layer, as asked")."""
    from grader.model.results import Status

    found = unfinished_cells(evidence.cells)
    if not found:
        return
    known = {(f.kind, f.cell.index if f.cell else None) for f in evidence.findings}
    by_index = {c.index: c for c in evidence.cells}
    for index, what in found:
        if ("unfinished", index) in known:
            continue
        cell = by_index.get(index)
        ref = CellRef(index, cell.heading if cell else None, list(cell.tags) if cell else [], cell.cell_id if cell else None)
        evidence.findings.append(Finding("unfinished", f"cell {index + 1} still has {what}: this part is unfinished",
                                         ref, "warning"))
    unfinished = {index for index, _ in found}  # a block around `x = ???` holds template code, not the student's
    filled = any(t.answer for t in result.tasks) or any(
        c.cell_type == "code" and c.index not in unfinished and filled_code_block(c.source) for c in evidence.cells)
    if filled:
        return
    reason = f"Not graded: the notebook is the unfilled template ({unfinished_words(found, 2)})."
    for task in result.tasks:
        for check in task.checks:
            if check.status is not Status.MANUAL:
                check.status, check.points, check.message = Status.NOT_ASSESSED, 0.0, reason
                check.details = {**check.details, "reason": "unfinished"}
        task.points = round(sum(c.points for c in task.checks), 4)
    result.score = round(sum(task.points for task in result.tasks), 4)
    result.problems = [p for p in result.problems if p.kind != "incomplete"]
    result.problems.append(SubmissionProblem("incomplete", (
        f"Incomplete: nothing of the template was filled in ({unfinished_words(found)}), and no question is "
        "answered. Fill in the code blocks and answers, run the notebook, and submit it again.")))


def _prepared_dataset(name: str, source: str, train_size: int | None, test_size: int | None, *,
                      cache: Path, target: Path) -> tuple[Path, list[str]]:
    """The batch's data as ``target/<name>-<content fingerprint>.npz``, and its class names.

    Prepared once and kept in ``cache`` (the output folder's store), keyed by what it is made
    from, so the next batch on the same folder (a re-grade after a rubric change) does not make
    it again. Data read from the Keras cache is read by Keras in a child process: the grader's
    own process never imports TensorFlow (seconds and half a gigabyte). The cache folder's name
    starts with a dot: it is not an entry of the store."""
    import hashlib
    import json
    import os
    import shutil
    import subprocess
    import sys

    from grader.data.datasets import keras_cache_dir, spec

    stamp: list = []
    if source in ("auto", "keras-cache"):
        for entry in (keras_cache_dir() / f for f in spec(name).cache_files):
            files = sorted(p for p in entry.rglob("*") if p.is_file()) if entry.is_dir() else [entry] if entry.is_file() else []
            stamp += [[str(file), file.stat().st_size, file.stat().st_mtime_ns] for file in files]
    elif source != "synthetic" and Path(source).is_file():
        info = Path(source).stat()
        stamp.append([str(Path(source).resolve()), info.st_size, info.st_mtime_ns])
    inputs = json.dumps([__version__, name, source, train_size, test_size, stamp], sort_keys=True)
    stored = cache / f"{name}-{hashlib.sha256(inputs.encode()).hexdigest()[:20]}"
    meta_path, data_path = stored.with_suffix(".json"), stored.with_suffix(".npz")
    try:
        meta = json.loads(meta_path.read_text()) if data_path.is_file() else None
    except (OSError, ValueError):
        meta = None
    if meta is None:
        cache.mkdir(parents=True, exist_ok=True)
        # Beside the cache, where the store removes what a killed batch left (ResultStore.clean_leftovers).
        partial = cache.parent / f".tmp-{stored.name}-{os.getpid()}.npz"
        partial.unlink(missing_ok=True)
        if source in ("auto", "keras-cache"):
            child = ("import json, sys\nfrom pathlib import Path\nfrom grader.data.datasets import load_dataset\n"
                     "from grader.errors import DatasetError\nname, source, train, test, out = sys.argv[1:]\n"
                     "try:\n    d = load_dataset(name, source=source, train_size=int(train) or None, test_size=int(test) or None)\n"
                     "except DatasetError as exc:\n    print(json.dumps({'error': str(exc)})); sys.exit(0)\n"
                     "d.save_npz(Path(out))\n"
                     "print(json.dumps({'fingerprint': d.fingerprint(), 'class_names': list(d.class_names)}))\n")
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                       PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])))
            done = subprocess.run([sys.executable, "-c", child, name, source, str(train_size or 0), str(test_size or 0), str(partial)],
                                  capture_output=True, text=True, env=env)
            try:
                meta = json.loads(done.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                raise DatasetError(f"{name} could not be read from the Keras cache: {done.stderr.strip()[-500:]}") from None
            if "error" in meta:
                raise DatasetError(meta["error"])
        else:
            data = load_dataset(name, source=source, train_size=train_size, test_size=test_size)
            data.save_npz(partial)
            meta = {"fingerprint": data.fingerprint(), "class_names": list(data.class_names)}
        os.chmod(partial, 0o444)  # shared by the batches' kernels through links: nobody writes it
        os.replace(partial, data_path)
        meta_path.write_text(json.dumps(meta))
    path = target / f"{name}-{meta['fingerprint']}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(data_path, path)  # the kernels read it; nobody writes it
    except OSError:
        shutil.copyfile(data_path, path)
    return path, list(meta.get("class_names") or [])


@dataclass
class _Started:
    submission: Submission
    began: float
    nb: nbformat.NotebookNode | None = None
    settings: ExecutionSettings | None = None
    key: str = ""
    problem: SubmissionProblem | None = None
    prepared: PreparedRun | None = None
    evidence: Evidence | None = None
    cached: bool = False
    blanks: list[tuple[int, str]] = field(default_factory=list)
    had_outputs: bool = True
    hashes: tuple[str, str] = ("", "")  # (notebook bytes, normalised code cells): grader.findings.identical
    saved: Evidence | None = None  # parsed from the outputs saved in the submitted file
    workdir: Path | None = None  # the kernel's working folder, when it was executed
    on_executed: Callable[[], None] | None = None  # called when the notebook has run, before verification
    # Seconds per stage, in order ("load", "kernel start", "execute", ...): the submission's log.
    timings: dict[str, float] = field(default_factory=dict)
    _mark: float = 0.0

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - (self._mark or self.began)
        self._mark = now


def fall_back_to_saved_outputs(evidence: Evidence, saved: Evidence) -> None:
    """A notebook that no longer runs (removed APIs, missing data, a broken environment) still
    shows in its saved outputs what the student built and trained. When the grader's own run
    trained nothing, those figures are used, at level ``reported``, and the report says so; a
    check that demands ``min_level: executed`` or ``verified`` still refuses them."""
    if evidence.runs or not saved.runs:
        return
    evidence.runs = list(saved.runs)
    evidence.evaluations.extend(saved.evaluations)
    evidence.models.extend(snap for snap in saved.models if snap.model_id not in {m.model_id for m in evidence.models})
    first = evidence.cell_errors[0] if evidence.cell_errors else None
    why = f" (the first failing cell is cell {first.cell.number}: {first.ename})" if first else ""
    evidence.findings.append(Finding(
        "saved_outputs", f"The notebook trained no model when the grader ran it{why}. The {len(saved.runs)} training "
        "run(s) below come from the outputs saved in the submitted file: level 'reported', which the student "
        "could have edited.", severity="warning"))


def _problems_from(evidence: Evidence, result: GradeResult, started: _Started, declared: list[str] | None = None) -> None:
    for error in evidence.cell_errors:
        if error.ename == "ModuleNotFoundError":
            # Only a module the assignment declares is the environment's (grader.findings.blame).
            problem = import_problem(error.evalue, error.cell.number, declared or [], traceback=error.traceback)
            if problem is not None:
                result.problems.append(problem)
        missing = missing_file_problem(error.ename, error.evalue, error.cell.number)
        if missing is not None:
            result.problems.append(missing)
    if started.blanks and not started.had_outputs and (evidence.cell_errors or not evidence.runs):
        first = evidence.cell_errors[0] if evidence.cell_errors else None
        result.problems.append(SubmissionProblem("incomplete", incomplete_message(
            started.blanks, (first.cell.index, f"{first.ename}: {first.evalue}") if first else None)))
    limit = next((f.message for f in evidence.findings if f.kind == "limit"), None)
    if limit:  # told as the limit it was, not as a crash
        result.problems.append(SubmissionProblem("limit", limit))
    if evidence.kernel_died and not (limit and evidence.kernel_died.startswith(limit)):
        result.problems.append(SubmissionProblem("kernel_died", evidence.kernel_died))
    if evidence.timed_out and not (limit and evidence.timed_out.startswith(limit)):
        result.problems.append(SubmissionProblem("timeout", evidence.timed_out))
    for finding in evidence.findings:
        if finding.kind == "setup":
            result.problems.append(SubmissionProblem("internal", finding.message))


def _compare(evidence: Evidence, run_, verification, *, different_data: bool = False) -> None:
    """Flag a kernel figure that the clean measurement contradicts. ``different_data``: the
    grader measures on other test images than the notebook has (``--hidden-test``)."""
    if verification.status != "ok":
        evidence.findings.append(Finding("verification", f"model {run_.model_id} (fit #{run_.index + 1}, cell "
                                         f"{run_.cell.number}) was not verified: {verification.message}", run_.cell, "warning"))
        return
    if verification.total_params is not None and run_.architecture.total_params and verification.total_params != run_.architecture.total_params:
        evidence.findings.append(Finding(
            "mismatch", f"the saved model has {verification.total_params:,} parameters, but the notebook's run recorded "
            f"{run_.architecture.total_params:,}: the recorded architecture is not trusted", run_.cell, "error",
            model_id=run_.model_id))
    measured = verification.test_accuracy.value if verification.test_accuracy else None
    for ev in evidence.evaluations_of(run_.model_id):
        # An evaluation before the model's last fit measured an earlier state of it.
        if ev.index < 0 or evidence.fast_mode or ev.cell.index < run_.cell.index:
            continue
        claimed = accuracy_of(ev.results)
        if claimed is None or measured is None:
            continue
        if abs(claimed - measured) <= _mismatch_tolerance(measured, ev.samples, verification.samples, different_data):
            continue
        said = (f"the accuracy the notebook measured ({claimed:.1%}, cell {ev.cell.number}) and the saved model's "
                f"({measured:.1%} measured by the grader on {verification.samples or 0:,} test samples)")
        if measured > claimed:
            # The saved model is better than the one the notebook evaluated: its file may not be that model.
            evidence.findings.append(Finding("mismatch", f"{said} differ: the saved model is the better one",
                                             ev.cell, "warning", model_id=run_.model_id))
        else:
            # The notebook says more than its model has: the grader's figure is the one that counts.
            evidence.findings.append(Finding("printed", f"{said} differ: the notebook's figure is higher, and the "
                                             "grader's own measurement is the one used", ev.cell, "warning",
                                             model_id=run_.model_id))


def _mismatch_tolerance(accuracy: float, samples: int | None, measured_on: int | None, different_data: bool) -> float:
    """How far the notebook's own evaluation may honestly be from the grader's: almost nothing
    on the same test images; sampling noise (four standard errors) when the grader measures on
    other images (``--hidden-test``) or on another number of them."""
    if not different_data and (not samples or not measured_on or samples == measured_on):
        return MISMATCH_TOLERANCE
    if not samples or not measured_on:
        return max(MISMATCH_TOLERANCE, 0.10)  # sizes unknown: as loose as the history check
    p = min(max(accuracy, 0.05), 0.95)
    return max(MISMATCH_TOLERANCE, 4.0 * math.sqrt(p * (1 - p) * (1.0 / samples + 1.0 / measured_on)))

