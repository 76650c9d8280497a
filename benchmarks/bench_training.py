"""Per-epoch training cost of ALP, SNS, CAS and ANP relative to PAT, on the cpu profile.

What it measures (``python benchmarks/bench_training.py [--batches 30]``):

* the machine's fp32 GEMM peak, from a large ``torch.mm`` (2048×2048, best of several);
* for each method, the wall time of ``--batches`` training steps (``Method.step``: the
  training attack, the forward/backward and the optimiser step, exactly as the trainer
  runs them, channels_last) on Fashion-MNIST batches of 128 with the cpu-profile VGG-16,
  extrapolated to one epoch (⌊60000/128⌋ = 468 batches). Methods are timed in interleaved
  chunks of 5 batches and the fastest chunk is kept, so that a burst of background load
  does not land on one method only. Per-epoch validation, the
  one-off SNS neuron selection and checkpoint writes are not included;
* each method's time divided by PAT's (goal for SNS: ≤ 1.15) and its training throughput
  as a fraction of the GEMM peak, counting model FLOPs per batch as: forward F per image,
  an input-gradient backward ≈ F (PGD steps), a full backward ≈ 2F. PAT/ALP/SNS:
  10·2F·B + 3F·2B; CAS: 10·2F·B + 3F·B; ANP: passes·3F·B. SNS is counted like PAT (its
  frozen bottom layers skip weight gradients, so this slightly overstates its work).

ANP's cost depends on its schedule phase (1 pass per batch, or pro_num = 3 passes with
noise); both are timed and weighted by the fraction of training each covers.

Hardware: whatever runs it (2 shared CPU cores when first written; other jobs running at
the same time make the figures noisy — compare ratios, not absolute times).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from neurosens import resolve
from neurosens.core.runtime import to_memory_format
from neurosens.data.images import train_set
from neurosens.defences import Context, get_method
from neurosens.defences.anp import PHASE_BOUNDS
from neurosens.models import build_model
from neurosens.train.freeze import freeze_except, set_train_mode
from neurosens.train.setup import make_optimizer


def gemm_peak(n: int = 2048, reps: int = 5) -> float:
    """Best fp32 FLOP/s of an n×n @ n×n torch.mm."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def forward_flops(model: nn.Module, shape: tuple[int, ...]) -> float:
    """FLOPs (2 × multiply-adds) of convolutions and linear layers for one image."""
    total = 0.0

    def hook(m: nn.Module, _i: object, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total += 2 * k * out.numel()
        elif isinstance(m, nn.Linear):
            total += 2 * m.in_features * m.out_features

    hs = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *shape))
    for h in hs:
        h.remove()
    return total


class Runner:
    """One method's model, optimiser and batch stream, stepped a few batches at a time."""

    def __init__(self, method_name: str, progress: float = 0.0) -> None:
        config = resolve("cpu", method=method_name)
        self.method = get_method(config)
        torch.manual_seed(0)
        self.model = build_model(config)
        self.method.check(self.model)
        to_memory_format(self.model, torch.channels_last)
        if self.method.finetune:  # timing does not depend on which neurons: a random 10%
            from neurosens.defences.sns import SNSRand

            self.method.neurons = SNSRand(config.replace(method="sns_rand")).select(self.model)
        params = freeze_except(self.model, self.method.trainable_layers(self.model))
        self.opt = make_optimizer(config, params, self.method.lr())
        set_train_mode(self.model)
        g = torch.Generator().manual_seed(0)
        self.ctx = Context(config, epochs=1, progress=progress, attack_generator=g, verbose=False)
        data = train_set(config)
        self.per_epoch = len(data) // config.batch_size
        self.batches = data.batches(config.batch_size, shuffle=True, generator=g, drop_last=True)
        self.chunks: list[float] = []  # seconds per batch of each timed chunk

    def run(self, n: int, timed: bool = True) -> None:
        t = time.perf_counter()
        for _ in range(n):
            x, y = next(self.batches)
            x = x.contiguous(memory_format=torch.channels_last)
            self.method.step(self.model, x, y, self.opt, self.ctx)
        if timed:
            self.chunks.append((time.perf_counter() - t) / n)

    def seconds(self) -> float:
        """Fastest chunk: the least disturbed by other jobs on a shared machine."""
        return min(self.chunks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=30, help="timed batches per method")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = resolve("cpu")
    peak = gemm_peak()
    flops = forward_flops(build_model(config), (1, config.image_size, config.image_size))
    b, k = config.batch_size, config.pgd_steps
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"VGG-16 cpu forward: {flops / 1e6:.1f} MFLOP per image; batch {b}")
    print(
        f"timing {args.batches} batches per method in interleaved chunks of 5 (fastest chunk "
        "kept), extrapolated to one epoch\n"
    )

    work = {
        "pat": k * 2 * flops * b + 3 * flops * 2 * b,
        "alp": k * 2 * flops * b + 3 * flops * 2 * b,
        "sns": k * 2 * flops * b + 3 * flops * 2 * b,
        "cas": k * 2 * flops * b + 3 * flops * b,
    }
    # ANP: phases 0 and 4 take 1 plain pass, phases 1–3 take pro_num noisy passes
    c = resolve("cpu", method="anp")
    bounds = (*PHASE_BOUNDS, 1.0)
    frac = [bounds[i + 1] - bounds[i] for i in range(5)]
    runners = {m: Runner(m) for m in work}
    runners["anp_plain"] = Runner("anp", progress=0.1)
    runners["anp_noisy"] = Runner("anp", progress=0.55)
    for r in runners.values():
        r.run(2, timed=False)  # warm-up
    # interleaved chunks: every method sees the same background load over time
    chunk = 5
    for _ in range(max(args.batches // chunk, 1)):
        for r in runners.values():
            r.run(chunk)
    peak = max(peak, gemm_peak())
    rows = {m: (runners[m].seconds(), runners[m].per_epoch, work[m]) for m in work}
    plain_t, noisy_t = runners["anp_plain"].seconds(), runners["anp_noisy"].seconds()
    sec = sum(f * (noisy_t if c.anp_eps[i] > 0 else plain_t) for i, f in enumerate(frac))
    passes = sum(f * c.anp_pro_num[i] for i, f in enumerate(frac))
    rows["anp"] = (sec, runners["anp_plain"].per_epoch, passes * 3 * flops * b)

    print(f"fp32 GEMM peak (2048² torch.mm, best before/after): {peak / 1e9:.1f} GFLOP/s")
    pat = rows["pat"][0]
    print(f"{'method':<8}{'s/batch':>9}{'min/epoch':>11}{'× PAT':>8}{'GFLOP/s':>9}{'% peak':>8}")
    for m, (sec, nb, w) in rows.items():
        rate = w / sec
        print(
            f"{m:<8}{sec:>9.3f}{sec * nb / 60:>11.1f}{sec / pat:>8.2f}"
            f"{rate / 1e9:>9.1f}{100 * rate / peak:>7.1f}%"
        )
    ok = rows["sns"][0] / pat <= 1.15
    print(f"\nSNS / PAT = {rows['sns'][0] / pat:.2f} (goal ≤ 1.15: {'met' if ok else 'NOT met'})")
    print(f"ANP: {plain_t:.3f} s/batch plain, {noisy_t:.3f} s/batch noisy (schedule-weighted)")


if __name__ == "__main__":
    main()
