"""Unit tests of the pure metrics on small hand-computed cases (ties and empty groups included)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceleads.errors import ValidationError
from faceleads.evaluation import metrics

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite

GEN = [0.9, 0.8, 0.7, 0.4]
IMP = [0.6, 0.5, 0.3, 0.1]


def test_error_curve_by_hand() -> None:
    curve = metrics.error_curve(GEN, IMP)
    assert curve.thresholds[0] == math.inf
    np.testing.assert_allclose(curve.thresholds[1:], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.1])
    np.testing.assert_allclose(curve.fmr, [0, 0, 0, 0, 0.25, 0.5, 0.5, 0.75, 1])
    np.testing.assert_allclose(curve.tmr, [0, 0.25, 0.5, 0.75, 0.75, 0.75, 1, 1, 1])
    far, tar, _ = metrics.roc_curve(GEN, IMP)
    fmr, fnmr, _ = metrics.det_curve(GEN, IMP)
    np.testing.assert_allclose(far, fmr)
    np.testing.assert_allclose(fnmr, 1 - tar)


def test_error_curve_ties_count_as_matches() -> None:
    # A score equal to the threshold is a match, for genuine and impostor alike.
    curve = metrics.error_curve([0.5, 0.5], [0.5, 0.2])
    np.testing.assert_allclose(curve.thresholds[1:], [0.5, 0.2])
    np.testing.assert_allclose(curve.fmr, [0, 0.5, 1])
    np.testing.assert_allclose(curve.tmr, [0, 1, 1])
    assert metrics.fmr_at([0.5, 0.2], 0.5) == 0.5
    assert metrics.fnmr_at([0.5, 0.5], 0.5) == 0.0


def test_error_curve_refuses_empty_and_nan() -> None:
    with pytest.raises(ValidationError):
        metrics.error_curve([], IMP)
    with pytest.raises(ValidationError):
        metrics.error_curve(GEN, [])
    with pytest.raises(ValidationError, match="NaN"):
        metrics.error_curve([0.1, float("nan")], IMP)
    assert metrics.fmr_at([], 0.3) is None


def test_equal_error_rate_by_hand() -> None:
    # At t = 0.6: FMR = 1/4 (0.6) and FNMR = 1/4 (0.4): they meet.
    assert metrics.equal_error_rate(GEN, IMP) == pytest.approx((0.25, 0.6))
    # Perfect separation: EER 0 at the lowest genuine score.
    assert metrics.equal_error_rate([0.9, 0.8], [0.1, 0.2]) == pytest.approx((0.0, 0.8))


def test_equal_error_rate_when_rates_do_not_meet() -> None:
    # Points: t=0.7 FMR 0 FNMR 1/2 (gap 1/2); t=0.6 FMR 1/3 FNMR 1/2 (gap 1/6); t=0.5 FMR 1/3 FNMR 0.
    eer, t = metrics.equal_error_rate([0.7, 0.5], [0.6, 0.2, 0.1])
    assert t == pytest.approx(0.6)
    assert eer == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_tar_at_far_by_hand() -> None:
    impostor = np.arange(100) / 100  # 0.00 .. 0.99
    genuine = [0.995, 0.985, 0.5]
    # FAR <= 0.01 allows one impostor (0.99) at or above t; the lowest such t among the scores is 0.985.
    tar, t = metrics.tar_at_far(genuine, impostor, 0.01)  # type: ignore[misc]
    assert t == pytest.approx(0.985)
    assert tar == pytest.approx(2 / 3)


def test_tar_at_far_with_tied_impostors() -> None:
    impostor = [0.9, 0.9] + [0.1] * 98
    # t = 0.9 gives FAR 2/100 > 0.01 (ties are matches), so the threshold must rise to 0.95.
    assert metrics.tar_at_far([0.95, 0.9, 0.5], impostor, 0.01) == pytest.approx((1 / 3, 0.95))


def test_tar_at_far_unresolvable_is_none() -> None:
    assert metrics.tar_at_far([0.9], np.linspace(0, 0.5, 50), 0.01) is None
    with pytest.raises(ValidationError):
        metrics.tar_at_far([0.9], [0.1], 0.0)


def test_best_threshold_picks_lower_median_of_ties() -> None:
    scores = [0.1, 0.4, 0.35, 0.8]
    same = [False, False, True, True]
    # Candidates 0.1, 0.225, 0.375, 0.6, >0.8 -> accuracy 0.5, 0.75, 0.5, 0.75, 0.5.
    assert metrics.best_threshold(scores, same) == pytest.approx((0.225, 0.75))
    assert metrics.accuracy_at(scores, same, 0.6) == 0.75


def test_kfold_accuracy_by_hand() -> None:
    scores = [0.9, 0.2, 0.8, 0.25, 0.4, 0.1]
    same = [True, False, True, False, True, False]
    folds = [0, 0, 1, 1, 2, 2]
    res = metrics.kfold_accuracy(scores, same, folds)
    # Thresholds from the other folds: 0.325, 0.3, 0.525; fold 2's genuine 0.4 is missed.
    np.testing.assert_allclose(res.fold_thresholds, [0.325, 0.3, 0.525])
    np.testing.assert_allclose(res.fold_accuracies, [1.0, 1.0, 0.5])
    assert res.mean == pytest.approx(5 / 6)
    assert res.std == pytest.approx(math.sqrt(1 / 18))
    with pytest.raises(ValidationError):
        metrics.kfold_accuracy(scores, same, [0] * 6)


def test_cmc_and_fnir_at_rank() -> None:
    ranks = [1, 3, math.inf, 2]
    assert metrics.cmc(ranks, [1, 2, 5]) == {1: 0.25, 2: 0.5, 5: 0.75}
    assert metrics.fnir_at_rank(ranks, 50) == pytest.approx(0.25)
    assert metrics.cmc([], [1]) == {1: None}
    assert metrics.fnir_at_rank([], 50) is None


def test_fnir_at_fpir_by_hand() -> None:
    mate_scores = [0.9, 0.6, 0.4, -math.inf]  # the last search failed: a miss
    mate_ranks = [1, 2, 2, math.inf]
    # One failed non-mated search (-inf) is never a false positive.
    nonmated = [0.7, 0.5, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, -math.inf]
    # FPIR <= 0.1 allows one top score >= t: the lowest such t is 0.6 (0.7 only).
    fnir, t = metrics.fnir_at_fpir(mate_scores, mate_ranks, nonmated, 0.1, max_rank=20)  # type: ignore[misc]
    assert t == pytest.approx(0.6)
    assert fnir == pytest.approx(0.5)  # 0.9 and 0.6 (a tie at t is a hit) found; 0.4 and the failure missed
    fnir1, _ = metrics.fnir_at_fpir(mate_scores, mate_ranks, nonmated, 0.1, max_rank=1)  # type: ignore[misc]
    assert fnir1 == pytest.approx(0.75)  # the 0.6 mate is at rank 2
    assert metrics.fnir_at_fpir(mate_scores, mate_ranks, nonmated, 0.01, max_rank=20) is None
    assert metrics.fpir_at(nonmated, 0.6) == pytest.approx(0.1)
    assert metrics.fnir_at([], [], 0.5, 20) is None


def _exact_binomial_cdf(n: int, p: float, k: int) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def test_binomial_cdf_matches_exact_formula() -> None:
    cdf = metrics._binomial_cdf(200, 0.03, 20)
    for k in (0, 3, 6, 12, 20):
        assert cdf[k] == pytest.approx(_exact_binomial_cdf(200, 0.03, k), rel=1e-9, abs=1e-15)


def test_calibrate_threshold_by_hand() -> None:
    impostor = np.arange(1000) / 1000  # 0.000 .. 0.999, no ties
    cal = metrics.calibrate_threshold(impostor, 0.01)
    assert cal.threshold == pytest.approx(0.990)  # the 10th highest: exactly 10 of 1000 at or above it
    assert cal.observed_fmr == pytest.approx(0.01)
    assert cal.impostor_pairs == 1000
    assert cal.warnings == []
    # Interval ranks from an independent exact binomial computation.
    a = max(j for j in range(1, 60) if _exact_binomial_cdf(1000, 0.01, j - 1) <= 0.025)
    b = min(j for j in range(1, 60) if _exact_binomial_cdf(1000, 0.01, j - 1) >= 0.975)
    assert cal.ci_high == pytest.approx((1000 - a) / 1000)
    assert cal.ci_low == pytest.approx((1000 - b) / 1000)
    assert cal.ci_low < cal.threshold < cal.ci_high


def test_calibrate_threshold_ties_and_small_counts() -> None:
    impostor = [0.5] * 5 + [0.1] * 995
    cal = metrics.calibrate_threshold(impostor, 0.001)
    # 0.5 would let 5 of 1000 through (0.005 > 0.001): the threshold goes just above 0.5.
    assert cal.threshold > 0.5
    assert cal.threshold == pytest.approx(0.5)
    assert cal.observed_fmr == 0.0
    assert any("at least 3000" in w for w in cal.warnings)
    tiny = metrics.calibrate_threshold([0.2, 0.1], 1e-4)
    assert tiny.ci_high is None  # two comparisons cannot bound a 1e-4 threshold from above
    with pytest.raises(ValidationError):
        metrics.calibrate_threshold([], 1e-3)


def test_verification_differentials_by_hand() -> None:
    # pair: 0 FF gen .8 | 1 FF gen .4 | 2 FF imp .6 | 3 FF imp .2 | 4 MM gen .9 | 5 MM imp .1 | 6 MM imp .3
    #       7 FM imp .7 (cross-group) | 8 ?M imp .9 (unknown group)
    scores = [0.8, 0.4, 0.6, 0.2, 0.9, 0.1, 0.3, 0.7, 0.9]
    same = [True, True, False, False, True, False, False, False, False]
    ga = [0, 0, 0, 0, 1, 1, 1, 0, -1]
    gb = [0, 0, 0, 0, 1, 1, 1, 1, 1]
    out = metrics.verification_differentials(scores, same, ga, gb, ["F", "M", "X"], 0.5)
    assert out["overall"] == {"genuine_pairs": 3, "impostor_pairs": 6, "fmr": 0.5, "fnmr": pytest.approx(1 / 3)}
    f, m, x = out["per_group"]["F"], out["per_group"]["M"], out["per_group"]["X"]
    assert (f["genuine_pairs"], f["impostor_pairs"], f["fmr"], f["fnmr"]) == (2, 2, 0.5, 0.5)
    assert f["fmr_relative"] == pytest.approx(1.0)
    assert f["fnmr_relative"] == pytest.approx(1.5)
    assert (m["fmr"], m["fnmr"]) == (0.0, 0.0)
    assert m["fmr_relative"] == 0.0
    # An empty group has no rates at all.
    assert x == {
        "genuine_pairs": 0,
        "impostor_pairs": 0,
        "fmr": None,
        "fnmr": None,
        "fmr_relative": None,
        "fnmr_relative": None,
    }
    assert out["fmr_ratio"] is None  # lowest group FMR is 0: the ratio is unbounded
    assert out["cross_group_impostors"] == {"impostor_pairs": 1, "fmr": 1.0}
    assert out["unlabelled_pairs"] == 1
    # At t = 0.15: F FMR 2/2, M FMR 1/2 -> ratio 2.
    low = metrics.verification_differentials(scores, same, ga, gb, ["F", "M"], 0.15)
    assert low["fmr_ratio"] == pytest.approx(2.0)
    assert low["fnmr_ratio"] is None  # no genuine misses anywhere
    with pytest.raises(ValidationError):
        metrics.verification_differentials(scores, same, ga, [5] * 9, ["F", "M"], 0.5)


def test_identification_differentials_by_hand() -> None:
    out = metrics.identification_differentials(
        mate_scores=[0.9, 0.3, 0.8, 0.7],
        mate_ranks=[1, 1, 3, 1],
        mated_groups=[0, 0, 1, 1],
        nonmated_top_scores=[0.6, 0.2, 0.1, 0.55],
        nonmated_groups=[0, 0, 1, -1],
        names=["F", "M", "X"],
        threshold=0.5,
        max_rank=2,
    )
    assert out["overall"]["fnir"] == pytest.approx(0.5)  # 0.3 below t, the 0.8 mate at rank 3 > R
    assert out["overall"]["fpir"] == pytest.approx(0.5)  # 0.6 and 0.55
    f, m = out["per_group"]["F"], out["per_group"]["M"]
    assert (f["fnir"], f["fpir"], f["rank1"]) == (0.5, 0.5, 1.0)
    assert (m["fnir"], m["fpir"], m["rank1"], m["fnir_rank50"]) == (0.5, 0.0, 0.5, 0.0)
    assert out["per_group"]["X"]["fnir"] is None
    assert out["fpir_ratio"] is None
    assert out["fnir_ratio"] == pytest.approx(1.0)


def test_differential_ratios_leave_out_small_groups() -> None:
    scores = [0.6, 0.2, 0.1, 0.3, 0.9]
    same = [False, False, False, False, False]
    ga, gb = [0, 0, 1, 1, 2], [0, 0, 1, 1, 2]
    # FMR at 0.15: A 2/2, B 1/2, C 1/1. All groups: 1/0.5 = 2; groups with >= 2 pairs: A and B only -> 2.
    out = metrics.verification_differentials(scores, same, ga, gb, ["A", "B", "C"], 0.15)
    assert out["fmr_ratio"] == pytest.approx(2.0)
    assert metrics.verification_differentials(scores, same, ga, gb, ["A", "B", "C"], 0.15, 3)["fmr_ratio"] is None
    # At 0.25, B falls to 1/2 and A stays 1/2, C is 1/1 but has a single pair.
    at25 = metrics.verification_differentials(scores, same, ga, gb, ["A", "B", "C"], 0.25, min_trials=2)
    assert at25["fmr_ratio"] == pytest.approx(1.0)
    assert metrics.verification_differentials(scores, same, ga, gb, ["A", "B", "C"], 0.25)["fmr_ratio"] == 2.0
