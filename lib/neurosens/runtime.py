"""Where and in which precision a run computes: device, mixed precision, memory format.

Nothing is chosen at import time. :func:`select_device` picks CUDA when it is available
(``cuda:<LOCAL_RANK>`` under ``torchrun``), else the CPU; :func:`runtime` adds the
precision policy:

==========  =================================================================================
precision   meaning
==========  =================================================================================
``auto``    CUDA: bf16 autocast where the GPU supports bf16, else fp16 autocast with a
            :class:`torch.amp.GradScaler`; CPU: fp32 (autocast and the scaler disabled)
``fp32``    no autocast anywhere
``bf16``    bf16 autocast of the training forward passes (CUDA only)
``fp16``    fp16 autocast with dynamic loss scaling (CUDA only)
``fp64``    float64 weights (reference numerics for tests; saved artifacts are float32)
==========  =================================================================================

Autocast covers the *training* forward pass only (the loss a method returns). The
attacks' inner loops (the training PGD, validation, evaluation) run in fp32: their
gradient signs and small margins are what the study measures, and
:func:`neurosens.defences.base.training_pgd` switches autocast off explicitly. (On
Ampere and newer GPUs PyTorch's default lets cuDNN convolutions use TF32 inside fp32.)

Models and batches use ``channels_last`` on both devices by default: it is ~1.6× faster
on this CPU (measured) and what cuDNN's tensor-core kernels prefer. ``contiguous`` (NCHW)
is the alternative. One numerical difference between the two on the CPU: PyTorch's
channels_last BatchNorm computes its training-mode statistics less accurately (measured
on a Fashion-MNIST batch at conv1: max error 8e-4 against float64, NCHW 4e-7), which is
harmless for training but means channels_last runs agree with any other computation of
the same run (another process count, another layout) only to about that precision.

    >>> rt = runtime()                       # doctest: +SKIP
    >>> with rt.autocast():                  # doctest: +SKIP
    ...     loss = method.loss(model, x, y, ctx)
    >>> rt.backward_step(loss, optimizer)    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["MEMORY_FORMATS", "PRECISIONS", "Runtime", "runtime", "select_device"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "fp64")
MEMORY_FORMATS = ("channels_last", "contiguous")


def select_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else ``cuda:<LOCAL_RANK>`` when CUDA is available, else cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():  # only ever reached on a CUDA machine
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


@dataclass
class Runtime:
    """Device and precision of a run (see the module doc).

    Attributes:
        device: where tensors live.
        amp_dtype: autocast dtype of the training forward (``None``: fp32, no autocast).
        scaler: dynamic loss scaler (fp16 only; ``None`` otherwise).
        channels_last: memory format of models and batches (else NCHW).
        dtype: dtype of the weights (float64 only for ``fp64``; models cast their inputs
            in :class:`~neurosens.models.common.Normalize`).
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp_dtype: torch.dtype | None = None
    scaler: Any = None
    channels_last: bool = True
    dtype: torch.dtype = torch.float32

    @property
    def precision(self) -> str:
        if self.dtype == torch.float64:
            return "fp64"
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast for the training forward pass (a no-op context in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """``loss.backward()`` and ``optimizer.step()``, through the loss scaler in fp16."""
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


def runtime(
    precision: str = "auto",
    device: str | torch.device | None = None,
    memory_format: str = "channels_last",
) -> Runtime:
    """The :class:`Runtime` for ``precision`` on ``device`` (default :func:`select_device`).

    Raises:
        ValueError: unknown precision or memory format, or bf16/fp16 asked for on a CPU.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: valid are {', '.join(PRECISIONS)}")
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(
            f"unknown memory format {memory_format!r}: valid are {', '.join(MEMORY_FORMATS)}"
        )
    cl = memory_format == "channels_last"
    dev = select_device(device)
    if precision == "fp64":
        return Runtime(dev, channels_last=cl, dtype=torch.float64)
    if dev.type != "cuda":
        if precision in ("bf16", "fp16"):
            raise ValueError(
                f"precision {precision!r} needs a CUDA device; this run is on {dev} "
                "(use --precision auto or fp32)"
            )
        return Runtime(dev, channels_last=cl)
    return _cuda_runtime(dev, precision, cl)


def _cuda_runtime(dev: torch.device, precision: str, cl: bool) -> Runtime:  # pragma: no cover
    if precision == "fp32":
        return Runtime(dev, channels_last=cl)
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "bf16":
        return Runtime(dev, torch.bfloat16, channels_last=cl)
    return Runtime(dev, torch.float16, torch.amp.GradScaler("cuda"), channels_last=cl)


@contextlib.contextmanager
def fp32(device: torch.device | str) -> Iterator[None]:
    """Autocast off inside the block (attack inner loops run in full precision)."""
    dev_type = torch.device(device).type
    with torch.autocast(device_type=dev_type, enabled=False):
        yield
