"""What the CPU offers and which kernels PyTorch's libraries use on it.

Results and speed depend on it: oneDNN (PyTorch's CPU convolutions) and ATen (the other
CPU kernels) each pick a code path by instruction set, so the same run differs in its last
float bits, and in speed, between an AVX2 and an AVX-512 machine. ``ONEDNN_MAX_CPU_ISA=AVX2``
makes oneDNN use its AVX2 kernels on an AVX-512 machine (``ATEN_CPU_CAPABILITY=avx2`` does
the same for ATen); :func:`onednn_isa` reports what oneDNN actually chose.

    >>> sorted(vector_extensions())          # doctest: +SKIP
    ['AMX', 'AVX-512', 'AVX2', 'bf16']
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

__all__ = ["aten_capability", "cpu_flags", "cpu_model", "onednn_isa", "vector_extensions"]

# one oneDNN convolution (3×3, 8 channels, channels_last): oneDNN prints its ISA on first use
_PROBE = (
    "import torch\n"
    "x = torch.zeros(2, 8, 16, 16).contiguous(memory_format=torch.channels_last)\n"
    "w = torch.zeros(8, 8, 3, 3).contiguous(memory_format=torch.channels_last)\n"
    "torch.nn.functional.conv2d(x, w)\n"
)


def _cpuinfo_field(names: tuple[str, ...], cpuinfo: str | Path) -> str | None:
    """The first ``name : value`` line of ``/proc/cpuinfo`` for one of ``names``."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in names:
            return value.strip()
    return None


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags the kernel reports for the first CPU (empty where unknown)."""
    return frozenset((_cpuinfo_field(("flags", "Features"), cpuinfo) or "").split())


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (else the machine type, e.g. ``x86_64``)."""
    return _cpuinfo_field(("model name",), cpuinfo) or platform.machine() or "unknown"


def vector_extensions(flags: frozenset[str] | None = None) -> dict[str, bool]:
    """AVX2 / AVX-512 / AMX / bf16 support of the CPU (from :func:`cpu_flags`)."""
    f = cpu_flags() if flags is None else flags
    return {
        "AVX2": "avx2" in f,
        "AVX-512": "avx512f" in f,
        "AMX": any(x.startswith("amx") for x in f),
        "bf16": "avx512_bf16" in f or "amx_bf16" in f,
    }


def aten_capability() -> str:
    """The vector ISA of ATen's own CPU kernels (``AVX512``, ``AVX2``, ``DEFAULT``, …)."""
    return torch.backends.cpu.get_cpu_capability()


def onednn_isa(timeout: float = 60.0) -> str:
    """The ISA line oneDNN prints (``ONEDNN_VERBOSE=1``) for one convolution in a subprocess.

    A subprocess, because oneDNN writes its verbose lines to the C stdout and decides its
    ISA once per process (honouring ``ONEDNN_MAX_CPU_ISA`` from the environment).
    """
    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    try:
        out = subprocess.run(
            [sys.executable, "-c", _PROBE],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({type(e).__name__})"
    for line in out.splitlines():
        if ",info,cpu,isa:" in line:
            return line.split("isa:", 1)[1].strip()
    return "unknown (oneDNN printed no ISA line)"
