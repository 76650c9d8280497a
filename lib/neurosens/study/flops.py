"""Compute cost of the study from FLOP counts, and GPU-hours estimated from them.

Counting: :func:`count_macs` runs one forward pass with hooks on every ``nn.Conv2d`` and
``nn.Linear`` and adds their multiply-accumulates (MACs; a conv: output elements ×
C_in/groups × k_h × k_w; a linear layer: output elements × in_features). BatchNorm, ReLU,
pooling and additions are left out (a few % of a CNN's FLOPs). One forward of one image
costs F = 2 · MACs FLOPs.

Cost model, in units of F per image (stated so that it can be checked):

==========================  ====================================================================
pass                        cost
==========================  ====================================================================
training step               3F (forward + input-gradient + weight-gradient backward)
attack iteration            2F (forward + input-gradient backward; autograd skips weight grads)
Vanilla                     3F per training image
PAT, ALP, SNS family        2k·F (PGD-k on x) + 2·3F (one step on [x; x'])  = 26F at k = 10
CAS                         2k·F + 3F                                       = 23F
ANP                         3F × pro_num, averaged over the schedule        =  6F (1,3,3,3,1)
validation per epoch        n_val · (1 + 2k + 1)F
SNS neuron selection        sns_select_n · (2k + 2)F (PGD + clean and adversarial probe passes)
evaluation, per image       clean 1, FGSM 3, PGD-k 2k+1, noise 1 per severity,
                            C&W 2·binary·steps, SPSA steps·samples, NAttack steps·samples,
                            AutoAttack APGD-CE 2·100 + APGD-T 2·9·100 + FAB-T 3·9·100
                            + Square queries (upper bounds: no early stops)
==========================  ====================================================================

SNS fine-tunes only its top layers, so its backward is cheaper than counted (an upper
bound). GPU-hours: FLOPs / (efficiency × peak). The default assumption is an NVIDIA A100
at 30% of its dense peak, with the training step in bf16 autocast (312 TFLOP/s peak) and
every attack pass in fp32 with TF32 convolutions (156 TFLOP/s, PyTorch's default for
cuDNN convolutions); the pessimistic column puts everything at the plain fp32 peak
(19.5 TFLOP/s). These are estimates from FLOP counts, not measurements.

    python -m neurosens flops                # the table of book/reproduce.md
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from neurosens.core.config import resolve
from neurosens.defences import get_method
from neurosens.defences.anp import PHASE_BOUNDS
from neurosens.models import build_model
from neurosens.store.artifacts import ArtifactStore
from neurosens.study.zoo import training_order
from neurosens.train.setup import prepare_run

if TYPE_CHECKING:
    from neurosens.core.config import Config

__all__ = [
    "A100",
    "GPU",
    "count_macs",
    "epoch_flops",
    "eval_flops_per_image",
    "model_macs",
    "run_flops",
    "train_passes",
]


@dataclass(frozen=True)
class GPU:
    """Peak dense throughput (FLOP/s) and the efficiency assumed for this workload."""

    name: str
    bf16: float
    tf32: float
    fp32: float
    efficiency: float = 0.30

    def hours(self, train_flops: float, attack_flops: float, pessimistic: bool = False) -> float:
        """GPU-hours: training steps at the bf16 peak, attack passes at the TF32 peak (or
        everything at the plain fp32 peak), each × ``efficiency``."""
        if pessimistic:
            return (train_flops + attack_flops) / (self.efficiency * self.fp32) / 3600
        t = train_flops / (self.efficiency * self.bf16) + attack_flops / (
            self.efficiency * self.tf32
        )
        return t / 3600


#: NVIDIA A100 (SXM) dense peaks from its datasheet.
A100 = GPU("A100", bf16=312e12, tf32=156e12, fp32=19.5e12)


def count_macs(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """MACs of every Conv2d and Linear module for one forward of ``x``, per image.

    Returns ``{module path: MACs per image}`` in call order (a module called twice counts
    twice). ``x`` is (B, C, H, W); the model runs in eval mode under ``no_grad`` and its
    mode is restored.
    """
    names = {m: n for n, m in model.named_modules()}
    out: dict[str, int] = {}
    b = x.shape[0]

    def hook(m: nn.Module, _inp: Any, y: torch.Tensor) -> None:
        if isinstance(m, nn.Conv2d):
            k = (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            k = m.in_features
        name = names[m]
        out[name] = out.get(name, 0) + y.numel() // b * k

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return out


def model_macs(config: Config) -> int:
    """MACs of one forward pass of one image of ``config``'s model (CAS heads included)."""

    model = build_model(config)
    x = torch.zeros(1, config.in_channels, config.image_size, config.image_size)
    return sum(count_macs(model, x).values())


