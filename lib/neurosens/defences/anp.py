"""ANP: Adversarial Noise Propagation (Liu et al., arXiv:1909.09034; seed 000).

There is no official release; the algorithm follows the group's code as summarised in
``REFERENCE-NOTES.md`` (``liuaishan/LAT``, DIG-Beihang/AISafety ``EvalBox/Defense/anp.py``),
with the old code's off-by-one fixed (every conv layer's noise is updated, the last too).

Noise is added to the input (layer 0) and to the output z_l of every convolution, before
its BatchNorm:

    z̃_l = z_l + (ε / pro_num) · R_l

Per mini-batch, R_l = 0; then ``pro_num`` passes, each: forward with the current noise,
batch cross-entropy L, backward, optimiser step, then for every layer (per example,
‖·‖₂ over C×H×W; gradient ascent, no sign, no clipping)

    R_l ← α · R_l + ∇_{z_l} L / ‖∇_{z_l} L‖₂

No noise at test time: the hooks exist only inside :meth:`ANP.step`, so the stored model
is a plain network and every evaluation attack is white-box (the old code evaluated with
adversarial examples pre-computed on another model, a transfer attack).

Schedule: AISafety uses, over 120 epochs, ε/α/pro_num = 0/0/1 (epochs 0–39), 0.3/0.7/3
(40–59), 1.0/1.0/3 (60–79), 0.3/0.7/3 (80–99), 0/0/1 (100–119) (``config.anp_eps``,
``anp_alpha``, ``anp_pro_num``). We keep the phase boundaries as fractions of training
(1/3, 1/2, 2/3, 5/6) and apply them per iteration, so every phase is visited in its
proportion even with a budget of a few epochs (per epoch, 4 epochs would skip phases).
The optimiser is the config's (SGD, like PAT), not AISafety's Adam 1e-2, so all methods
share one budget.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neurosens.core.distributed import unwrap
from neurosens.defences.base import Context, Method

__all__ = ["ANP", "PHASE_BOUNDS", "anp_phase"]

#: Phase starts as fractions of training: AISafety's epochs 0, 40, 60, 80, 100 of 120.
PHASE_BOUNDS = (0.0, 40 / 120, 60 / 120, 80 / 120, 100 / 120)


def anp_phase(progress: float, n_phases: int = 5) -> int:
    """Index of the schedule phase at ``progress`` ∈ [0, 1] of training.

    Five phases use AISafety's boundaries; any other count splits training evenly.
    """
    if n_phases == len(PHASE_BOUNDS):
        bounds = PHASE_BOUNDS
    else:
        bounds = tuple(i / n_phases for i in range(n_phases))
    return max(i for i, b in enumerate(bounds) if progress >= b - 1e-12)


class _Noise:
    """Forward hooks adding (ε/pro_num)·R_l to each conv output and recording ∇_{z_l} L."""

    def __init__(self, modules: list[nn.Module]) -> None:
        self.modules = modules
        self.coef = 0.0
        self.r: list[torch.Tensor | None] = [None] * len(modules)
        self.z: list[torch.Tensor | None] = [None] * len(modules)
        self.handles: list = []

    def _hook(self, i: int):
        def hook(_m: nn.Module, _inp: object, out: torch.Tensor) -> torch.Tensor:
            if self.r[i] is not None:
                out = out + self.coef * self.r[i]
            if out.requires_grad:
                out.retain_grad()
            self.z[i] = out  # ∇ w.r.t. z̃ equals ∇ w.r.t. z (additive noise)
            return out

        return hook

    def __enter__(self) -> _Noise:
        self.handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self.modules)]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
        self.z = [None] * len(self.modules)


def _unit(g: torch.Tensor) -> torch.Tensor:
    """g / ‖g‖₂ per example over all but the batch dimension."""
    n = g.flatten(1).norm(p=2, dim=1).clamp_min(1e-12)
    return g / n.view(-1, *([1] * (g.dim() - 1)))


class ANP(Method):
    """Adversarial noise propagation into the input and every conv layer (see module doc)."""

    name = "anp"

    def schedule(self, progress: float) -> tuple[float, float, int]:
        """(ε, α, pro_num) at ``progress`` ∈ [0, 1) of training."""
        c = self.config
        i = anp_phase(progress, len(c.anp_eps))
        return c.anp_eps[i], c.anp_alpha[i], c.anp_pro_num[i]

    def step(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        ctx: Context,
    ) -> float:
        eps, alpha, pro_num = self.schedule(ctx.progress)
        rt = ctx.runtime
        if eps == 0:  # plain training passes: no noise to propagate
            total = 0.0
            for _ in range(pro_num):
                with rt.autocast():
                    loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                rt.backward_step(loss, optimizer)
                total += float(loss.detach())
            return total / pro_num
        inner = unwrap(model)  # hooks go on the inner model's convolutions (DDP calls them)
        convs = [inner.get_submodule(inner.layer_names[n]) for n in inner.conv_layers]
        noise = _Noise(convs)
        noise.coef = eps / pro_num
        r_in = torch.zeros_like(x)  # R_0 on the input
        total = 0.0
        with noise:
            for _ in range(pro_num):
                xin = (x + noise.coef * r_in).requires_grad_(True)
                with rt.autocast():
                    loss = F.cross_entropy(model(xin), y)
                optimizer.zero_grad(set_to_none=True)
                rt.backward_step(loss, optimizer)  # fp16 loss scaling cancels in _unit
                total += float(loss.detach())
                with torch.no_grad():
                    r_in = alpha * r_in + _unit(xin.grad)
                    for i, z in enumerate(noise.z):
                        g = _unit(z.grad.float())  # (B, C, H, W)
                        noise.r[i] = g if noise.r[i] is None else alpha * noise.r[i] + g
        return total / pro_num
