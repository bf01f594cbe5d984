"""Training on several processes under torchrun: DistributedDataParallel, gloo on the CPU, NCCL on CUDA.

``torchrun --nproc_per_node=N -m segstudio train ... --distributed`` (or ``segstudio train --nproc N``,
which runs the same through torchrun's own launcher) starts N copies of the training loop, one per
process ("rank"), on one machine or several (``--nnodes`` and a rendezvous, see docs/SCALE.md). This
module is everything the loop in :mod:`~segstudio.training.engine` asks about them:

- **The process group** comes from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``/``MASTER_PORT``): NCCL when the run is on CUDA, each rank on ``cuda:LOCAL_RANK``;
  gloo on the CPU.
- **The batch rule.** ``batch_size`` is the *global* batch: each of N ranks takes ``batch_size / N``
  of it (it must divide), and the learning rate, the number of steps and every schedule stay as
  configured. A step means the same with any N — the same samples, the same augmentation draws
  (:func:`~segstudio.training.batches.shard_slots`, the distributed sampler), gradients averaged over
  the global batch — so a run resumes with another number of processes, and results do not depend
  on N beyond BatchNorm, which normalises each rank's share unless SyncBatchNorm is asked for.
  To use more devices for a *larger* batch, raise ``batch_size`` and scale the learning rate with it
  (the linear rule: k times the batch, k times the rate, with a warm-up).
- **SyncBatchNorm** (an option, CUDA only): BatchNorm statistics over the global batch.
- **Agreement.** Rank 0 decides what steers the loop (the time budget, a cancel, the end of a
  session, when to checkpoint, the validation mIoU); the others follow (:meth:`DistContext.decide`,
  through a gloo group beside NCCL, so that it never waits for the GPU), so no rank leaves the loop
  while another waits for it. The logged loss is the global batch's.
- **Writes.** Rank 0 alone writes the log, the curves, checkpoints and the model file.

torch is imported here at module level: this module belongs to the training layer, which needs it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from segstudio.training.outputs import JsonlLog

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(ValueError):
    """A distributed run that cannot start (not under torchrun, SyncBatchNorm on the CPU, …)."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in a run: rank ``rank`` of ``world_size``. ``backend`` "" = one process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    sync_bn: bool = False
    control: Any = None
    """The process group :meth:`decide` talks through: gloo beside NCCL (a CPU tensor, so the decision
    does not wait for the GPU's queued work); ``None``: the default group (gloo already)."""

    @property
    def active(self) -> bool:
        return bool(self.backend)

    @property
    def is_main(self) -> bool:
        """True on the rank that writes (rank 0, or the only process)."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        """``(rank, world_size)`` for the batchers' distributed sampler."""
        return (self.rank, self.world_size)

    def device(self, resolved: torch.device) -> torch.device:
        """The device of this rank: ``cuda:LOCAL_RANK`` in a run on CUDA, else ``resolved`` unchanged."""
        if self.active and resolved.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return resolved

    def wrap(self, model: nn.Module, device: torch.device, find_unused: bool = False
             ) -> tuple[nn.Module, nn.Module]:
        """``(model, the module to train through)``: the model itself in one process; else the model
        (its BatchNorms made SyncBatchNorm when asked) and a DistributedDataParallel around it.

        Keep using the first for everything but the training forward pass: its state dict has no
        ``module.`` prefix, so checkpoints and model files are the same as one process writes.
        ``find_unused``: some parameters get no gradient in some steps (a frozen encoder).
        """
        if not self.active:
            return model, model
        if self.sync_bn:
            if device.type != "cuda":
                raise DistributedError("SyncBatchNorm needs CUDA (NCCL); on the CPU each process normalises "
                                       "over its share of the batch — leave out --sync-bn")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        from torch.nn.parallel import DistributedDataParallel

        # DDP compares a gradient's strides with its bucket's literally, also along dimensions of length 1,
        # where they mean nothing: a depthwise convolution's C×1×k×k weight gets a gradient laid out exactly
        # as its bucket, yet a warning on every rank. (The layouts that do differ, channels_last or not, are
        # set before DDP is made: the model is converted first.)
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=find_unused)
        return model, ddp

    def mean(self, value: Tensor) -> Tensor:
        """The mean of ``value`` over the ranks (the global batch's loss from each rank's share)."""
        if not self.active:
            return value
        total = value.detach().float().clone()
        torch.distributed.all_reduce(total)
        return total / self.world_size

    def decide(self, *values: float) -> tuple[float, ...]:
        """Rank 0's ``values`` on every rank (one broadcast); the values themselves in one process."""
        if not self.active:
            return tuple(float(v) for v in values)
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        torch.distributed.broadcast(t, src=0, group=self.control)
        return tuple(float(v) for v in t.tolist())

    def log(self, log: JsonlLog) -> JsonlLog:
        """``log`` on the writing rank; a log that is never written on the others."""
        return log if self.is_main else _UnwrittenLog(log.path)