def _anp_mean_passes(config: Config) -> float:

    n = len(config.anp_pro_num)
    bounds = PHASE_BOUNDS if n == len(PHASE_BOUNDS) else tuple(i / n for i in range(n))
    widths = [b - a for a, b in zip(bounds, (*bounds[1:], 1.0), strict=True)]
    return sum(w * p for w, p in zip(widths, config.anp_pro_num, strict=True))


def train_passes(config: Config) -> tuple[float, float]:
    """(training-step, attack) cost per training image in units of F (see module doc)."""
    k = config.pgd_steps
    m = config.method
    if m == "vanilla":
        return 3.0, 0.0
    if m == "cas":
        return 3.0, 2.0 * k
    if m == "anp":
        return 3.0 * _anp_mean_passes(config), 0.0
    return 6.0, 2.0 * k  # PAT, ALP, SNS family: PGD-k, then one step on [x; x']


def _n_train(config: Config) -> int:
    full = {"fashion_mnist": 60_000, "cifar10": 50_000, "imagenet200": 100_000, "synthetic": 1024}
    n = full[config.dataset]
    return min(config.n_train, n) if config.n_train else n


def epoch_flops(config: Config, f: float) -> tuple[float, float]:
    """(training-step FLOPs, attack FLOPs) of one epoch, validation included."""
    n = _n_train(config) // config.batch_size * config.batch_size
    t, a = train_passes(config)
    val = config.n_val * (2 * config.pgd_steps + 2)
    dyn = config.sns_dyn_n * (2 * config.pgd_steps + 2) if config.method == "sns_dyn" else 0
    return n * t * f, (n * a + val + dyn) * f


def run_flops(config: Config, f: float | None = None) -> tuple[float, float]:
    """(training-step FLOPs, attack FLOPs) of one whole run (SNS: its selection included,
    not the vanilla model it starts from)."""

    f = 2.0 * model_macs(config) if f is None else f
    method = get_method(config)
    t, a = epoch_flops(config, f)
    epochs = method.epochs()
    sel = 0.0
    if method.finetune and config.method in ("sns", "sns_dyn"):
        n = config.sns_select_n or _n_train(config)
        sel = n * (2 * config.pgd_steps + 2) * f
    return epochs * t, epochs * a + sel


#: Table III's attacks (and AutoAttack, beyond the paper) as the study evaluates a model.
SUITE = ("clean", "fgsm", "pgd_linf", "pgd_l2", "cw", "spsa", "nattack", "noise", "autoattack")


def eval_flops_per_image(config: Config, attack: str) -> float:
    """Cost of one attacked image in units of F (upper bound, no early stops)."""
    k = config.pgd_steps
    aa = config.aa_attacks or ("apgd-ce", "apgd-t", "fab-t", "square")
    aa_cost = {
        "apgd-ce": 2 * 100,
        "apgd-dlr": 2 * 100,
        "apgd-t": 2 * 9 * 100,
        "fab": 3 * 100,
        "fab-t": 3 * 9 * 100,
        "square": config.square_queries,
    }
    return {
        "clean": 1,
        "fgsm": 3,
        "pgd_linf": 2 * k + 1,
        "pgd_l2": 2 * k + 1,
        "noise": 5,
        "cw": 2 * config.cw_binary_steps * config.cw_steps,
        "spsa": config.spsa_steps * config.spsa_samples,
        "nattack": config.nattack_steps * config.nattack_samples,
        "autoattack": sum(aa_cost[a] for a in aa),
    }[attack]


def suite_flops(config: Config, f: float, attacks: Iterable[str] = SUITE) -> float:
    """Attack FLOPs of evaluating one model under ``attacks`` with the profile's N."""
    n = {
        "cw": config.n_eval_cw,
        "spsa": config.n_eval_blackbox,
        "nattack": config.n_eval_blackbox,
        "autoattack": config.n_eval_aa,
    }
    return sum(eval_flops_per_image(config, a) * n.get(a, config.n_eval) * f for a in attacks)


# -- the table of book/reproduce.md --------------------------------------------------------------


