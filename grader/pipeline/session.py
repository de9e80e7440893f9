"""What every submission of a batch shares: :class:`GradingSession`.

A session holds the resolved :class:`~grader.config.GradingConfig`, the data prepared once as
``.npz``, the clean :class:`~grader.clean.client.Verifier` (one Keras import for the whole
batch) and the :class:`~grader.store.result_store.ResultStore`. The stages of one submission
(:mod:`grader.pipeline.stages`) read it; they keep what is theirs in the submission's
:class:`~grader.pipeline.run.SubmissionRun`.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import threading
from pathlib import Path

from grader import __version__
from grader.clean.client import Verifier
from grader.clean.protocol import VerifyRequest
from grader.collect import Submission
from grader.config import GradingConfig, GradingOptions
from grader.execute.settings import ExecutionSettings
from grader.model.evidence import Evidence
from grader.model.results import GradeResult, SubmissionProblem
from grader.model.scoring import passes, score_of
from grader.pipeline.dataset import prepared_dataset
from grader.pipeline.problems import mark_unfinished
from grader.rubric.model import Rubric
from grader.store.result_store import ResultStore, result_key

__all__ = ["GradingSession"]


class GradingSession:
    """Everything a batch shares. Call :meth:`close` when the batch is done.

    Raises :class:`~grader.execute.sandbox.SandboxUnavailable` when the sandbox asked for cannot
    run: before the first notebook, not at each."""

    def __init__(self, rubric: Rubric, out_dir: Path, options: GradingOptions | None = None):
        self.rubric = rubric
        self.options = options or GradingOptions()  # as asked: what a cluster's workers are sent
        self.config = GradingConfig.resolve(rubric, self.options)
        self.out_dir = Path(out_dir)
        self.store = ResultStore(self.out_dir)
        self.work_root = Path(tempfile.mkdtemp(prefix="nn-grader-work-"))
        self.datasets: dict[str, Path] = {}
        self.verify_data: Path | None = None
        self.class_names: list[str] = []
        self.verifier: Verifier | None = None

    @property
    def sandbox(self) -> str:
        return self.config.sandbox

    # -- shared preparation
    def prepare_data(self, *, start_verifier: bool = True) -> None:
        """Load the rubric's dataset once (raises DatasetError with what to do when unavailable).

        ``start_verifier=False`` when nothing will be executed (every result is stored): the
        verifier's Keras import would cost seconds for nothing. :meth:`start_verifier` later."""
        config = self.config
        if not config.dataset or config.static:
            return
        train_size, test_size = config.fast.data_sizes() if config.fast else (None, None)
        path, self.class_names = prepared_dataset(config.dataset, config.data_source, train_size, test_size,
                                                  cache=self.store.store_dir / ".data", target=self.work_root / "data")
        self.datasets = {config.dataset: path}
        self.verify_data = config.hidden_test or path
        if start_verifier:
            self.start_verifier()

    def start_verifier(self) -> None:
        """Start the clean verifier process, if the batch verifies and has data to verify on."""
        if self.config.verify and self.verify_data is not None and self.verifier is None:
            self.verifier = Verifier().start()
            # The worker imports Keras when its first request comes: ask one (for no model) now,
            # so that the import overlaps the first notebooks instead of delaying their results.
            threading.Thread(target=self.verifier.verify, args=(VerifyRequest(model_path="", data_path=""),),
                             daemon=True, name="verifier warm-up").start()

    @property
    def served_data(self) -> Path | None:
        """The prepared dataset the kernels read (training and test images), if any."""
        return self.datasets.get(self.config.dataset or "")

    def settings(self) -> ExecutionSettings:
        """A fresh copy of how each kernel runs (the caller may add its own hidden paths, its env)."""
        config = self.config
        return ExecutionSettings(
            cell_timeout=config.cell_timeout,
            notebook_timeout=config.notebook_timeout,
            fast=config.fast.caps() if config.fast else None,
            compat=config.compat,
            datasets=dict(self.datasets),
            support_files=list(config.support_files),
            functions=list(self.rubric.functions_to_call()),
            variables=list(self.rubric.variables_wanted()),
            kernel_name=config.kernel_name,
            env=dict(config.kernel_env),
            sandbox=config.sandbox,
            limits=config.limits,
            max_output_bytes=config.limits.output,
            # Out of the kernel's sight even inside folders it must see (a rubric next to the venv).
            hidden=[p for p in (self.out_dir, config.rubric_path, config.hidden_test) if p],
        )

    def close(self) -> None:
        if self.verifier is not None:
            self.verifier.close()
            self.verifier = None
        shutil.rmtree(self.work_root, ignore_errors=True)

    # -- one submission, what depends on the batch
    def key_for(self, submission: Submission, settings: ExecutionSettings, *,
                notebook_bytes: bytes | None = None) -> str:
        """The result key of ``submission`` run with ``settings`` (grader.store.result_store);
        ``notebook_bytes``: its file's bytes, when they were read already."""
        config = self.config
        execution = settings.fingerprint()
        # The prepared data lies in this session's temporary folder: its path changes with every
        # batch, its file name (the data's fingerprint) only with the data.
        execution["datasets"] = {k: Path(v).name for k, v in sorted(settings.datasets.items())}
        return result_key(
            notebook_bytes=Path(submission.path).read_bytes() if notebook_bytes is None else notebook_bytes,
            support_files=settings.support_files,
            settings={"execution": execution, "static": config.static,
                      "data": {k: p.name for k, p in self.datasets.items()}, "verify": config.verify,
                      "hidden_test": str(config.hidden_test or ""), **self._retrain_key()},
            grader_version=__version__,
        )

    def _retrain_key(self) -> dict[str, str]:
        """Retraining changes the stored evidence: part of the key, only when asked for (so
        results stored before retraining existed stay valid)."""
        if self.config.retrain:
            return {"retrain": "all"}
        if self.config.retrain_checks:
            return {"retrain": "checks"}
        return {}

    def new_result(self, submission: Submission, *problems: SubmissionProblem) -> GradeResult:
        """The result of ``submission`` before any check: who, what, how it is graded."""
        config = self.config
        return GradeResult(
            student=submission.student, path=str(submission.path), rubric=str(config.rubric_path or ""),
            assignment=config.assignment, max_score=config.max_points, pass_mark=config.pass_mark,
            mode=config.mode, fast_mode=config.fast_mode, sandbox=config.sandbox,
            grader_version=__version__, graded_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            problems=list(problems),
        )

    def failed_result(self, submission: Submission, why: str, detail: str = "") -> GradeResult:
        """A result for a submission the grader could not grade at all (a cluster worker lost)."""
        config = self.config
        return GradeResult(
            student=submission.student, path=str(submission.path), rubric=str(config.rubric_path or ""),
            assignment=config.assignment, max_score=config.max_points, fast_mode=config.fast_mode,
            grader_version=__version__, problems=[SubmissionProblem("internal", why, detail)],
        )

    def _check(self, result: GradeResult, evidence: Evidence) -> None:
        """Apply the rubric to ``evidence``: the tasks, the score, unfinished work, the pass mark."""
        from grader.checks import grade as apply_rubric

        result.evidence = evidence
        result.tasks = apply_rubric(self.rubric, evidence, fast_mode=self.config.fast_mode)
        result.score = score_of(result.tasks)
        if result.max_score == 0.0:
            result.max_score = sum(task.max_points for task in result.tasks)
        mark_unfinished(result, evidence)
        if result.pass_mark is not None:
            result.passed = passes(result.score, result.pass_mark)
