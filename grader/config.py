"""What a batch is told (:class:`GradingOptions`) and what it then does (:class:`GradingConfig`).

The options come from the command line or a caller and say only what was asked for (``None``:
"as the rubric says"). :meth:`GradingConfig.resolve` settles every value once, from the rubric
and the options, before the first notebook: the rest of the grader reads the config and never
falls back on a default of its own, so a value (a timeout, fast mode's caps, the sandbox) is
the same wherever it is used.

Example::

    config = GradingConfig.resolve(load_rubric("cifar10"), GradingOptions(fast=True))
    config.fast.caps()  # {"epochs": 1, "train_samples": 512, "steps_per_epoch": 8, "test_samples": 512}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader.execute.limits import Limits
from grader.rubric.model import Rubric
from grader.model.kinds import SandboxMode

__all__ = ["GradingOptions", "GradingConfig", "FastMode"]


@dataclass
class GradingOptions:
    """What the caller asked for; ``None`` leaves a value to the rubric."""

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


@dataclass(frozen=True)
class FastMode:
    """Fast mode's caps on training (``--fast``, ``grade check``); 0 leaves a quantity uncapped.

    The one form fast mode has inside the grader; :meth:`caps` is what crosses into the kernel
    (the recorder's argument) and into the result key."""

    epochs: int = 1
    train_samples: int = 512
    steps_per_epoch: int = 8
    test_samples: int = 512

    def caps(self) -> dict[str, int]:
        """The caps that are set, in the recorder's form (and the result key's: do not reorder)."""
        return {name: value for name, value in (("epochs", self.epochs), ("train_samples", self.train_samples),
                                                ("steps_per_epoch", self.steps_per_epoch),
                                                ("test_samples", self.test_samples)) if value}

    def data_sizes(self) -> tuple[int, int]:
        """How many training and test images to prepare: enough for the capped fits, never so
        few that a check of the data's shape or classes would see a different dataset."""
        return max(4 * (self.train_samples or 512), 2000), max(self.test_samples or 512, 1000)


@dataclass(frozen=True)
class GradingConfig:
    """Every setting of a batch, resolved once from the rubric and the options."""

    # -- the assignment
    rubric_path: Path | None
    assignment: str
    max_points: float
    pass_mark: float | None
    dataset: str | None
    packages: tuple[str, ...]  # what the assignment declares it imports (grader.findings.blame)
    preprocess: str  # how the clean process feeds test data to a saved model
    retrain_checks: bool  # some check asks for its model to be retrained
    # -- how notebooks run
    static: bool
    fast: FastMode | None  # None: full training
    cell_timeout: float
    notebook_timeout: float
    compat: bool
    sandbox: str  # "bwrap" or "none", as resolved (static mode runs nothing: "none")
    limits: Limits
    kernel_name: str | None
    kernel_env: tuple[tuple[str, str], ...]
    support_files: tuple[Path, ...]  # the rubric's, then --support (which wins on a shared name)
    # -- the data and what is done with the results
    data_source: str  # "auto", "keras-cache", "synthetic" or an .npz path
    hidden_test: Path | None
    verify: bool
    retrain: bool  # every trained model, not only those a check asks for
    force: bool
    preflight: bool

    @property
    def fast_mode(self) -> bool:
        return self.fast is not None

    @property
    def mode(self) -> str:
        return "static" if self.static else "executed"

    @classmethod
    def resolve(cls, rubric: Rubric, options: GradingOptions) -> "GradingConfig":
        """The batch's settings. Raises :class:`~grader.execute.sandbox.SandboxUnavailable` for
        ``--sandbox bwrap`` on a machine without it, before the first notebook."""
        own = {p.name for p in options.support}
        fast = None
        if options.fast:
            caps = rubric.fast
            fast = FastMode(int(caps.epochs or 0), int(caps.train_samples or 0), int(caps.steps_per_epoch or 0),
                            int(caps.test_samples or 0))
        preprocess = rubric.preprocess if isinstance(rubric.preprocess, str) and rubric.preprocess else "auto"
        return cls(
            rubric_path=rubric.path,
            assignment=rubric.title or rubric.name,
            max_points=float(rubric.max_points),
            pass_mark=rubric.pass_mark,
            dataset=rubric.dataset or None,
            packages=tuple(rubric.packages or ()),
            preprocess=preprocess,
            retrain_checks=any(c.params.get("retrain") for task in rubric.tasks for c in task.checks),
            static=options.static,
            fast=fast,
            cell_timeout=options.cell_timeout or rubric.cell_timeout,
            notebook_timeout=options.notebook_timeout or rubric.notebook_timeout,
            compat=options.compat if options.compat is not None else rubric.compat,
            sandbox="none" if options.static else _sandbox_mode(options.sandbox),
            limits=Limits.from_rubric(rubric.limits).replace(**options.limits),
            kernel_name=rubric.kernel,
            kernel_env=tuple(options.kernel_env.items()),
            support_files=tuple([p for p in rubric.support_files if p.name not in own] + list(options.support)),
            data_source=options.data or rubric.data_source or "auto",
            hidden_test=Path(options.hidden_test) if options.hidden_test else None,
            verify=options.verify,
            retrain=options.retrain,
            force=options.force,
            preflight=options.preflight,
        )


def _sandbox_mode(mode: str) -> SandboxMode:
    """The sandbox the kernels get; the kernel machinery is imported only when kernels run (a
    static batch starts without it)."""
    from grader.execute.sandbox import resolve_mode

    return resolve_mode(mode)
