"""Region of interest of a neuron on benign and adversarial images (Figs. 4–7).

Paper: Zhang, Liu et al., IEEE TIP 2021, Section IV-B (visualisation), following Zhou et
al., "Object detectors emerge in deep scene CNNs" (ICLR 2015) and network dissection
(Bau et al., CVPR 2017). For a neuron (channel m of layer l):

1. its top-k (k = 5) benign images: the images with the highest maximum activation
   max_{h,w} F_l^m(x)_{h,w} over the benign set;
2. its activation threshold T_m: the top-0.5% quantile (level 0.995) of F_l^m over every
   position of every benign image (network dissection's T_k);
3. its mask on an image: the activation map upsampled bilinearly to the image size,
   thresholded at T_m; the same T_m is applied to the adversarial twin x' (the untargeted
   attack of the image, ℓ∞ PGD in the paper).

Beyond the paper: the IoU of the benign and adversarial masks of each top image, so that
"sensitive neurons drift, vanilla neurons don't" is a number per neuron group
(:func:`iou_by_group`). IoU of two empty masks is NaN (left out of means).

Memory: the quantile needs every activation value of the selected neurons, i.e.
N × H_l × W_l floats per neuron (about 4 MB per neuron for 1000 images of 32×32).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurosens.attacks.base import Attack, eval_mode
from neurosens.measures.sensitivity import model_device
from neurosens.models.probe import capture

__all__ = [
    "DISSECTION_QUANTILE",
    "RoiResult",
    "activation_masks",
    "iou_by_group",
    "mask_iou",
    "neuron_maps",
    "overlay",
    "region_of_interest",
    "top_activating",
]

DISSECTION_QUANTILE = 0.995


def neuron_maps(
    model: nn.Module, x: torch.Tensor, layer: str, neurons: torch.Tensor
) -> torch.Tensor:
    """Activation maps F_l^m(x) of the chosen neurons: (B, n, h, w) ((B, n, 1, 1) if pooled)."""
    _, acts = capture(model, x, [layer])
    a = acts[layer]
    a = a.reshape(*a.shape[:2], 1, 1) if a.dim() == 2 else a
    return a[:, torch.as_tensor(neurons, dtype=torch.long).to(a.device)]


def top_activating(
    model: nn.Module,
    images: Any,
    layer: str,
    neurons: Sequence[int] | torch.Tensor,
    *,
    k: int = 5,
    quantile: float = DISSECTION_QUANTILE,
    n: int | None = None,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k benign images per neuron and the dissection threshold T_m.

    Args:
        model: model with ``layer_names``; eval mode, mode restored.
        images: an ImageSet (first ``n`` images).
        layer: layer name; neurons are its channels.
        neurons: (n_sel,) channel indices.
        k: images per neuron (5 in the paper).
        quantile: level of T_m over all positions of all images (0.995).

    Returns (image indices (n_sel, k) int64, by descending max activation; T (n_sel,)).
    """
    idx = torch.as_tensor(neurons, dtype=torch.long).flatten()
    total = len(images) if n is None else min(n, len(images))
    if not 1 <= k <= total:
        raise ValueError(f"k must lie in [1, {total}] (the number of images), got {k}")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {quantile}")
    dev = model_device(model)
    peaks, values = [], []
    with eval_mode(model):
        for s in range(0, total, batch_size):
            x, _ = images[slice(s, min(s + batch_size, total))]
            maps = neuron_maps(model, x.to(dev), layer, idx).cpu()  # (B, n_sel, h, w)
            peaks.append(maps.flatten(2).amax(2))  # (B, n_sel)
            values.append(maps.transpose(0, 1).flatten(1))  # (n_sel, B·h·w)
    peak = torch.cat(peaks)  # (N, n_sel)
    vals = torch.cat(values, dim=1)  # (n_sel, N·h·w)
    order = torch.sort(peak.T.double(), dim=1, descending=True, stable=True).indices[:, :k]
    m = vals.shape[1]
    rank = min(m, max(1, int(np.ceil(quantile * m))))
    thresh = vals.kthvalue(rank, dim=1).values  # (n_sel,)
    return order, thresh


