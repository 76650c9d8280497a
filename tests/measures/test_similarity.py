"""Eqs. 6–10 on hand-computed cases, the two Levenshtein forms, and permutation nulls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurosens.measures.similarity import (
    avg_pair_levenshtein,
    levenshtein_distance,
    levenshtein_paper,
    levenshtein_ratio,
    null_avg_pair_levenshtein,
    null_levenshtein,
    null_spearman,
    null_total_jaccard,
    permutation_null,
    ranks_as_scores,
    spearman,
    total_jaccard,
)


def test_eq6_spearman_hand_computed():
    # ranks of a: 1..5; ranks of b: 2,1,4,3,5 → d = (−1, 1, −1, 1, 0), Σd² = 4
    # r_s = 1 − 6·4 / (125 − 5) = 0.8
    a = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    b = torch.tensor([2.0, 1.0, 4.0, 3.0, 5.0])
    assert spearman(a, b) == pytest.approx(0.8)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman([10, 20, 30], [1, 2, 3]) == pytest.approx(1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_eq7_distance_known_values():
    kitten = [ord(c) for c in "kitten"]
    sitting = [ord(c) for c in "sitting"]
    assert levenshtein_distance(kitten, sitting) == 3  # the textbook value
    # Indel distance (substitution = 2): LCS("kitten","sitting") = 4 → 6 + 7 − 2·4 = 5
    assert levenshtein_distance(kitten, sitting, substitution=2) == 5


def test_eq8_two_forms_disjoint_equal_length():
    a, b = [1, 2, 3], [4, 5, 6]
    assert levenshtein_paper(a, b) == pytest.approx(0.5)  # ω = 3 → 1 − 3/6
    assert levenshtein_ratio(a, b) == pytest.approx(0.0)  # indel 6 → 1 − 6/6
    # the paper form never goes below 0.5 for equal lengths
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        x, y = torch.randperm(50, generator=g)[:20], torch.randperm(50, generator=g)[:20]
        assert levenshtein_paper(x, y) >= 0.5


def test_eq8_hand_computed():
    # one substitution: paper ω = 1 → 1 − 1/6; indel: LCS 2 → 2 edits → 1 − 2/6
    assert levenshtein_paper([1, 2, 3], [1, 5, 3]) == pytest.approx(5 / 6)
    assert levenshtein_ratio([1, 2, 3], [1, 5, 3]) == pytest.approx(4 / 6)
    # two deletions: both forms 1 − 2/6
    assert levenshtein_paper([1, 2, 3, 4], [2, 3]) == pytest.approx(4 / 6)
    assert levenshtein_ratio([1, 2, 3, 4], [2, 3]) == pytest.approx(4 / 6)
    # identical → 1; tensors accepted
    assert levenshtein_paper(torch.tensor([4, 2]), [4, 2]) == 1.0
    assert levenshtein_ratio(np.array([4, 2]), [4, 2]) == 1.0
    # order matters: a swap costs 2 substitutions (paper) / 2 indels (ratio)
    assert levenshtein_paper([1, 2], [2, 1]) == pytest.approx(0.5)
    assert levenshtein_ratio([1, 2], [2, 1]) == pytest.approx(0.5)


def test_eq9_average_pair_hand_computed():
    seqs = [[1, 2], [1, 3], [4, 5]]
    # paper: (12,13): 1 − 1/4 = 0.75; (12,45): 0.5; (13,45): 0.5 → 1.75/3
    assert avg_pair_levenshtein(seqs, "paper") == pytest.approx(1.75 / 3)
    # ratio: (12,13): LCS 1 → 1 − 2/4 = 0.5; others 0 → 0.5/3
    assert avg_pair_levenshtein(seqs, "ratio") == pytest.approx(0.5 / 3)
    with pytest.raises(ValueError, match="'paper', 'ratio'"):
        avg_pair_levenshtein(seqs, "indel")
    with pytest.raises(ValueError, match="at least 2"):
        avg_pair_levenshtein([[1]])


def test_eq10_total_jaccard_hand_computed():
    # ∩ = {2, 3}, ∪ = {1, 2, 3, 4, 5} → 2/5
    assert total_jaccard([[1, 2, 3], [2, 3, 4], [3, 2, 5]]) == pytest.approx(0.4)
    assert total_jaccard([[1, 2], [3, 4]]) == 0.0
    assert total_jaccard([[3, 1], [1, 3]]) == 1.0  # order ignored


def test_spearman_null_on_independent_rankings_is_centred_at_zero():
    nr = null_spearman(50, n_perm=400, seed=0)
    assert abs(nr.mean) < 0.04
    # sd of r_s under independence ≈ 1/√(n−1) = 0.143 → 95% interval ≈ ±0.28
    assert -0.4 < nr.lo < -0.18 and 0.18 < nr.hi < 0.4
    assert nr.samples.shape == (400,)
    assert nr.p_value(0.9) < 0.01 and nr.p_value(-0.9) > 0.99


def test_levenshtein_nulls_and_jaccard_null():
    # top-k lists that are full permutations of the same k = n neurons: Jaccard is 1
    assert null_total_jaccard(10, 10, 3, n_perm=20).mean == 1.0
    # paper form: every draw ≥ 0.5; ratio form: much lower for random top-5 of 100
    p = null_levenshtein(100, 5, "paper", n_perm=200)
    r = null_levenshtein(100, 5, "ratio", n_perm=200)
    assert p.samples.min() >= 0.5 and r.mean < 0.1 and r.lo <= r.mean <= r.hi
    a = null_avg_pair_levenshtein(20, 5, 4, "ratio", n_perm=100)
    assert 0.0 <= a.lo <= a.mean <= a.hi <= 1.0
    # two random 5-subsets of 10: |A ∩ B| = i with probability C(5,i)·C(5,5−i)/252 =
    # (1, 25, 100, 100, 25, 1)/252, J = i/(10−i) → E[J] = (25/9 + 25 + 300/7 + 50/3 + 1)/252
    j = null_total_jaccard(10, 5, 2, n_perm=4000, seed=1)
    assert j.mean == pytest.approx((25 / 9 + 25 + 300 / 7 + 50 / 3 + 1) / 252, abs=0.015)


def test_permutation_null_is_seeded_and_validates():
    f = lambda r: float(r[0][0] == r[1][0])  # noqa: E731
    a = permutation_null(f, 5, n_perm=50, seed=3)
    b = permutation_null(f, 5, n_perm=50, seed=3)
    assert np.array_equal(a.samples, b.samples)
    assert a.mean == pytest.approx(0.2, abs=0.15)  # P(same first neuron) = 1/5
    with pytest.raises(ValueError, match=r"\[1, 5\]"):
        permutation_null(f, 5, k=6)


def test_ranks_as_scores():
    s = ranks_as_scores(torch.tensor([2, 0, 1]))  # neuron 2 best
    assert s.tolist() == [2.0, 1.0, 3.0]
