"""What one notebook run is told: the execution settings (the sandbox mode is
:class:`grader.model.kinds.SandboxMode`, which the command line reads too).

Both the client (:mod:`grader.execute.client`, which runs the cells) and the sandbox
(:mod:`grader.execute.sandbox`, which builds the kernel's command) read these, so they live
apart from either.

Example::

    settings = ExecutionSettings(cell_timeout=120, sandbox="none", fast={"epochs": 1, "train_samples": 512})
    settings.sandbox  # SandboxMode.NONE
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.execute.limits import Limits
from grader.model.defaults import DEFAULT_CELL_TIMEOUT, DEFAULT_NOTEBOOK_TIMEOUT
from grader.model.kinds import SandboxMode

__all__ = ["ExecutionSettings"]


@dataclass
class ExecutionSettings:
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT
    fast: dict[str, int] | None = None  # recorder caps: epochs, train_samples, steps_per_epoch, test_samples
    compat: bool = True
    datasets: dict[str, Path] = field(default_factory=dict)  # name -> prepared .npz
    support_files: list[Path] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)  # called at the end to build models untrained
    variables: list[str] = field(default_factory=list)  # plain values recorded at the end
    kernel_name: str | None = None  # None: this Python's own ipykernel
    env: dict[str, str] = field(default_factory=dict)  # extra variables for the kernel
    max_output_bytes: int = 2 * 2**20  # per cell, kept in the executed notebook
    sandbox: SandboxMode = SandboxMode.AUTO  # a name ("none") is accepted and turned into the mode
    limits: Limits = field(default_factory=Limits)  # memory, processes, CPU time, file size, disk
    hidden: list[Path] = field(default_factory=list)  # never visible in the sandbox: output folder, rubric, hidden test data

    def __post_init__(self) -> None:
        self.sandbox = SandboxMode.parse(self.sandbox)

    def fingerprint(self) -> dict[str, Any]:
        """What changes the evidence: part of the result cache key."""
        return {
            "cell_timeout": self.cell_timeout,
            "notebook_timeout": self.notebook_timeout,
            "fast": self.fast,
            "compat": self.compat,
            "datasets": {k: str(v) for k, v in sorted(self.datasets.items())},
            "functions": sorted(self.functions),
            "variables": sorted(self.variables),
            "kernel_name": self.kernel_name,
            "sandbox": self.sandbox.value,
            "limits": self.limits.fingerprint(),
        }
