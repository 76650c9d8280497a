"""Device and precision selection: the CUDA-only paths stay closed on a CPU machine."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
import torch

from neurosens.core.runtime import Runtime, runtime, select_device


def test_cpu_machine_selects_cpu_in_fp32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device() == torch.device("cpu")
    rt = runtime()
    assert rt.device.type == "cpu" and rt.precision == "fp32"
    assert rt.amp_dtype is None and rt.scaler is None  # no autocast, no GradScaler
    assert isinstance(rt.autocast(), contextlib.nullcontext)
    assert rt.memory_format == torch.channels_last
    assert runtime(memory_format="contiguous").memory_format == torch.contiguous_format


def test_mixed_precision_needs_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for p in ("bf16", "fp16"):
        with pytest.raises(ValueError, match="needs a CUDA device"):
            runtime(p)
    with pytest.raises(ValueError, match="valid are auto, fp32, bf16, fp16, fp64"):
        runtime("int8")
    with pytest.raises(ValueError, match="valid are channels_last, contiguous"):
        runtime(memory_format="nhwc")
    assert runtime("fp64").dtype == torch.float64


def test_cuda_device_follows_local_rank_without_touching_cuda(monkeypatch):
    """Only the device *name* is derived; nothing is allocated (this machine has no GPU)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert select_device() == torch.device("cuda", 3)
    assert select_device("cpu") == torch.device("cpu")


def test_import_chooses_no_device():
    """Importing the training, evaluation and distributed modules asks nothing of CUDA."""
    code = (
        "import torch\n"
        "calls = []\n"
        "torch.cuda.is_available = lambda: calls.append(1) or False\n"
        "import neurosens.train.loop, neurosens.evaluation.harness, neurosens.core.distributed\n"
        "import neurosens.core.runtime, neurosens.study.flops\n"
        "assert calls == [], calls\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_fp32_step_is_a_plain_backward_and_step():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    ref = torch.nn.Linear(3, 2)
    ref.load_state_dict(lin.state_dict())
    x = torch.randn(4, 3)
    for m, step in ((lin, Runtime().backward_step), (ref, None)):
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        with Runtime().autocast():
            loss = m(x).pow(2).sum()
        if step is None:
            loss.backward()
            opt.step()
        else:
            step(loss, opt)
    assert torch.equal(lin.weight, ref.weight)
    assert Runtime().state_dict() == {}
