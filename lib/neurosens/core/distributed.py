"""Data-parallel training and sharded evaluation over several processes (``torchrun``).

One process per GPU (or per CPU process group with ``gloo``), started by ``torchrun``,
which sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. The CLI starts it for you:

    python -m neurosens train --profile paper --method pat --nproc 4
    # is the same as
    torchrun --standalone --nproc_per_node=4 -m neurosens train --profile paper --method pat

The conventions every caller follows:

* ``config.batch_size`` is the **global** batch: each of N processes takes
  ``batch_size / N`` examples of every batch, so a run's hyper-parameters, run id and
  artifact do not depend on N (and a checkpoint written by N processes resumes with M).
* Only rank 0 writes (artifacts, checkpoints, per-example flags) and prints.
* Gradients are averaged by :class:`~torch.nn.parallel.DistributedDataParallel`.
  BatchNorm statistics are computed over the global batch: on CUDA with
  :class:`torch.nn.SyncBatchNorm`; on CPU (``gloo``), where PyTorch's SyncBatchNorm
  refuses CPU tensors, with :class:`GlobalBatchNorm` below (two differentiable
  all-reduces per layer). Without it, N processes would normalise with N different
  per-shard statistics and the run would not be the one-process run.
* The model is wrapped *after* methods attach their modules and hooks (CAS heads, SNS
  probes, ANP noise act on the inner modules, which DDP calls unchanged). Attacks run on
  the inner module (:func:`unwrap`), in eval mode, with no collective communication.
* ``find_unused_parameters=False``: every trainable parameter takes part in every
  training forward of every method (frozen SNS layers have ``requires_grad=False`` and
  are ignored by DDP; CAS heads enter the loss).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import runpy
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed import _functional_collectives as fc
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "Dist",
    "GlobalBatchNorm",
    "convert_batchnorm",
    "current",
    "init_from_env",
    "relaunch",
    "shard_slice",
    "shutdown",
    "unwrap",
    "wrap",
]


@dataclass(frozen=True)
class Dist:
    """This process's place in the group: ``rank`` of ``world`` (1 = not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over ranks (float64 on the CPU group or the device)."""
        if not self.active:
            return [float(v) for v in values]
        t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
        dist.all_reduce(t)
        return t.tolist()


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":  # pragma: no cover - GPU
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def current() -> Dist:
    """The :class:`Dist` of this process (world 1 when no process group is initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Dist()
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def init_from_env(timeout_minutes: float | None = None) -> Dist:
    """Join the process group ``torchrun`` describes in the environment, once.

    Backend ``nccl`` when CUDA is available, else ``gloo``. The timeout (default 60
    minutes, ``$NEUROSENS_DIST_TIMEOUT_MIN``) covers rank 0 working alone while the others
    wait (SNS neuron selection, the gradient-masking checks). A no-op without
    ``WORLD_SIZE`` > 1.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return current()
    if not dist.is_initialized():
        minutes = timeout_minutes or float(os.environ.get("NEUROSENS_DIST_TIMEOUT_MIN", "60"))
        cuda = torch.cuda.is_available()
        if cuda:  # pragma: no cover - GPU
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=_dt.timedelta(minutes=minutes))
    return current()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_slice(n: int, d: Dist) -> slice:
    """Rank ``d.rank``'s contiguous share of ``n`` items (the first ``n % world`` ranks
    get one more)."""
    base, extra = divmod(n, d.world)
    start = d.rank * base + min(d.rank, extra)
    return slice(start, start + base + (1 if d.rank < extra else 0))


# -- BatchNorm over the global batch ------------------------------------------------------------


class GlobalBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics cover the batch of every process.

    For CPU process groups (``gloo``), where :class:`torch.nn.SyncBatchNorm` is
    unavailable. Mean and biased variance over (N, H, W) of all ranks come from two
    differentiable all-reduces (:func:`_all_reduce_sum`, whose backward all-reduces the
    gradient), so the gradient is that of the global batch. The
    running statistics use the unbiased variance, as :class:`torch.nn.BatchNorm2d`. In
    eval mode, or without a process group, it is a plain BatchNorm2d (no communication).
    Same parameters, buffers and state-dict keys as BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        all_reduce = _all_reduce_sum
        self._check_input_dim(x)
        c = x.shape[1]
        count = torch.tensor([x.numel() / c], dtype=x.dtype, device=x.device)
        packed = all_reduce(torch.cat([x.sum(dim=(0, 2, 3)), count]))
        n = packed[-1]
        mean = packed[:c] / n  # (C,)
        centred = x - mean.view(1, c, 1, 1)
        var = all_reduce(centred.pow(2).sum(dim=(0, 2, 3))) / n  # (C,), biased
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                if m is None:
                    m = 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * (n / (n - 1)).detach()
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        y = centred * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over all ranks, differentiable (the backward sums the gradients).

    PyTorch 2.14 deprecates :func:`torch.distributed.nn.functional.all_reduce` in favour
    of the functional collectives, which carry the same autograd rule.
    """

    return fc.wait_tensor(fc.all_reduce(t, "sum", dist.group.WORLD))


def convert_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm2d of ``model`` computes global-batch statistics (in place).

    CUDA: :meth:`torch.nn.SyncBatchNorm.convert_sync_batchnorm`; CPU: the modules become
    :class:`GlobalBatchNorm` (same object, class swapped, so hooks and parameter
    identities survive). Names, parameters, buffers and ``requires_grad`` are unchanged.
    """
    if device.type == "cuda":  # pragma: no cover - GPU
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = GlobalBatchNorm
    return model


class _DDP(DistributedDataParallel):
    """DDP that falls back to the wrapped model for attributes it does not have, so that
    methods read ``model.layer_names``, ``model.cas``, ``model.conv_layers`` unchanged."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)


def wrap(model: nn.Module, d: Dist, device: torch.device) -> nn.Module:
    """``model`` inside DDP when ``d`` is active, else ``model`` itself."""
    if not d.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    # buffers (BN running statistics) are identical on every rank: they come from the
    # global-batch statistics, so there is nothing to broadcast before each forward
    return _DDP(model, device_ids=ids, forward_sync_buffers=False, find_unused_parameters=False)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


@contextlib.contextmanager
def main_first(d: Dist) -> Iterator[None]:
    """Rank 0 runs the block first (downloads, unpacking), then the others."""
    if d.active and not d.main:
        d.barrier()
    try:
        yield
    finally:
        if d.active and d.main:
            d.barrier()


# -- launching ------------------------------------------------------------------------------


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher setting RANK)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


RELAUNCH_ENV = "NEUROSENS_RELAUNCH"


def relaunch(nproc: int, module: str, argv: Sequence[str]) -> int:
    """Run ``python -m <module> <argv>`` as ``nproc`` processes on this machine through
    ``torch.distributed.run`` (``torchrun --standalone``); return its exit code.

    The command line travels in ``$NEUROSENS_RELAUNCH`` to :func:`_relaunched` (torchrun's
    own parser would take options such as ``--run`` or ``--n`` for abbreviations of its
    ``--run-path`` or ``--nnodes``). The children see ``LOCAL_RANK`` and do not relaunch.
    On CPU the gloo backend is bound to the loopback interface unless
    ``GLOO_SOCKET_IFNAME`` says otherwise.
    """
    if nproc < 1:
        raise ValueError(f"--nproc must be ≥ 1, got {nproc}")
    env = dict(os.environ)
    env[RELAUNCH_ENV] = json.dumps([module, *argv])
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "neurosens.core.distributed",
    ]
    return subprocess.call(cmd, env=env)


def _relaunched() -> None:  # pragma: no cover - runs in the torchrun children
    """``python -m <module> <argv>`` from ``$NEUROSENS_RELAUNCH``, in this process."""

    module, *argv = json.loads(os.environ[RELAUNCH_ENV])
    sys.argv = [module, *argv]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":  # pragma: no cover
    _relaunched()
