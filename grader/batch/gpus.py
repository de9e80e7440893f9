"""The GPUs a batch's kernels share, and how many kernels run at once.

Found with ``nvidia-smi`` (the grader itself never imports TensorFlow): each kernel sees one
GPU (``CUDA_VISIBLE_DEVICES``), in turn, and allocates its memory as it grows instead of all at
once, so several fit on one GPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from grader.errors import UsageError

__all__ = ["Gpu", "detect_gpus", "choose_gpus", "default_workers", "gpu_environment", "kernel_environments",
           "GPU_MEMORY_PER_KERNEL", "GPU_GROWTH_ENV", "HOST_MEMORY_PER_KERNEL"]

# A kernel that trains a course model takes about 2.4 GB of host memory (design notes), and
# one CIFAR-10-sized model with memory growth a few GiB of GPU memory at most.
HOST_MEMORY_PER_KERNEL = 3 * 2**30
GPU_MEMORY_PER_KERNEL = 6 * 2**30
# Variables that make a kernel allocate GPU memory as it needs it: TensorFlow's memory growth,
# and JAX's (Keras 3 on JAX would otherwise take 75% of the GPU for the first kernel alone).
GPU_GROWTH_ENV = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


@dataclass(frozen=True)
class Gpu:
    """One GPU as ``nvidia-smi`` lists it."""

    index: str  # what CUDA_VISIBLE_DEVICES takes: "0", "1", or a UUID
    name: str = ""
    memory_bytes: int = 0


def detect_gpus(nvidia_smi: str = "nvidia-smi") -> list[Gpu]:
    """The NVIDIA GPUs this process may use: those ``nvidia-smi`` lists, narrowed to
    ``CUDA_VISIBLE_DEVICES`` when that is set. An empty list when there is no GPU, no driver, or
    ``nvidia-smi`` fails: the batch then runs on the CPU."""
    executable = shutil.which(nvidia_smi)
    if executable is None:
        return []
    try:
        done = subprocess.run([executable, "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    gpus = []
    for line in done.stdout.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < 4 or not parts[0].isdigit():
            continue
        try:
            memory = int(float(parts[3]) * 2**20)  # MiB
        except ValueError:
            memory = 0
        gpus.append((Gpu(parts[0], parts[2], memory), parts[1]))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [gpu for gpu, _ in gpus]
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    chosen = []
    for value in wanted:  # CUDA's order, by index or by UUID
        for gpu, uuid in gpus:
            if value in (gpu.index, uuid) or (value.startswith("GPU-") and uuid.startswith(value)):
                chosen.append(gpu)
    return chosen


def choose_gpus(spec: str | None, detected: list[Gpu] | None = None) -> list[Gpu]:
    """The GPUs kernels run on, from ``--gpus``: ``None`` or ``"all"`` every detected GPU,
    ``"none"`` (or ``""``) no GPU at all, or a comma-separated list of indices (``"0,1"``).

    Raises :class:`~grader.errors.UsageError` for a GPU that is not there."""
    if spec is not None and spec.strip().lower() in ("none", "", "cpu"):
        return []
    found = detect_gpus() if detected is None else detected
    if spec is None or spec.strip().lower() == "all":
        return found
    by_index = {gpu.index: gpu for gpu in found}
    chosen = []
    for value in (v.strip() for v in spec.split(",")):
        if not value:
            continue
        if value in by_index:
            chosen.append(by_index[value])
        elif not found and (value.isdigit() or value.startswith("GPU-")):
            # nvidia-smi is missing or says nothing (a container, a MIG slice): take the word
            # of the user, who may know better than the tools here.
            chosen.append(Gpu(value))
        else:
            have = ", ".join(sorted(by_index)) or "none"
            raise UsageError(f"--gpus {spec}: there is no GPU {value!r} here (GPUs found: {have})")
    return chosen


def _host_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def default_workers(gpus: list[Gpu] | None = None) -> int:
    """How many notebooks to run at once.

    Without a GPU: one kernel per core, at most one per 3 GiB of memory (a TensorFlow kernel
    that trains takes about 2.4 GB). Notebooks spend much of their time outside training
    (start-up, imports, saving, plotting), so two on two cores finish sooner than one after the
    other. With GPUs: one kernel per 6 GiB of GPU memory (kernels grow their memory as they
    need it), still at most one per core and per 3 GiB of host memory.
    """
    cores = os.cpu_count() or 1
    limit = max(1, min(cores, _host_memory() // HOST_MEMORY_PER_KERNEL))
    if not gpus:
        return limit
    per_gpu = [max(1, gpu.memory_bytes // GPU_MEMORY_PER_KERNEL) if gpu.memory_bytes else 1 for gpu in gpus]
    return max(1, min(limit, sum(per_gpu)))


def gpu_environment(gpu: Gpu | None) -> dict[str, str]:
    """Variables for a kernel that runs on ``gpu`` (``None``: a kernel that must not use one)."""
    if gpu is None:
        return {"CUDA_VISIBLE_DEVICES": ""}
    return {"CUDA_VISIBLE_DEVICES": gpu.index, **GPU_GROWTH_ENV}


def kernel_environments(slots: int, gpus: list[Gpu] | None) -> list[dict[str, str]]:
    """Extra variables for each of ``slots`` kernel slots: the GPUs dealt out in turn.

    Without GPUs every slot gets nothing extra (the kernel inherits the grader's
    ``CUDA_VISIBLE_DEVICES``, if any)."""
    if not gpus:
        return [{} for _ in range(slots)]
    return [gpu_environment(gpus[slot % len(gpus)]) for slot in range(slots)]
