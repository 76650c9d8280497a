"""High-level, cached analyses behind the book's notebooks 01–05 (Sections III–V-B).

One submodule per notebook: :mod:`.layer_profiles` (01), :mod:`.per_target` (02–03),
:mod:`.regions` (02), :mod:`.suppression_effects` (04), :mod:`.ratio` (05); :mod:`.common`
holds what they share, :mod:`.profiles` the cached σ profiles (01, 02, 04, 06, 08),
:mod:`.stats` the tests, :mod:`.claims` the claim type and the verdict rules, and
:mod:`.tables`, :mod:`.sweeps`, :mod:`.zoo_profiles` notebooks 06–08. Everything public of
the notebook 01–05 modules and of :mod:`.profiles` is re-exported here.

Paper: Zhang, Liu et al., IEEE TIP 2021. Each function here is what one notebook cell
needs: it loads the run's model through the page's
:class:`~neurosens.study.session.Session`, runs one analysis of :mod:`neurosens.measures`
(sensitivity, targets, suppression or roi), and stores its JSON result in the run folder
through :func:`neurosens.store.cache.cached` (``data/artifacts/<run>/analysis/``), so that
re-executing the book reads the cache. Accuracies go through
:func:`neurosens.evaluation.harness.evaluate`, which stores per-example flags itself. The verdict
helpers (``c1_c2_verdicts`` … ``c9_verdict``) turn the results into a claim record whose
verdict is computed from a stated test or interval, never typed.

Sizes: :func:`n_for` resolves the number of test images per analysis from the profile
(:data:`SIZES`; ``n_examples`` given in a notebook overrides it). The cpu budgets keep
the first execution of every notebook near 10 CPU-minutes.

Example:
    >>> ctx = setup(profile="cpu", seeds=[0])                          # doctest: +SKIP
    >>> run = ctx.config_for("vanilla", 0)                              # doctest: +SKIP
    >>> sens = sensitivity_profile(ctx, run, ["conv1"], n=2000)         # doctest: +SKIP
    >>> sens["conv1"][:3]                                              # doctest: +SKIP
"""

from __future__ import annotations

from neurosens.analyses.amplification import c8_verdict, c26_verdict
from neurosens.analyses.claims import Claim
from neurosens.analyses.common import (
    ANALYSIS_VERSION,
    SIZES,
    class_names,
    n_for,
    neuron_groups,
    rank_neurons,
)
from neurosens.analyses.layer_profiles import (
    accuracy_table,
    c6_verdict,
    c16_verdict,
    c19_verdict,
    c30_verdict,
    noise_cause,
    pair_statistics,
    table1_summary,
)
from neurosens.analyses.noise_calibration import (
    c16_calibrated_verdict,
    calibrated_flags,
    calibrated_sigmas,
)
from neurosens.analyses.per_target import (
    c1_c2_verdicts,
    c4_verdict,
    c28_verdict,
    depth_rows,
    importance_rows,
    target_results,
)
from neurosens.analyses.profiles import (
    collect_sensitivity,
    layer_means,
    sensitivity_frame,
    sensitivity_profile,
)
from neurosens.analyses.ratio import (
    c7_verdict,
    c9_verdict,
    c17_verdict,
    c18_verdict,
    collect_ratio,
    conv_relu_layers,
    ratio_summary,
    ratio_sweep,
    table2_scope,
)
from neurosens.analyses.regions import c3_verdict, iou_groups, iou_layers, roi_figure_data
from neurosens.analyses.suppression_effects import (
    c5_verdict,
    c29_verdict,
    collapse_label,
    pack_flags,
    suppression_flags,
    suppression_summary,
    unpack_flags,
)

__all__ = [
    "ANALYSIS_VERSION",
    "SIZES",
    "Claim",
    "accuracy_table",
    "c1_c2_verdicts",
    "c3_verdict",
    "c4_verdict",
    "c5_verdict",
    "c6_verdict",
    "c7_verdict",
    "c8_verdict",
    "c9_verdict",
    "c16_calibrated_verdict",
    "c16_verdict",
    "c17_verdict",
    "c18_verdict",
    "c19_verdict",
    "c26_verdict",
    "c28_verdict",
    "c29_verdict",
    "c30_verdict",
    "calibrated_flags",
    "calibrated_sigmas",
    "class_names",
    "collapse_label",
    "collect_ratio",
    "collect_sensitivity",
    "conv_relu_layers",
    "depth_rows",
    "importance_rows",
    "iou_groups",
    "iou_layers",
    "layer_means",
    "n_for",
    "neuron_groups",
    "noise_cause",
    "pack_flags",
    "pair_statistics",
    "rank_neurons",
    "ratio_summary",
    "ratio_sweep",
    "roi_figure_data",
    "sensitivity_frame",
    "sensitivity_profile",
    "suppression_flags",
    "suppression_summary",
    "table1_summary",
    "table2_scope",
    "target_results",
    "unpack_flags",
]