class _UnwrittenLog(JsonlLog):
    """The log of a rank other than 0: kept in memory, never written."""

    def flush(self) -> None:
        return


SINGLE_PROCESS = DistContext()
"""The context of an ordinary run."""


def join_process_group(device: str = "auto", sync_bn: bool = False) -> DistContext:
    """Join the process group torchrun set up for this process: NCCL on CUDA, gloo on the CPU.

    ``device`` is the run's device setting (``auto``, ``cpu``, ``cuda``). Raises
    :class:`DistributedError` when this process was not started by torchrun.
    """
    missing = [v for v in _TORCHRUN_VARIABLES if v not in os.environ]
    if missing:
        raise DistributedError(f"--distributed runs under torchrun ({', '.join(missing)} not set): use "
                               "`torchrun --nproc_per_node=N -m segstudio train ... --distributed`, or "
                               "`segstudio train --nproc N ...`")
    rank, world, local = (int(os.environ[v]) for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    backend = "nccl" if device != "cpu" and torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend)
    control = torch.distributed.new_group(backend="gloo") if backend == "nccl" else None
    return DistContext(rank=rank, world_size=world, local_rank=local, backend=backend, sync_bn=sync_bn,
                       control=control)


_left_a_group = False


def leave_process_group() -> None:
    """Leave the process group of :func:`join_process_group` (nothing to do in one process); the
    process then ends with :func:`end_rank`."""
    global _left_a_group
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
        _left_a_group = True


def end_rank(status: int) -> None:
    """End a process that was a rank of a distributed run now, with ``status``, skipping Python's
    shutdown; return at once in any other process.

    gloo's worker threads outlive ``destroy_process_group``, and one may still be releasing the last
    collective's tensor, which takes the interpreter's lock. If the interpreter is shutting down by
    then, the thread is ended under C++ code that must not unwind and the rank aborts (SIGABRT,
    "terminate called without an active exception") after its work is done: about one run in twenty-five
    of a two-rank run on a busy 2-core machine. Everything a rank writes is written and closed
    before it leaves the group, so its output is flushed and the process leaves with ``os._exit``.
    """
    if not _left_a_group:
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            stream.flush()
    os._exit(status)


def launch(arguments: Sequence[str], nproc: int) -> int:
    """Run ``segstudio <arguments> --distributed`` in ``nproc`` processes on this machine with torchrun's
    own launcher (``torchrun --standalone --nproc_per_node=nproc -m segstudio ...``); the exit status.

    Each process gets ``cores / nproc`` CPU threads unless ``OMP_NUM_THREADS`` says otherwise. A failed
    process's own messages are already on the terminal; torchrun's report of it is left out.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if nproc < 1:
        raise DistributedError("--nproc takes a number of processes, at least 1")
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    launcher = parse_args(["--standalone", f"--nproc_per_node={nproc}", "-m", "segstudio"])
    # Given after parsing: torchrun's parser would take segstudio's --nproc for an abbreviation of its own.
    launcher.training_script_args = [*arguments, "--distributed"]
    quiet = logging.getLogger("torch.distributed.elastic")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its INFO notes and its traceback-laden report of a failed process
    try:
        run(launcher)
    except ChildFailedError as exc:
        codes = sorted({f.exitcode for f in exc.failures.values()})
        return codes[-1] if codes and codes[-1] > 0 else 1
    finally:
        quiet.setLevel(level)
    return 0


__all__ = ["SINGLE_PROCESS", "DistContext", "DistributedError", "end_rank", "join_process_group", "launch",
           "leave_process_group"]
