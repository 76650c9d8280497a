"""Benchmark: cost of neuron sensitivity (Eq. 1) relative to the attack that feeds it.

For the cpu-profile model (slim VGG-16 on Fashion-MNIST 1×32×32) on the first 1000 test
images with ℓ∞ PGD-10 pairs (ε = config ``eps_linf``, α = ε/√10), it times

* ``pgd``: the attack alone (batches of 256);
* ``fwd2``: two plain forward passes (x and x') without hooks;
* ``sens``: :func:`neuron_sensitivity` of all 13 conv and 13 ReLU layers from stored pairs;
* ``total``: :func:`sensitivity_under_attack` (attack + sensitivities, x' never stored);

and prints ``total / (pgd + fwd2)`` (goal ≤ 1.10) and ``sens / fwd2``, plus the peak
resident memory of each phase above the pre-phase level (sampled every 2 ms from
/proc/self/statm) and the accumulator state. Phases are interleaved for ``--repeats``
rounds (the CPU is shared) and each timing is its best round, wall clock and CPU time.
The model is untrained (``--train-steps 0``, the default) or trained for a few SGD steps.

Run: ``.venv/bin/python benchmarks/bench_sensitivity.py [--n 1000] [--train-steps 0]``.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

import neurosens
from neurosens.attacks import pgd
from neurosens.data.images import load_dataset
from neurosens.data.imageset import first_n
from neurosens.measures.sensitivity import (
    SensitivityAccumulator,
    neuron_sensitivity,
    sensitivity_under_attack,
)
from neurosens.models import build_model
from neurosens.models.probe import capture

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRSS:
    """Peak resident set size while the block runs (sampling thread)."""

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss())

    @property
    def extra_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def measure(fn: Callable[[], Any]) -> tuple[float, float, Any, float]:
    """(wall s, process CPU s, result, peak extra MB) of one call."""
    with PeakRSS() as p:
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    return dt, dc, out, p.extra_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--train-steps", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    torch.manual_seed(0)
    cfg = neurosens.resolve("cpu")
    model = build_model(cfg)
    if args.train_steps:
        train = load_dataset(cfg.dataset, "train")
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        model.train()
        g = torch.Generator().manual_seed(0)
        for i, (x, y) in enumerate(train.batches(128, shuffle=True, generator=g)):
            if i >= args.train_steps:
                break
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    model.eval()
    ds = first_n(load_dataset(cfg.dataset, "test"), args.n)
    x_all, y_all = ds[slice(0, len(ds))]
    layers = [f"conv{i}" for i in range(1, 14)] + [f"relu{i}" for i in range(1, 14)]
    bs, eps = args.batch_size, cfg.eps_linf

    def attack(m: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pgd(m, x, y, eps, steps=10)

    def run_pgd() -> torch.Tensor:
        return torch.cat(
            [attack(model, x_all[s : s + bs], y_all[s : s + bs]) for s in range(0, len(ds), bs)]
        )

    x_adv = run_pgd()

    def run_fwd2() -> None:
        with torch.no_grad():
            for s in range(0, len(ds), bs):
                model(x_all[s : s + bs])
                model(x_adv[s : s + bs])

    def run_sens() -> dict[str, torch.Tensor]:
        return neuron_sensitivity(model, x_all, x_adv, layers, batch_size=bs)

    def run_probe_two_passes() -> dict[str, torch.Tensor]:  # the alternative design
        acc = SensitivityAccumulator(layers)
        for s in range(0, len(ds), bs):
            _, a = capture(model, x_all[s : s + bs], layers)
            _, b = capture(model, x_adv[s : s + bs], layers)
            acc.update(a, b)
        return acc.result()

    def run_total() -> dict[str, torch.Tensor]:
        return sensitivity_under_attack(model, ds, layers, attack, batch_size=bs, progress=False)

    phases = {
        "pgd": run_pgd,
        "fwd2": run_fwd2,
        "sens": run_sens,
        "two": run_probe_two_passes,
        "total": run_total,
    }
    # phases interleaved round by round (the CPU is shared): best wall and CPU time of each
    wall = {k: float("inf") for k in phases}
    cpu = {k: float("inf") for k in phases}
    mem = {k: 0.0 for k in phases}
    res: dict[str, Any] = {}
    names = list(phases)
    for r in range(args.repeats):
        for k in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
            fn = phases[k]
            dt, dc, res[k], mb = measure(fn)
            wall[k], cpu[k], mem[k] = min(wall[k], dt), min(cpu[k], dc), max(mem[k], mb)
    sens, sens_two, sens_total = res["sens"], res["two"], res["total"]
    t_pgd, t_fwd2, t_sens, t_two, t_total = (wall[k] for k in phases)
    m_pgd, m_fwd2, m_sens, m_two, m_total = (mem[k] for k in phases)
    diff = max(float((sens[n] - sens_total[n]).abs().max()) for n in layers)
    diff_two = max(float((sens[n] - sens_two[n]).abs().max()) for n in layers)
    state = sum(v.numel() * v.element_size() for v in sens.values())
    n_neurons = sum(v.numel() for v in sens.values())

    print(
        f"model: cpu profile VGG-16 widths {cfg.widths}, "
        f"{'untrained' if not args.train_steps else f'{args.train_steps} SGD steps'}"
    )
    print(
        f"pairs: {len(ds)} Fashion-MNIST test images, l-inf PGD-10 eps={eps:.4f}, batch {bs}; "
        f"{len(layers)} layers (13 conv + 13 ReLU), {n_neurons} neurons; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"time pgd                       {t_pgd:8.3f} s   (peak +{m_pgd:.0f} MB)")
    print(f"time two plain forwards (fwd2) {t_fwd2:8.3f} s   (peak +{m_fwd2:.0f} MB)")
    print(
        f"time sensitivity from pairs    {t_sens:8.3f} s   (peak +{m_sens:.0f} MB)  "
        "one cat([x, x']) pass, reduced in hooks"
    )
    print(
        f"time probe + 2 passes (alt.)   {t_two:8.3f} s   (peak +{m_two:.0f} MB)  "
        f"max |diff| {diff_two:.1e}"
    )
    print(
        f"time sensitivity_under_attack  {t_total:8.3f} s   (peak +{m_total:.0f} MB)  "
        f"max |diff| vs stored pairs {diff:.1e}"
    )
    print(
        f"RATIO total / (pgd + fwd2) = {t_total / (t_pgd + t_fwd2):.3f} wall, "
        f"{cpu['total'] / (cpu['pgd'] + cpu['fwd2']):.3f} CPU time   (goal <= 1.10)"
    )
    print(
        f"ratio from components (pgd + sens) / (pgd + fwd2) = "
        f"{(t_pgd + t_sens) / (t_pgd + t_fwd2):.3f} wall, "
        f"{(cpu['pgd'] + cpu['sens']) / (cpu['pgd'] + cpu['fwd2']):.3f} CPU time"
    )
    print(
        f"ratio sensitivity-from-pairs / fwd2 = {t_sens / t_fwd2:.3f} wall, "
        f"{cpu['sens'] / cpu['fwd2']:.3f} CPU time"
    )
    print(
        f"best of {args.repeats} interleaved rounds; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    ratio = neuron_sensitivity(model, x_all, x_adv, layers, ratio=True, batch_size=bs)
    with torch.no_grad():
        acc_clean = float((model(x_all).argmax(1) == y_all).float().mean())
        acc_adv = float((model(x_adv).argmax(1) == y_all).float().mean())
    print(f"accuracy clean {acc_clean:.3f}, under PGD {acc_adv:.3f}")
    print("layer   mean Eq.1 sigma   mean Eq.11 ratio (NaN-free neurons)")
    for i in range(1, 14):
        for n in (f"conv{i}", f"relu{i}"):
            r = ratio[n][~torch.isnan(ratio[n])]
            print(f"{n:7s} {float(sens[n].mean()):12.5f} {float(r.mean()):14.4f}")
    print(
        f"accumulator state {state / 1024:.1f} KiB; peak RSS of the process "
        f"{rss() / 2**20:.0f} MB now"
    )


if __name__ == "__main__":
    main()
