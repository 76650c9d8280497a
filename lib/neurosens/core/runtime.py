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

Models and batches get their layout from :func:`to_memory_format` /
:meth:`Runtime.prepare_model` (never ``model.to(memory_format=...)`` directly), which keeps
the convolutions that oneDNN computes wrongly in channels_last in NCHW (next section).

oneDNN workaround (torch 2.14.1, its oneDNN v3.12.0)
----------------------------------------------------
oneDNN's JIT 1×1 convolution *backward-weights* kernel, on a channels_last (NHWC) source
with stride > 1 (its "reduce to unit stride" copy) and fewer input channels per group than
the kernel's channel block (8 with its AVX2 kernels, 16 with AVX-512), writes past its
workspace: wrong weight gradients, a hang of the OpenMP threads, or heap corruption
(``corrupted double-linked list``, SIGSEGV) — which of the three varies with the spatial
size and the thread count. Forward, backward-data, NCHW and ``torch.backends.mkldnn``
disabled are correct. Reproduction (torch alone; ``tests/core/onednn_1x1_repro.py --raw``)::

    conv = nn.Conv2d(4, 8, 1, stride=2, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(4, 4, 64, 64).contiguous(memory_format=torch.channels_last)
    for _ in range(3):
        conv(x).sum().backward()    # AVX-512: SIGSEGV; ONEDNN_MAX_CPU_ISA=AVX2: hangs

(measured at 32×32 too: AVX2 kernels hang or give wrong gradients; AVX-512 kernels pass
there, crash at 64×64; 16 input channels pass both.) Reported upstream as oneDNN issue
#6035 ("1x1 convolution backward_weights writes past the rtus workspace (nhwc, IC <
ic_block)"). :func:`onednn_1x1_affected` names such a convolution — kernel 1×1, a stride
> 1, fewer than :data:`ONEDNN_1X1_MIN_IC` input channels per group, whatever the ISA (the
AVX-512 block covers the AVX2 one) — and :func:`to_memory_format` keeps it and its input
in NCHW; everything else stays channels_last. In this study only ResNet-18 shortcuts of
widths below 16 (test models) are affected: the cpu-profile VGG-16 has no 1×1 strided
convolution. Remove the workaround once a torch release whose oneDNN has the fix passes
``tests/core/test_onednn_workaround.py`` with it removed.

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
from torch import nn

from neurosens.core.errors import ConfigError

__all__ = [
    "MEMORY_FORMATS",
    "ONEDNN_1X1_MIN_IC",
    "PRECISIONS",
    "Runtime",
    "nchw_strides",
    "onednn_1x1_affected",
    "runtime",
    "select_device",
    "to_memory_format",
]

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "fp64")
MEMORY_FORMATS = ("channels_last", "contiguous")
# oneDNN's widest 1×1 backward-weights channel block (AVX-512; AVX2's is 8): see module doc
ONEDNN_1X1_MIN_IC = 16


def onednn_1x1_affected(module: nn.Module) -> bool:
    """Whether oneDNN's channels_last 1×1 strided backward-weights bug can hit ``module``."""
    return (
        isinstance(module, nn.Conv2d)
        and module.kernel_size == (1, 1)
        and module.stride != (1, 1)
        and module.in_channels // module.groups < ONEDNN_1X1_MIN_IC
    )


def nchw_strides(t: torch.Tensor) -> bool:
    """Whether ``t`` has NCHW (row-major) strides.

    Stricter than ``t.is_contiguous()``, which also holds for the channels_last strides of
    a 1×1 kernel's weight (size-1 dims are ignored there), while PyTorch reads the layout
    of a convolution from the strides themselves.
    """
    expected, step = [], 1
    for n in reversed(t.shape):
        expected.append(step)
        step *= n
    return t.stride() == tuple(reversed(expected))


def _nchw_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook of an affected convolution: weight and input in NCHW."""
    if not nchw_strides(module.weight):  # a later model.to(memory_format=...) changed it
        module.to(memory_format=torch.contiguous_format)
    return tuple(a.contiguous() if isinstance(a, torch.Tensor) else a for a in args)


def to_memory_format(
    model: nn.Module,
    memory_format: torch.memory_format = torch.channels_last,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """``model.to(device, dtype, memory_format)``, in place, with the oneDNN workaround.

    In channels_last, every :func:`onednn_1x1_affected` convolution keeps NCHW weights
    and gets a forward pre-hook that hands it its input in NCHW (once per module; the hook
    also undoes a later ``model.to(memory_format=torch.channels_last)``). Values are
    unchanged: only the memory layout of those convolutions differs.
    """
    model.to(device=device, dtype=dtype, memory_format=memory_format)
    if memory_format != torch.channels_last:
        return model
    for m in model.modules():
        if onednn_1x1_affected(m):
            m.to(memory_format=torch.contiguous_format)
            if not getattr(m, "_onednn_nchw", False):
                m.register_forward_pre_hook(_nchw_input)
                m._onednn_nchw = True
    return model


def select_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else ``cuda:<LOCAL_RANK>`` when CUDA is available, else cpu.
    A device that does not exist here is a :class:`ConfigError` naming those that do."""
    if device is not None:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ConfigError(f"unknown device {device!r}: use cpu or cuda[:i]") from e
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if dev.type == "cuda" and (have == 0 or (dev.index or 0) >= have):
            there = ", ".join(["cpu", *(f"cuda:{i}" for i in range(have))])
            raise ConfigError(f"device {device!r} does not exist on this machine ({there})")
        if dev.type not in ("cpu", "cuda"):
            raise ConfigError(f"device {device!r} is not supported: use cpu or cuda[:i]")
        return dev
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

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """``model`` on this device, dtype and memory format (see :func:`to_memory_format`)."""
        return to_memory_format(model, self.memory_format, self.device, self.dtype)

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
