"""Defence methods: a registry from method name to its :class:`~neurosens.defences.base.Method`.

==========  ==============================================================================
vanilla     cross-entropy on clean images
pat         PGD adversarial training, clean:adversarial 1:1 (paper Section V-A)
alp         PAT + 0.5 · ℓ2 logit pairing (Kannan et al. 2018; paper Section V-A)
sns         Sensitive Neuron Stabilizing, Eq. 12–13 / Algorithm 1 (paper Section V-C)
sns_all     ablation: all neurons of the selected layers
sns_rand    ablation: random 10% (draw ``sns_rand_draw``)
sns_dyn     ablation: re-selected after every epoch from 200 training images
cas         Channel-wise Activation Suppressing + PGD-AT (Bai et al. ICLR 2021)
anp         Adversarial Noise Propagation (Liu et al. 2019)
==========  ==============================================================================

Progressive Adversarial Training (seed 000, arXiv:1909.04839) is **not** included: only
its abstract is available ("adds diversified adversarial noises progressively during
training"). It names neither the noise types, nor the order or schedule in which they are
added, nor how their strength grows, nor the loss; later versions of the paper were
renamed "PDA: Progressive Data Augmentation", which suggests the method changed between
versions. Any implementation would be our invention labelled with the paper's name, so
the study leaves it out rather than report numbers that cannot be traced to the paper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neurosens.defences.alp import ALP
from neurosens.defences.anp import ANP
from neurosens.defences.base import Context, Method
from neurosens.defences.cas import CAS
from neurosens.defences.pat import PAT
from neurosens.defences.sns import SNS, SNSAll, SNSDyn, SNSRand
from neurosens.defences.vanilla import Vanilla

if TYPE_CHECKING:
    from neurosens.core.config import Config

__all__ = ["METHODS", "Context", "Method", "get_method"]

METHODS: dict[str, type[Method]] = {
    cls.name: cls for cls in (Vanilla, PAT, ALP, SNS, SNSAll, SNSRand, SNSDyn, CAS, ANP)
}


def get_method(config: Config) -> Method:
    """The method object for ``config.method``; an unknown name lists the valid ones."""
    cls = METHODS.get(config.method)
    if cls is None:
        raise ValueError(
            f"unknown method {config.method!r}: valid methods are {', '.join(METHODS)}"
        )
    return cls(config)
