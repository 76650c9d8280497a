"""FLOP counting and the GPU-hour cost model (neurosens.study.flops)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurosens import resolve
from neurosens.study.flops import A100, count_macs, eval_flops_per_image, run_flops, train_passes


@pytest.mark.parametrize("stride, padding, groups", [(1, 1, 1), (2, 0, 1), (1, 1, 4)])
def test_conv_macs_equal_the_formula(stride, padding, groups):
    conv = nn.Conv2d(8, 12, kernel_size=(3, 5), stride=stride, padding=padding, groups=groups)
    x = torch.zeros(3, 8, 17, 13)
    h_out = (17 + 2 * padding - 3) // stride + 1
    w_out = (13 + 2 * padding - 5) // stride + 1
    expected = 12 * h_out * w_out * (8 // groups) * 3 * 5  # per image
    assert count_macs(conv, x) == {"": expected}


def test_linear_and_module_names():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 7))
    macs = count_macs(m, torch.zeros(5, 1, 6, 6))
    assert macs == {"0": 2 * 16 * 9, "2": 32 * 7}
    assert m.training  # mode restored


def test_cost_model_per_method():
    f = 1.0
    assert train_passes(resolve("paper", method="vanilla")) == (3.0, 0.0)
    assert train_passes(resolve("paper", method="pat")) == (6.0, 20.0)
    assert train_passes(resolve("paper", method="cas")) == (3.0, 20.0)
    # ANP: pro_num 1, 3, 3, 3, 1 over 1/3, 1/6, 1/6, 1/6, 1/6 of training → 2 passes
    assert train_passes(resolve("paper", method="anp"))[0] == pytest.approx(6.0)
    c = resolve("paper", method="pat")
    t, a = run_flops(c, f)
    n = 50_000 // 128 * 128
    assert t == pytest.approx(100 * n * 6)
    assert a == pytest.approx(100 * (n * 20 + c.n_val * 22))
    assert eval_flops_per_image(c, "cw") == 2 * 3 * 300
    assert eval_flops_per_image(c, "spsa") == 100 * 512


def test_gpu_hours_assumption():
    # 1 PFLOP of training steps at 30% of 312 TFLOP/s, and of attacks at 30% of 156
    assert A100.hours(1e15, 0) == pytest.approx(1e15 / (0.3 * 312e12) / 3600)
    assert A100.hours(0, 1e15) == pytest.approx(1e15 / (0.3 * 156e12) / 3600)
    assert A100.hours(1e15, 1e15, pessimistic=True) == pytest.approx(2e15 / (0.3 * 19.5e12) / 3600)
