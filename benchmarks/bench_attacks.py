"""Speed of our ℓ∞ PGD-10 on the cpu-profile model (plain script, not a timed test).

Prints, for the cpu profile's VGG-16 (Fashion-MNIST widths, 1×32×32 inputs, untrained
weights — speed does not depend on them) on one batch:
  * PGD-10 examples/s;
  * our PGD-10 time / the bare cost of 10 forward + backward-to-input passes on the same
    batch (the floor any PGD-10 must pay; goal ≤ 1.10);
  * our PGD-10 time / torchattacks' PGD at equal settings (ε, α = ε/√k, k = 10, no random
    start).
Each figure is the median of ``--repeats`` interleaved runs after one warm-up.

Usage: ``python benchmarks/bench_attacks.py [--batch 128] [--repeats 5] [--threads N]``
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import torchattacks

    from neurosens.attacks import pgd
    from neurosens.core.config import resolve
    from neurosens.models import build_model

    config = resolve("cpu")
    model = build_model(config).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(
        (args.batch, config.in_channels, config.image_size, config.image_size), generator=g
    )
    y = torch.randint(0, config.num_classes, (args.batch,), generator=g)
    eps, k = config.eps_linf, config.pgd_steps
    alpha = eps / math.sqrt(k)

    def bare() -> None:
        for _ in range(k):
            xg = x.clone().requires_grad_(True)
            loss = F.cross_entropy(model(xg), y, reduction="sum")
            torch.autograd.grad(loss, xg)

    def ours() -> None:
        pgd(model, x, y, eps=eps, steps=k)

    ta = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=k, random_start=False)

    def theirs() -> None:
        ta(x, y)

    fns = {"bare": bare, "ours": ours, "torchattacks": theirs}
    for f in fns.values():  # warm-up
        f()
    times: dict[str, list[float]] = {n: [] for n in fns}
    for _ in range(args.repeats):
        for n, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[n].append(time.perf_counter() - t0)
    med = {n: statistics.median(v) for n, v in times.items()}
    print(
        f"model: {config.arch} widths {config.widths}, input {tuple(x.shape[1:])}, "
        f"batch {args.batch}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print(
        f"median of {args.repeats} runs (s): " + ", ".join(f"{n} {v:.3f}" for n, v in med.items())
    )
    print(f"PGD-10 examples/s: {args.batch / med['ours']:.1f}")
    print(f"ours / bare 10×(forward+backward): {med['ours'] / med['bare']:.3f}  (goal ≤ 1.10)")
    print(f"ours / torchattacks PGD: {med['ours'] / med['torchattacks']:.3f}")


if __name__ == "__main__":
    main()