def profile_estimate(profile: str, gpu: GPU = A100, **overrides: Any) -> dict[str, Any]:
    """GPU-hour estimates of a profile: one run per method, the study's zoo, evaluation."""

    base = resolve(profile, **overrides)
    macs = model_macs(base)
    f = 2.0 * macs
    per_method = {}
    for m in ("vanilla", "pat", "alp", "sns", "cas", "anp"):
        c = base.replace(method=m)
        try:
            prepare_run(c)  # layer names of SNS/CAS must exist in this architecture
        except (KeyError, ValueError):
            continue  # e.g. SNS and CAS layers are defined for VGG-16 and ResNet-18 only
        macs_m = model_macs(c) if m == "cas" else macs
        t, a = run_flops(c, 2.0 * macs_m)
        per_method[m] = (gpu.hours(t, a), gpu.hours(t, a, pessimistic=True), t + a)
    zoo = training_order(profile) if not overrides else []
    zt = za = 0.0
    for c in zoo:
        fm = 2.0 * model_macs(c) if c.method == "cas" else f
        t, a = run_flops(c, fm)
        zt, za = zt + t, za + a
    ev = suite_flops(base, f)
    return {
        "profile": profile,
        "arch": base.arch,
        "gmacs": macs / 1e9,
        "per_method": per_method,
        "zoo_runs": len(zoo),
        "zoo_hours": (gpu.hours(zt, za), gpu.hours(zt, za, pessimistic=True)),
        "eval_hours": (gpu.hours(0.0, ev), gpu.hours(0.0, ev, pessimistic=True)),
        "eval_flops": ev,
    }


def cpu_measurements(store: Any = None) -> list[dict[str, Any]]:
    """Achieved FLOP/s of the committed cpu-profile runs on the machine that trained them
    (best epoch of each run's ``history.json``: the machine was shared)."""

    store = store or ArtifactStore()
    rows, macs = [], {}
    for run in store.runs():
        if not store.exists(run):
            continue
        c = store.load_config(run)
        if c.profile != "cpu":
            continue
        key = (c.arch, c.widths, c.method == "cas")
        macs.setdefault(key, model_macs(c))
        hist = store.read_json(run, "history.json")
        t, a = train_passes(c)
        best = max(h["images_per_second"] for h in hist)
        gflops = best * (t + a) * 2 * macs[key] / 1e9
        rows.append({"run": run, "method": c.method, "images_per_second": best, "gflops": gflops})
    return rows


def cpu_rate(rows: list[dict[str, Any]]) -> float | None:
    """Median achieved FLOP/s of the non-SNS cpu runs (SNS trains only its top layers, so
    the cost model over-counts it)."""
    rates = sorted(r["gflops"] for r in rows if not r["method"].startswith("sns"))
    return rates[len(rates) // 2] * 1e9 if rates else None


def markdown_table(gpu: GPU = A100) -> str:
    """The estimate table of book/reproduce.md (markdown)."""
    rows = cpu_measurements()
    cpu = cpu_rate(rows)
    head = (
        "| profile | what | GMACs/img | PFLOP | A100 GPU-h (bf16 train, TF32 attacks) "
        "| A100 GPU-h (all fp32) | this CPU, days |\n|---|---|---|---|---|---|---|"
    )
    lines = [head]

    def cpu_days(flops: float) -> str:
        return f"{flops / cpu / 86400:,.0f}" if cpu else "–"

    for profile, over in (("paper", {}), ("paper", {"arch": "inception_v3"}), ("imagenet200", {})):
        e = profile_estimate(profile, gpu, **over)
        label = f"`{profile}` {e['arch']}"
        for m, (h, hp, fl) in e["per_method"].items():
            lines.append(
                f"| {label} | {m}, one run | {e['gmacs']:.2f} | {fl / 1e15:,.0f} | {h:,.2f} "
                f"| {hp:,.1f} | {cpu_days(fl)} |"
            )
        if e["zoo_runs"]:
            h, hp = e["zoo_hours"]
            fl = _zoo_flops(profile)
            lines.append(
                f"| {label} | the study's zoo ({e['zoo_runs']} runs) | | {fl / 1e15:,.0f} "
                f"| {h:,.0f} | {hp:,.0f} | {cpu_days(fl)} |"
            )
        h, hp = e["eval_hours"]
        fl = e["eval_flops"]
        lines.append(
            f"| {label} | evaluation suite, one model | | {fl / 1e15:,.1f} | {h:,.2f} "
            f"| {hp:,.2f} | {cpu_days(fl)} |"
        )
    note = (
        f"\nAssumption: {gpu.name} at {gpu.efficiency:.0%} of its dense peak — training steps "
        f"in bf16 ({gpu.bf16 / 1e12:.0f} TFLOP/s), attack passes in fp32 with TF32 "
        f"convolutions ({gpu.tf32 / 1e12:.0f} TFLOP/s); all-fp32 column at "
        f"{gpu.fp32 / 1e12:.1f} TFLOP/s."
    )
    if cpu:
        note += (
            f" This CPU: {cpu / 1e9:.0f} GFLOP/s, measured (median of the cpu runs' best epochs)."
        )
    return "\n".join(lines) + "\n" + note


def _zoo_flops(profile: str) -> float:

    total = 0.0
    f = None
    for c in training_order(profile):
        if f is None:
            f = 2.0 * model_macs(c.replace(method="vanilla"))
        t, a = run_flops(c, 2.0 * model_macs(c) if c.method == "cas" else f)
        total += t + a
    return total
