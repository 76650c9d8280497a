"""Cost of one forward+backward pass of the profile's model, against the machine's GEMM peak.

Prints, for the cpu-profile VGG-16 (and two alternative width choices for comparison):
milliseconds per fwd+bwd of a batch of 128 (fp32, channels_last and NCHW), the conv
FLOPs of that pass, the achieved GFLOP/s, and its fraction of the fp32 GEMM peak measured
in the same run with a large torch.mm. Plain script, not a timed test:

    .venv/bin/python benchmarks/bench_models.py
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from neurosens import resolve
from neurosens.core.runtime import to_memory_format
from neurosens.models import VGG16
from neurosens.models.vgg import BLOCKS


def gemm_peak(n: int = 2048, reps: int = 5, trials: int = 7) -> float:
    """Best of ``trials`` timings of ``reps`` fp32 n×n matrix products (GFLOP/s)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(trials):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
    return best


def conv_flops_fwd_bwd(widths: tuple[int, ...], in_ch: int, batch: int, size: int = 32) -> float:
    """2·MACs for the forward, ×3 for forward + input grad + weight grad (conv1: ×2)."""
    total, c, h, i = 0.0, in_ch, size, 0
    for n in BLOCKS:
        for _ in range(n):
            macs = h * h * 9 * c * widths[i]
            total += 2 * macs * (2 if i == 0 else 3)
            c, i = widths[i], i + 1
        h //= 2
    return total * batch


def time_fwd_bwd(widths: tuple[int, ...], channels_last: bool, batch: int = 128) -> float:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    m = to_memory_format(VGG16(widths, 1, 10), fmt)
    x = torch.rand(batch, 1, 32, 32).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    for _ in range(3):
        F.cross_entropy(m(x), y).backward()
    reps = 15
    t = time.perf_counter()
    for _ in range(reps):
        m.zero_grad(set_to_none=True)
        F.cross_entropy(m(x), y).backward()
    return (time.perf_counter() - t) / reps


def main() -> None:
    peak = gemm_peak()
    print(f"threads {torch.get_num_threads()}, fp32 GEMM peak (2048² mm) {peak:.1f} GFLOP/s")
    cpu = resolve("cpu").widths
    choices = {
        "cpu profile": cpu,
        "1/8 everywhere": (8, 8, 16, 16, 32, 32, 32, 64, 64, 64, 64, 64, 64),
        "1/4 everywhere": (16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128),
    }
    for name, w in choices.items():
        flops = conv_flops_fwd_bwd(w, 1, 128)
        for cl in (True, False):
            dt = time_fwd_bwd(w, cl)
            rate = flops / dt / 1e9
            print(
                f"{name:<15} {'channels_last' if cl else 'NCHW':<13} {dt * 1e3:6.1f} ms/batch-128"
                f"  {flops / 1e9:5.2f} GFLOP  {rate:6.1f} GFLOP/s  {rate / peak:5.1%} of peak"
            )


if __name__ == "__main__":
    main()