def activation_masks(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    neurons: torch.Tensor,
    threshold: torch.Tensor,
) -> torch.Tensor:
    """Masks of the neurons on images x: upsampled (bilinear) maps > T. (B, n, H, W) bool."""
    maps = neuron_maps(model, x.to(model_device(model)), layer, neurons).float()
    up = F.interpolate(maps, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return (up > threshold.to(up.device).view(1, -1, 1, 1)).cpu()


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU |a ∧ b| / |a ∨ b| over the last two dims of bool masks (…, H, W); 0/0 → NaN."""
    inter = (a & b).flatten(-2).sum(-1).double()
    union = (a | b).flatten(-2).sum(-1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), float("nan"))


@dataclass
class RoiResult:
    """Regions of interest of ``neurons`` of ``layer`` on benign images and their twins.

    Shapes (n_sel neurons, k images): image_idx (n_sel, k); threshold (n_sel,);
    x, x_adv (n_sel, k, C, H, W); mask_clean, mask_adv (n_sel, k, H, W) bool; iou (n_sel, k).
    """

    layer: str
    neurons: torch.Tensor
    image_idx: torch.Tensor
    threshold: torch.Tensor
    x: torch.Tensor
    x_adv: torch.Tensor
    mask_clean: torch.Tensor
    mask_adv: torch.Tensor
    iou: torch.Tensor

    def neuron_iou(self) -> torch.Tensor:
        """Mean IoU per neuron over its k images (n_sel,) (NaN-aware)."""
        return torch.nanmean(self.iou, dim=1)


def region_of_interest(
    model: nn.Module,
    images: Any,
    layer: str,
    neurons: Sequence[int] | torch.Tensor,
    attack: Attack,
    *,
    k: int = 5,
    quantile: float = DISSECTION_QUANTILE,
    n: int | None = None,
    batch_size: int = 256,
) -> RoiResult:
    """Figs. 4–7: each neuron's top-k benign images, their masks, their adversarial twins'
    masks (same threshold) and the benign-vs-adversarial IoU.

    Args:
        model: model with ``layer_names``; eval mode, mode restored.
        images: an ImageSet; the first ``n`` images are the benign set.
        layer: layer name (the paper shows pool2 of VGG-16, layer4 of ResNet-18).
        neurons: (n_sel,) channel indices (e.g. the 3 most and 3 least sensitive).
        attack: ``attack(model, x, y)`` making the twins (paper: untargeted ℓ∞ PGD); each
            distinct image is attacked once, with its true label.
        k, quantile: images per neuron (5) and threshold level (0.995).
    """
    idx = torch.as_tensor(neurons, dtype=torch.long).flatten()
    order, thresh = top_activating(
        model, images, layer, idx, k=k, quantile=quantile, n=n, batch_size=batch_size
    )
    uniq, inv = torch.unique(order.flatten(), return_inverse=True)
    x, y = images[uniq]
    dev = model_device(model)
    with eval_mode(model):
        x_adv = torch.cat(
            [
                attack(model, x[s : s + batch_size].to(dev), y[s : s + batch_size].to(dev))
                .detach()
                .cpu()
                for s in range(0, len(x), batch_size)
            ]
        )
        mc = activation_masks(model, x, layer, idx, thresh)  # (U, n_sel, H, W)
        ma = activation_masks(model, x_adv, layer, idx, thresh)
    inv = inv.view(order.shape)  # (n_sel, k) → row of uniq
    sel = torch.arange(len(idx)).view(-1, 1).expand_as(inv)
    mask_clean, mask_adv = mc[inv, sel], ma[inv, sel]  # (n_sel, k, H, W)
    return RoiResult(
        layer=layer,
        neurons=idx,
        image_idx=order,
        threshold=thresh,
        x=x[inv],
        x_adv=x_adv[inv],
        mask_clean=mask_clean,
        mask_adv=mask_adv,
        iou=mask_iou(mask_clean, mask_adv),
    )


def iou_by_group(
    model: nn.Module,
    images: Any,
    layer: str,
    groups: Mapping[str, Sequence[int] | torch.Tensor],
    attack: Attack,
    **kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """Mean benign-vs-adversarial mask IoU per neuron group (e.g. sensitive vs vanilla).

    Args:
        groups: ``{group: neuron indices}`` of the same layer.
        kwargs: passed to :func:`region_of_interest` (k, quantile, n, batch_size).

    Returns ``{group: {"mean_iou": float, "neuron_iou": (n,) tensor, "result": RoiResult}}``.
    """
    out = {}
    for name, neurons in groups.items():
        res = region_of_interest(model, images, layer, neurons, attack, **kwargs)
        per = res.neuron_iou()
        out[name] = {"mean_iou": float(torch.nanmean(per)), "neuron_iou": per, "result": res}
    return out


def overlay(image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.5) -> np.ndarray:
    """An RGB array (H, W, 3) in [0, 1]: the image (C, H, W) with the mask tinted red."""
    img = image.detach().cpu().float()
    img = img.expand(3, *img.shape[1:]) if img.shape[0] == 1 else img[:3]
    rgb = img.permute(1, 2, 0).numpy().copy()
    m = mask.cpu().numpy().astype(bool)
    rgb[m] = (1 - alpha) * rgb[m] + alpha * np.array([1.0, 0.0, 0.0])
    return rgb
