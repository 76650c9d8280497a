"""oneDNN's channels_last 1×1 strided backward-weights bug never reaches the library.

Each case runs ``tests/core/onednn_1x1_repro.py`` (the reduced reproduction through
:func:`neurosens.core.runtime.to_memory_format`) in a subprocess, so that a crash or a hang,
the bug's usual forms, fails this one test with a clear message instead of the whole run.
``ONEDNN_MAX_CPU_ISA=AVX2`` makes oneDNN use its AVX2 kernels (where the bug shows at
32×32) on an AVX-512 machine; 64×64 breaks the AVX-512 kernels too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from neurosens.core.runtime import nchw_strides, onednn_1x1_affected, runtime, to_memory_format
from neurosens.models import VGG16, ResNet18

REPRO = Path(__file__).with_name("onednn_1x1_repro.py")
HANG_S = 60  # the script takes ~5 s; the bug hangs forever


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("isa", [None, "AVX2"], ids=["isa-as-set", "isa-AVX2"])
def test_library_layout_survives_the_onednn_1x1_reproduction(isa, size):
    env = dict(os.environ)
    if isa is not None:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    cmd = [sys.executable, str(REPRO), "--size", str(size)]
    cap = env.get("ONEDNN_MAX_CPU_ISA", "(unset)")
    what = f"ONEDNN_MAX_CPU_ISA={cap} {REPRO.name} --size {size}"
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_S)
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"{what} hung for {HANG_S} s: oneDNN's channels_last 1×1 stride-2 backward-weights "
            "bug reached a library-prepared model (see neurosens.core.runtime, oneDNN workaround)"
        )
    if r.returncode < 0:
        pytest.fail(
            f"{what} was killed by {signal.Signals(-r.returncode).name}: the oneDNN 1×1 bug "
            f"reached a library-prepared model\n{r.stderr[-2000:]}"
        )
    assert r.returncode == 0, f"{what} failed:\n{r.stdout}\n{r.stderr[-2000:]}"
    assert r.stdout.count("ok ") == 2


def test_affected_convolutions_are_the_strided_1x1_ones_with_few_channels():
    assert onednn_1x1_affected(nn.Conv2d(4, 8, 1, stride=2))
    assert onednn_1x1_affected(nn.Conv2d(15, 8, 1, stride=(1, 2)))
    assert not onednn_1x1_affected(nn.Conv2d(16, 8, 1, stride=2))  # a full channel block
    assert not onednn_1x1_affected(nn.Conv2d(4, 8, 1, stride=1))  # no unit-stride copy
    assert not onednn_1x1_affected(nn.Conv2d(4, 8, 3, stride=2))
    assert not onednn_1x1_affected(nn.Linear(4, 8))
    small = ResNet18((4, 8, 16, 32), in_channels=1)
    hit = [n for n, m in small.named_modules() if onednn_1x1_affected(m)]
    assert hit == ["l2b1.shortcut.0", "l3b1.shortcut.0"]  # l4's shortcut reads 16 channels
    assert not any(onednn_1x1_affected(m) for m in ResNet18().modules())  # paper widths
    assert not any(onednn_1x1_affected(m) for m in VGG16((8,) * 13, 1).modules())


def test_to_memory_format_keeps_only_affected_convolutions_in_nchw():
    torch.manual_seed(0)
    model = ResNet18((4, 4, 16, 16), in_channels=1).eval()
    ref = ResNet18((4, 4, 16, 16), in_channels=1).eval()
    ref.load_state_dict(model.state_dict())
    to_memory_format(model, torch.channels_last)
    to_memory_format(model, torch.channels_last)  # idempotent: one hook per module
    cl = torch.channels_last
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            affected = onednn_1x1_affected(m)
            assert nchw_strides(m.weight) == affected, m
            assert len(m._forward_pre_hooks) == affected
    short = model.l2b1.shortcut[0]
    seen = []
    short.register_forward_pre_hook(lambda _m, a: seen.append(nchw_strides(a[0])))
    x = torch.rand(2, 1, 32, 32).contiguous(memory_format=cl)
    model.to(memory_format=cl)  # a later plain .to() is undone by the hook
    out = model(x)
    assert seen == [True] and nchw_strides(short.weight)
    torch.testing.assert_close(out, ref(x.contiguous()), rtol=1e-4, atol=1e-5)


def test_runtime_prepares_models_through_the_workaround():
    model = ResNet18((4, 4, 4, 4), in_channels=1)
    runtime("fp32", "cpu").prepare_model(model)
    assert nchw_strides(model.l2b1.shortcut[0].weight)
    assert not nchw_strides(model.l2b1.c1.weight)
    runtime("fp64", "cpu", "contiguous").prepare_model(model)
    assert model.l2b1.c1.weight.dtype == torch.float64 and nchw_strides(model.l2b1.c1.weight)


def test_nchw_strides_reads_the_strides_not_is_contiguous():
    w = torch.zeros(8, 4, 1, 1)
    cl = w.to(memory_format=torch.channels_last)  # (4, 1, 4, 4); .contiguous() keeps w
    assert cl.is_contiguous() and not nchw_strides(cl) and nchw_strides(w)
    assert nchw_strides(torch.zeros(3, 2)) and not nchw_strides(torch.zeros(2, 3).t())
