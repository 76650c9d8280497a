"""Reproduction of oneDNN's channels_last 1×1 strided backward-weights bug (torch 2.14.1).

See ``neurosens.core.runtime`` (module doc, "oneDNN workaround"). Three fwd+bwd passes of a
1×1 stride-2 convolution with 4 input channels, and of a ResNet-18 at widths (4, 4, 4, 4)
(whose shortcuts are such convolutions), both in channels_last, prepared by the library
(:func:`neurosens.core.runtime.to_memory_format`) or, with ``--raw``, by plain
``.to(memory_format=torch.channels_last)``; the weight gradients are compared with a
float64 NCHW reference. Prints ``ok`` and exits 0, or exits 1 on a wrong gradient; the bug
shows as a hang, a heap-corruption abort or a SIGSEGV instead.

    python tests/core/onednn_1x1_repro.py --size 64                          # library: ok
    python tests/core/onednn_1x1_repro.py --size 64 --raw                    # AVX-512: SIGSEGV
    ONEDNN_MAX_CPU_ISA=AVX2 python tests/core/onednn_1x1_repro.py --raw      # hangs
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch
from torch import nn

from neurosens.core.runtime import to_memory_format
from neurosens.models import ResNet18

TOLERANCE = 1e-3  # float32 against float64; the bug's errors are O(1)–O(100)


def max_grad_error(model: nn.Module, size: int, raw: bool) -> float:
    """Largest |∂L/∂W| error of 3 channels_last fwd+bwd passes against float64 NCHW."""
    ref = copy.deepcopy(model).double()
    cl = torch.channels_last
    if raw:
        model.to(memory_format=cl)
    else:
        to_memory_format(model, cl)
    c_in = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, c_in, size, size, generator=g)  # (B, C, H, W) in [0, 1]
    ref(x.double()).square().sum().backward()
    xc = x.contiguous(memory_format=cl)
    for _ in range(3):
        model.zero_grad(set_to_none=True)
        model(xc).square().sum().backward()
    err = 0.0
    for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
        scale = q.grad.abs().max().clamp_min(1.0)
        err = max(err, ((p.grad.double() - q.grad).abs().max() / scale).item())
        if err > TOLERANCE:
            print(f"wrong gradient of {name}: relative error {err:.2e}")
            return err
    return err


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=32, help="input height and width")
    p.add_argument("--raw", action="store_true", help="plain channels_last, no workaround")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, kernel_size=1, stride=2, bias=False)
    # train mode: BatchNorm normalises by batch statistics (the failing training step)
    resnet = ResNet18((4, 4, 4, 4), in_channels=4, num_classes=10, stem="cifar").train()
    for name, model in (("conv 4→8 1×1 stride 2", conv), ("ResNet-18 (4,4,4,4)", resnet)):
        err = max_grad_error(model, args.size, args.raw)
        if err > TOLERANCE:
            return 1
        print(f"ok {name} at {args.size}×{args.size}: relative error {err:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
