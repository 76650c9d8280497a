"""Cost of the oneDNN 1×1 workaround (:func:`neurosens.core.runtime.to_memory_format`).

One fwd+bwd of a batch of 128 (fp32, 1×32×32 inputs), timed alternately in one run so
the ratios compare like with like on a shared machine (fastest of the repetitions):

- the cpu-profile VGG-16: plain ``model.to(memory_format=torch.channels_last)`` against
  :func:`to_memory_format` (no convolution is affected: the ratio shows the check's cost);
- a small ResNet-18 (widths 8, 16, 32, 64; its l2 and l3 shortcuts are affected): the
  workaround (only those shortcuts in NCHW) against the whole model in NCHW, the other
  way to avoid the bug. ``--unsafe`` adds plain channels_last there too — the crashing
  path: only on a CPU where it was seen to pass at 32×32 (AVX-512 kernels).

    .venv/bin/python benchmarks/bench_onednn_workaround.py [--unsafe]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from neurosens import resolve
from neurosens.core.runtime import onednn_1x1_affected, to_memory_format
from neurosens.models import VGG16, ResNet18

CL, NCHW = torch.channels_last, torch.contiguous_format


def plain(model: nn.Module, fmt: torch.memory_format) -> nn.Module:
    return model.to(memory_format=fmt)


def timer(build: Callable[[], nn.Module], prepare, fmt, batch: int = 128) -> Callable[[], float]:
    torch.manual_seed(0)
    model = prepare(build(), fmt).train()
    x = torch.rand(batch, 1, 32, 32).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))

    def step() -> float:
        t = time.perf_counter()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        return time.perf_counter() - t

    step()
    step()  # warm-up: oneDNN builds its kernels on first use
    return step


def compare(name: str, variants: dict[str, Callable[[], float]], reps: int = 20) -> None:
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(reps):
        for k, step in variants.items():
            best[k] = min(best[k], step())
    ref = next(iter(best.values()))
    for k, t in best.items():
        print(f"{name:<28} {k:<40} {t * 1e3:7.1f} ms  ratio {t / ref:5.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--unsafe", action="store_true", help="also time plain channels_last ResNet")
    args = p.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    widths = resolve("cpu").widths

    def vgg() -> nn.Module:
        return VGG16(widths, 1, 10)

    assert not any(onednn_1x1_affected(m) for m in vgg().modules())
    compare(
        "cpu-profile VGG-16",
        {
            "channels_last, plain .to()": timer(vgg, plain, CL),
            "channels_last, to_memory_format": timer(vgg, to_memory_format, CL),
        },
    )

    def resnet() -> nn.Module:
        return ResNet18((8, 16, 32, 64), in_channels=1)

    n = sum(onednn_1x1_affected(m) for m in resnet().modules())
    variants = {
        f"to_memory_format ({n} conv{'s' * (n != 1)} in NCHW)": timer(resnet, to_memory_format, CL),
        "whole model NCHW": timer(resnet, plain, NCHW),
    }
    if args.unsafe:
        variants["plain channels_last (unsafe)"] = timer(resnet, plain, CL)
    compare("ResNet-18 (8,16,32,64)", variants)


if __name__ == "__main__":
    main()
