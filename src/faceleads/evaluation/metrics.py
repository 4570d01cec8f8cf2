"""Pure accuracy metrics for face verification (1:1) and identification (1:N).

Conventions (every function here follows them; ``docs/accuracy.md`` repeats them):

* A *threshold* ``t`` declares a match when ``score >= t`` (ties at the threshold are matches).
* FMR (= FAR) at ``t`` is the share of impostor scores ``>= t``; FNMR at ``t`` is the share of genuine
  scores ``< t``; TMR (= TAR) is ``1 - FNMR``.
* A failed comparison (no face) is given a score the caller chooses (verification uses -1, which is a
  non-match at every threshold above -1; identification uses ``-inf``: a search that returned nothing).
* "X at Y = y" operating points (TAR at FAR, FNIR at FPIR) take the lowest threshold whose observed Y is
  ``<= y``; they are ``None`` when the data holds fewer than ``1/y`` negative trials, because such a
  target cannot be resolved by the data (any estimate would be the FAR = 0 point in disguise).
* Identification follows NIST IREX / FRVT 1:N: for a non-mated search, FPIR at ``t`` is the share of
  searches whose top candidate scores ``>= t``; for a mated search, it is a miss (FNIR) at ``(R, t)`` when
  the mate is not among the top ``R`` candidates or its score is ``< t``.

All inputs are array-likes of numbers; all functions are pure (no I/O, no engine).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from faceleads.errors import ValidationError
from faceleads.evaluation import bootstrap

Array = npt.NDArray[np.float64]


def as_scores(values: npt.ArrayLike, name: str = "scores", allow_neg_inf: bool = False) -> Array:
    """Return ``values`` as a 1-D float64 array, refusing NaN (and infinities unless allowed)."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(arr).any():
        raise ValidationError(f"{name} contain NaN")
    if np.isposinf(arr).any() or (not allow_neg_inf and np.isneginf(arr).any()):
        raise ValidationError(f"{name} contain infinite values")
    return arr


def _count_at_or_above(sorted_scores: Array, thresholds: Array) -> npt.NDArray[np.int64]:
    """How many of ``sorted_scores`` (ascending) are ``>= t`` for each threshold ``t``."""
    return (sorted_scores.size - np.searchsorted(sorted_scores, thresholds, side="left")).astype(np.int64)


def rate_at_or_above(scores: npt.ArrayLike, threshold: float) -> float | None:
    """Share of ``scores`` that are ``>= threshold`` (``None`` for an empty set)."""
    arr = as_scores(scores, allow_neg_inf=True)
    if arr.size == 0:
        return None
    return float(np.count_nonzero(arr >= threshold) / arr.size)


def fmr_at(impostor: npt.ArrayLike, threshold: float) -> float | None:
    """False match rate: share of impostor scores ``>= threshold`` (``None`` when there are none)."""
    return rate_at_or_above(impostor, threshold)


def fnmr_at(genuine: npt.ArrayLike, threshold: float) -> float | None:
    """False non-match rate: share of genuine scores ``< threshold`` (``None`` when there are none)."""
    rate = rate_at_or_above(genuine, threshold)
    return None if rate is None else 1.0 - rate


@dataclass(frozen=True)
class ErrorCurve:
    """FMR and TMR at every distinct score, thresholds descending.

    The first point is ``t = +inf`` (nothing matches: FMR 0, TMR 0); the last point is the lowest score
    (everything matches: FMR 1, TMR 1). This is both the ROC (``fmr`` vs ``tmr``) and, with
    ``fnmr = 1 - tmr``, the DET curve.
    """

    thresholds: Array
    fmr: Array
    tmr: Array

    @property
    def fnmr(self) -> Array:
        """False non-match rate at each threshold."""
        return 1.0 - self.tmr


def error_curve(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> ErrorCurve:
    """The ROC / DET operating points of genuine and impostor scores (both must be non-empty)."""
    gen = np.sort(as_scores(genuine, "genuine scores"))
    imp = np.sort(as_scores(impostor, "impostor scores"))
    if gen.size == 0 or imp.size == 0:
        raise ValidationError("an error curve needs at least one genuine and one impostor score")
    distinct = np.unique(np.concatenate([gen, imp]))[::-1]
    thresholds = np.concatenate([[np.inf], distinct])
    fmr = _count_at_or_above(imp, thresholds) / imp.size
    tmr = _count_at_or_above(gen, thresholds) / gen.size
    return ErrorCurve(thresholds=thresholds, fmr=fmr.astype(np.float64), tmr=tmr.astype(np.float64))


def roc_curve(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[Array, Array, Array]:
    """ROC as ``(far, tar, thresholds)``, thresholds descending (first ``+inf``)."""
    curve = error_curve(genuine, impostor)
    return curve.fmr, curve.tmr, curve.thresholds


def det_curve(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[Array, Array, Array]:
    """DET as ``(fmr, fnmr, thresholds)``, thresholds descending (first ``+inf``)."""
    curve = error_curve(genuine, impostor)
    return curve.fmr, curve.fnmr, curve.thresholds


def equal_error_rate(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[float, float]:
    """Equal error rate and its threshold, as ``(eer, threshold)``.

    Among the curve's points, the one where ``|FMR - FNMR|`` is smallest (the highest threshold on a tie)
    is taken, and the EER is the mean of FMR and FNMR there. On finite data the two rates rarely meet
    exactly; the mean is the usual convention and is exact when they do.
    """
    curve = error_curve(genuine, impostor)
    gap = np.abs(curve.fmr - curve.fnmr)
    idx = int(np.argmin(gap))  # argmin returns the first index: the highest threshold on a tie
    eer = float((curve.fmr[idx] + curve.fnmr[idx]) / 2.0)
    threshold = float(curve.thresholds[idx])
    if math.isinf(threshold):  # only when every genuine score is a non-match at every finite threshold
        threshold = float(np.nextafter(curve.thresholds[1], np.inf))
    return eer, threshold


def resolvable(negatives: int, rate: float) -> bool:
    """Whether ``negatives`` trials can resolve a false-positive ``rate`` (at least one allowed error)."""
    return negatives > 0 and negatives * rate >= 1.0 - 1e-9


def tar_at_far(genuine: npt.ArrayLike, impostor: npt.ArrayLike, far: float) -> tuple[float, float] | None:
    """True accept rate at a false accept rate, as ``(tar, threshold)``, or ``None`` when unresolvable.

    The threshold is the lowest curve threshold whose FAR is ``<= far``, i.e. the best TAR reachable
    without exceeding the FAR target (the ROC's step interpolation).
    """
    if not 0.0 < far < 1.0:
        raise ValidationError(f"FAR target must be in (0, 1), got {far}")
    curve = error_curve(genuine, impostor)
    if not resolvable(int(np.asarray(impostor).size), far):
        return None
    ok = np.flatnonzero(curve.fmr <= far + 1e-12)
    idx = int(ok[-1])  # thresholds descend, so the last admissible point is the lowest threshold
    return float(curve.tmr[idx]), float(curve.thresholds[idx])


def _accuracy_at(sorted_gen: Array, sorted_imp: Array, thresholds: Array) -> Array:
    correct = _count_at_or_above(sorted_gen, thresholds) + (
        sorted_imp.size - _count_at_or_above(sorted_imp, thresholds)
    )
    return correct / float(sorted_gen.size + sorted_imp.size)


def accuracy_at(scores: npt.ArrayLike, same: npt.ArrayLike, threshold: float) -> float:
    """Share of pairs classified correctly at ``threshold`` (genuine ``>= t``, impostor ``< t``)."""
    arr = as_scores(scores)
    lab = np.asarray(same, dtype=bool).reshape(-1)
    if arr.size == 0 or arr.size != lab.size:
        raise ValidationError("accuracy needs the same non-zero number of scores and labels")
    return float(np.count_nonzero((arr >= threshold) == lab) / arr.size)


def best_threshold(scores: npt.ArrayLike, same: npt.ArrayLike) -> tuple[float, float]:
    """The threshold with the highest accuracy on these pairs, as ``(threshold, accuracy)``.

    Candidates are the lowest score (everything matches), the midpoints between consecutive distinct
    scores and a value just above the highest score (nothing matches). Midpoints keep the threshold
    away from the training scores themselves, which generalises better to held-out pairs. When several
    candidates reach the best accuracy, the lower median of them is taken (deterministic, central).
    """
    arr = as_scores(scores)
    lab = np.asarray(same, dtype=bool).reshape(-1)
    if arr.size == 0 or arr.size != lab.size:
        raise ValidationError("choosing a threshold needs the same non-zero number of scores and labels")
    distinct = np.unique(arr)
    candidates = np.concatenate(
        [distinct[:1], (distinct[:-1] + distinct[1:]) / 2.0, [np.nextafter(distinct[-1], np.inf)]]
    )
    acc = _accuracy_at(np.sort(arr[lab]), np.sort(arr[~lab]), candidates)
    best = np.flatnonzero(acc >= acc.max() - 1e-15)
    idx = int(best[(best.size - 1) // 2])
    return float(candidates[idx]), float(acc[idx])


@dataclass(frozen=True)
class KFoldAccuracy:
    """k-fold verification accuracy (threshold for each fold chosen on the other folds)."""

    mean: float
    std: float  # population standard deviation over folds (ddof=0, as insightface / LFW tools report)
    fold_accuracies: list[float]
    fold_thresholds: list[float]


def kfold_accuracy(scores: npt.ArrayLike, same: npt.ArrayLike, folds: npt.ArrayLike) -> KFoldAccuracy:
    """Standard LFW protocol: for each fold, the threshold is chosen on the other folds."""
    arr = as_scores(scores)
    lab = np.asarray(same, dtype=bool).reshape(-1)
    fold = np.asarray(folds).reshape(-1)
    if not arr.size == lab.size == fold.size:
        raise ValidationError("scores, labels and folds must have the same length")
    ids = np.unique(fold)
    if ids.size < 2:
        raise ValidationError("k-fold accuracy needs at least two folds")
    accs: list[float] = []
    thresholds: list[float] = []
    for f in ids:
        test = fold == f
        t, _ = best_threshold(arr[~test], lab[~test])
        thresholds.append(t)
        accs.append(accuracy_at(arr[test], lab[test], t))
    return KFoldAccuracy(
        mean=float(np.mean(accs)), std=float(np.std(accs)), fold_accuracies=accs, fold_thresholds=thresholds
    )


# --------------------------------------------------------------------------------------------------
# Identification (1:N)


def cmc(mate_ranks: npt.ArrayLike, ks: Iterable[int]) -> dict[int, float | None]:
    """Cumulative match characteristic: share of mated searches whose mate is at rank ``<= k``.

    ``mate_ranks`` are 1-based; ``inf`` (or any value above every k) means the mate was not returned.
    ``None`` for every k when there are no mated searches.
    """
    ranks = np.asarray(mate_ranks, dtype=np.float64).reshape(-1)
    out: dict[int, float | None] = {}
    for k in ks:
        if k < 1:
            raise ValidationError(f"rank must be >= 1, got {k}")
        out[int(k)] = None if ranks.size == 0 else float(np.count_nonzero(ranks <= k) / ranks.size)
    return out


def fnir_at_rank(mate_ranks: npt.ArrayLike, rank: int) -> float | None:
    """FNIR with no threshold (investigation mode): share of mated searches with the mate below ``rank``."""
    hit = cmc(mate_ranks, [rank])[rank]
    return None if hit is None else 1.0 - hit


def fnir_at(mate_scores: npt.ArrayLike, mate_ranks: npt.ArrayLike, threshold: float, max_rank: int) -> float | None:
    """FNIR at ``(R = max_rank, T = threshold)``: mate missing from the top R or scoring below T."""
    scores = as_scores(mate_scores, "mate scores", allow_neg_inf=True)
    ranks = np.asarray(mate_ranks, dtype=np.float64).reshape(-1)
    if scores.size != ranks.size:
        raise ValidationError("mate scores and ranks must have the same length")
    if scores.size == 0:
        return None
    hit = (ranks <= max_rank) & (scores >= threshold)
    return float(1.0 - np.count_nonzero(hit) / scores.size)


def fpir_at(nonmated_top_scores: npt.ArrayLike, threshold: float) -> float | None:
    """FPIR at ``threshold``: share of non-mated searches whose top candidate scores ``>= threshold``."""
    return rate_at_or_above(nonmated_top_scores, threshold)


def fnir_at_fpir(
    mate_scores: npt.ArrayLike,
    mate_ranks: npt.ArrayLike,
    nonmated_top_scores: npt.ArrayLike,
    fpir: float,
    max_rank: int,
) -> tuple[float, float] | None:
    """Open-set FNIR at a target FPIR, as ``(fnir, threshold)``, or ``None`` when unresolvable.

    The threshold is the lowest one (among all finite scores seen, plus one just above the highest)
    whose FPIR is ``<= fpir``. Failed searches carry ``-inf`` scores: a mated one is a miss, a
    non-mated one is never a false positive (NIST's treatment of failures to extract).
    """
    if not 0.0 < fpir < 1.0:
        raise ValidationError(f"FPIR target must be in (0, 1), got {fpir}")
    mated = as_scores(mate_scores, "mate scores", allow_neg_inf=True)
    ranks = np.asarray(mate_ranks, dtype=np.float64).reshape(-1)
    nonmated = as_scores(nonmated_top_scores, "non-mated scores", allow_neg_inf=True)
    if mated.size == 0 or not resolvable(nonmated.size, fpir):
        return None
    finite = np.concatenate([mated[np.isfinite(mated)], nonmated[np.isfinite(nonmated)]])
    if finite.size == 0:
        return 1.0, float("inf")
    distinct = np.unique(finite)
    candidates = np.concatenate([distinct, [np.nextafter(distinct[-1], np.inf)]])
    fp = _count_at_or_above(np.sort(nonmated), candidates) / nonmated.size
    idx = int(np.flatnonzero(fp <= fpir + 1e-12)[0])  # candidates ascend: first admissible = lowest
    t = float(candidates[idx])
    fnir = fnir_at(mated, ranks, t, max_rank)
    assert fnir is not None
    return fnir, t


# --------------------------------------------------------------------------------------------------
# Threshold calibration


def _binomial_cdf(n: int, p: float, kmax: int) -> Array:
    """P(K <= k) for k = 0..kmax, K ~ Binomial(n, p), computed in log space (no scipy needed)."""
    ks = np.arange(kmax + 1, dtype=np.float64)
    if p <= 0.0:
        return np.ones(kmax + 1)
    log_ratio = np.log(n - ks[:-1]) - np.log(ks[:-1] + 1.0) + math.log(p) - math.log1p(-p)
    logpmf = np.concatenate([[n * math.log1p(-p)], n * math.log1p(-p) + np.cumsum(log_ratio)])
    top = float(logpmf.max())
    cdf = np.exp(top) * np.cumsum(np.exp(logpmf - top))
    return np.minimum(cdf, 1.0)


@dataclass(frozen=True)
class Calibration:
    """A threshold for a target FMR, with a distribution-free confidence interval."""

    target_fmr: float
    threshold: float
    ci_low: float | None
    ci_high: float | None
    impostor_pairs: int
    observed_fmr: float
    confidence: float
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The JSON object printed by ``faceleads evaluate calibrate``."""
        return {
            "target_fmr": self.target_fmr,
            "threshold": self.threshold,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            "impostor_pairs": self.impostor_pairs,
            "observed_fmr": self.observed_fmr,
            "method": "exact binomial order statistics (distribution-free)",
            "warnings": self.warnings,
        }


def calibrate_threshold(impostor: npt.ArrayLike, target_fmr: float, confidence: float = 0.95) -> Calibration:
    """The threshold reaching ``target_fmr`` on impostor scores, with a confidence interval.

    Point estimate: the lowest impostor score ``u`` whose observed FMR (share of impostors ``>= u``) is
    ``<= target_fmr``, or a value just above the highest impostor score when even that one is too many.
    Without ties this is the ``k``-th highest impostor score, ``k = floor(target * n)``.

    Interval: the true threshold ``tau`` (where P(impostor >= tau) = target) lies between the ``a``-th and
    ``b``-th highest scores with probability ``P(a <= K < b)``, ``K ~ Binomial(n, target)``, for any score
    distribution (order statistics). ``a`` and ``b`` are chosen so each tail has at most
    ``(1 - confidence)/2``. An end that the data cannot bound (too few impostors) is ``None``.
    """
    if not 0.0 < target_fmr < 1.0:
        raise ValidationError(f"target FMR must be in (0, 1), got {target_fmr}")
    if not 0.5 <= confidence < 1.0:
        raise ValidationError(f"confidence must be in [0.5, 1), got {confidence}")
    imp = as_scores(impostor, "impostor scores")
    n = int(imp.size)
    if n == 0:
        raise ValidationError("calibration needs impostor comparisons, and there are none")
    desc = np.sort(imp)[::-1]
    warnings: list[str] = []
    if n < 3.0 / target_fmr:
        warnings.append(
            f"only {n} impostor comparisons for a target FMR of {target_fmr:g}: at least "
            f"{math.ceil(3.0 / target_fmr)} are needed for a meaningful threshold (rule of three)"
        )
    # Point estimate.
    asc = desc[::-1]
    distinct = np.unique(asc)
    candidates = np.concatenate([distinct, [np.nextafter(distinct[-1], np.inf)]])
    fmr = _count_at_or_above(asc, candidates) / n
    idx = int(np.flatnonzero(fmr <= target_fmr + 1e-12)[0])
    threshold = float(candidates[idx])
    # Interval from order statistics: K = number of impostors >= tau.
    alpha = (1.0 - confidence) / 2.0
    mean = n * target_fmr
    kmax = int(min(n, math.ceil(mean + 12.0 * math.sqrt(mean * (1 - target_fmr)) + 50)))
    cdf = _binomial_cdf(n, target_fmr, kmax)
    # a: largest j >= 1 with P(K <= j-1) <= alpha  -> desc[a-1] >= tau with prob >= 1 - alpha
    below = np.flatnonzero(cdf <= alpha)  # values of j-1
    a = int(below[-1]) + 1 if below.size else 0
    # b: smallest j with P(K <= j-1) >= 1 - alpha -> desc[b-1] < tau with prob >= 1 - alpha
    above = np.flatnonzero(cdf >= 1.0 - alpha)
    b = int(above[0]) + 1 if above.size else n + 1
    ci_high = float(desc[a - 1]) if a >= 1 else None
    ci_low = float(desc[b - 1]) if b <= n else None
    if ci_high is None:
        warnings.append("too few impostor comparisons to bound the threshold from above")
    return Calibration(
        target_fmr=target_fmr,
        threshold=threshold,
        ci_low=ci_low,
        ci_high=ci_high,
        impostor_pairs=n,
        observed_fmr=float(fmr[idx]),
        confidence=confidence,
        warnings=warnings,
    )


# --------------------------------------------------------------------------------------------------
# Demographic differentials


def _ratio(values: Sequence[float | None], counts: Sequence[int] | None = None, min_trials: int = 1) -> float | None:
    """Highest / lowest of the defined values; ``None`` with fewer than two or a zero lowest.

    With ``counts``, only values resting on at least ``min_trials`` trials take part (tiny groups would
    otherwise decide the ratio by chance).
    """
    if counts is not None:
        values = [v for v, n in zip(values, counts, strict=True) if n >= min_trials]
    vals = [v for v in values if v is not None]
    if len(vals) < 2 or min(vals) <= 0.0:
        return None
    return float(max(vals) / min(vals))


#: Fewer observed errors than this make a rate too uncertain to compare groups on (its relative standard error
#: is above ~45%); the group is still reported, with a warning and its interval.
MIN_ERRORS = 5


def _trial_warnings(
    per_group: dict[str, dict[str, Any]], count_key: str, rate_key: str, what: str, min_trials: int
) -> list[str]:
    """Warnings for groups with too few trials (left out of the ratios) or too few observed errors."""
    out = []
    for g, row in per_group.items():
        n = int(row[count_key])
        rate = row[rate_key]
        label = count_key.replace("_", " ")
        if n < min_trials:
            out.append(
                f"group {g}: {n} {label}, fewer than {min_trials}: too few to judge its {rate_key.upper()} "
                "(reported, but left out of the ratios)"
            )
        elif rate is not None and round(rate * n) == 0:
            out.append(
                f"group {g}: 0 {what} in {n} {label}: its {rate_key.upper()} cannot be compared between groups "
                f"(a bootstrap interval of a zero count is [0, 0]; by the rule of three it is below {3 / n:.2g} "
                "at 95% confidence)"
            )
        elif rate is not None and round(rate * n) < MIN_ERRORS:
            out.append(
                f"group {g}: {round(rate * n)} {what} in {n} {label}: its {rate_key.upper()} is too uncertain to "
                "compare groups on (see its confidence interval)"
            )
    return out


def _relative(value: float | None, overall: float | None) -> float | None:
    if value is None or overall is None or overall <= 0.0:
        return None
    return float(value / overall)


def _codes(groups: npt.ArrayLike, names: Sequence[str], what: str) -> npt.NDArray[np.int64]:
    codes = np.asarray(groups, dtype=np.int64).reshape(-1)
    if codes.size and (codes.min() < -1 or codes.max() >= len(names)):
        raise ValidationError(f"{what}: group codes must be -1 (unknown) or index a group name")
    return codes


def _ratio_intervals(
    rates: dict[str, list[npt.NDArray[np.float64]]], confidence: float, replicates: int, seed: int
) -> dict[str, Any]:
    """Bootstrap intervals of each error rate's group ratio (``<kind>_ratio_ci``, from the replicate rates of the
    groups with enough trials; NaN with fewer than two such groups), and how the replicates were drawn."""
    intervals: dict[str, Any] = {}
    for kind, reps in rates.items():
        ratio_reps = bootstrap.replicate_ratios(reps) if len(reps) >= 2 else np.full(1, np.nan)
        intervals[f"{kind}_ratio_ci"] = bootstrap.percentile_interval(ratio_reps, confidence)
    intervals["bootstrap"] = {
        "replicates": int(replicates),
        "confidence": float(confidence),
        "unit": "identity",
        "seed": int(seed),
    }
    return intervals


def verification_differentials(
    scores: npt.ArrayLike,
    same: npt.ArrayLike,
    group_a: npt.ArrayLike,
    group_b: npt.ArrayLike,
    names: Sequence[str],
    threshold: float,
    min_trials: int = 1,
    *,
    cluster_a: npt.ArrayLike | None = None,
    cluster_b: npt.ArrayLike | None = None,
    replicates: int = 0,
    confidence: float = 0.95,
    seed: int = bootstrap.DEFAULT_SEED,
) -> dict[str, Any]:
    """Per-group FMR and FNMR at one global threshold, NIST-style differentials and cross-group FMR.

    With ``replicates`` > 0 and the cluster (identity) of each pair's two images, every group's FMR and FNMR and
    the two ratios get ``confidence`` bootstrap intervals (``fmr_ci``, ``fnmr_ci``, ``fmr_ratio_ci``,
    ``fnmr_ratio_ci``: [low, high], an unbounded end is None), resampling identities
    (:mod:`faceleads.evaluation.bootstrap`), and ``warnings`` name the groups with too few trials or errors to judge.

    ``group_a`` / ``group_b`` are integer codes into ``names`` for the two images of each pair, ``-1``
    meaning unknown. A pair belongs to group ``g`` when both images are in ``g``; an impostor pair whose
    images are in two different (known) groups is a *cross-group* impostor pair, reported separately.
    Pairs with an unknown image count only in the overall figures. ``fmr_ratio`` is the highest group FMR
    over the lowest (``None`` when fewer than two groups have impostor pairs or the lowest is 0);
    ``*_relative`` is a group's rate over the overall rate. A group without impostor (or genuine) pairs
    has ``None`` for FMR (or FNMR). Ratios use only groups with at least ``min_trials`` pairs of the kind.
    """
    s = as_scores(scores)
    lab = np.asarray(same, dtype=bool).reshape(-1)
    ga = _codes(group_a, names, "group_a")
    gb = _codes(group_b, names, "group_b")
    if not s.size == lab.size == ga.size == gb.size:
        raise ValidationError("scores, labels and both group columns must have the same length")
    match = s >= threshold
    n_imp_all = int(np.count_nonzero(~lab))
    n_gen_all = int(np.count_nonzero(lab))
    overall_fmr = None if n_imp_all == 0 else float(np.count_nonzero(match & ~lab) / n_imp_all)
    overall_fnmr = None if n_gen_all == 0 else float(np.count_nonzero(~match & lab) / n_gen_all)
    known = (ga >= 0) & (gb >= 0)
    per_group: dict[str, dict[str, Any]] = {}
    for code, g in enumerate(names):
        inside = (ga == code) & (gb == code)
        gen = inside & lab
        imp = inside & ~lab
        n_gen = int(np.count_nonzero(gen))
        n_imp = int(np.count_nonzero(imp))
        fmr = None if n_imp == 0 else float(np.count_nonzero(match & imp) / n_imp)
        fnmr = None if n_gen == 0 else float(np.count_nonzero(~match & gen) / n_gen)
        per_group[g] = {
            "genuine_pairs": n_gen,
            "impostor_pairs": n_imp,
            "fmr": fmr,
            "fnmr": fnmr,
            "fmr_relative": _relative(fmr, overall_fmr),
            "fnmr_relative": _relative(fnmr, overall_fnmr),
        }
    cross = known & (ga != gb) & ~lab
    n_cross = int(np.count_nonzero(cross))
    warnings = _trial_warnings(per_group, "impostor_pairs", "fmr", "false matches", min_trials)
    warnings += _trial_warnings(per_group, "genuine_pairs", "fnmr", "false non-matches", min_trials)
    ratios_ci: dict[str, Any] = {}
    if replicates > 0 and cluster_a is not None and cluster_b is not None:
        ca = np.asarray(cluster_a, dtype=np.int64).reshape(-1)
        cb = np.asarray(cluster_b, dtype=np.int64).reshape(-1)
        if not ca.size == cb.size == s.size:
            raise ValidationError("cluster columns must have one entry per pair")
        rng = np.random.default_rng(seed)
        weights = bootstrap.cluster_weights(int(max(ca.max(initial=0), cb.max(initial=0))) + 1, replicates, rng)
        rates: dict[str, list[npt.NDArray[np.float64]]] = {"fmr": [], "fnmr": []}
        for code, g in enumerate(names):
            inside = (ga == code) & (gb == code)
            for kind, mask, errors, count_key in (
                ("fmr", inside & ~lab, match, "impostor_pairs"),
                ("fnmr", inside & lab, ~match, "genuine_pairs"),
            ):
                cells = bootstrap.aggregate(ca[mask], cb[mask], errors[mask])
                reps = bootstrap.replicate_rates(weights, cells)
                per_group[g][f"{kind}_ci"] = bootstrap.percentile_interval(reps, confidence)
                if per_group[g][count_key] >= min_trials:
                    rates[kind].append(reps)
        ratios_ci.update(_ratio_intervals(rates, confidence, replicates, seed))
    return {
        "threshold": float(threshold),
        "overall": {
            "genuine_pairs": n_gen_all,
            "impostor_pairs": n_imp_all,
            "fmr": overall_fmr,
            "fnmr": overall_fnmr,
        },
        "per_group": per_group,
        "fmr_ratio": _ratio(
            [v["fmr"] for v in per_group.values()], [v["impostor_pairs"] for v in per_group.values()], min_trials
        ),
        "fnmr_ratio": _ratio(
            [v["fnmr"] for v in per_group.values()], [v["genuine_pairs"] for v in per_group.values()], min_trials
        ),
        **ratios_ci,
        "min_trials": int(min_trials),
        "cross_group_impostors": {
            "impostor_pairs": n_cross,
            "fmr": None if n_cross == 0 else float(np.count_nonzero(match & cross) / n_cross),
        },
        "unlabelled_pairs": int(np.count_nonzero(~known)),
        "warnings": warnings,
    }


def identification_differentials(
    mate_scores: npt.ArrayLike,
    mate_ranks: npt.ArrayLike,
    mated_groups: npt.ArrayLike,
    nonmated_top_scores: npt.ArrayLike,
    nonmated_groups: npt.ArrayLike,
    names: Sequence[str],
    threshold: float,
    max_rank: int,
    min_trials: int = 1,
    *,
    mated_clusters: npt.ArrayLike | None = None,
    nonmated_clusters: npt.ArrayLike | None = None,
    replicates: int = 0,
    confidence: float = 0.95,
    seed: int = bootstrap.DEFAULT_SEED,
) -> dict[str, Any]:
    """Per probe group: FNIR and FPIR at one global threshold, rank-1 and rank-50 hit rates, differentials.

    Groups are integer codes into ``names`` (``-1`` unknown: counted only overall). ``fpir_ratio`` /
    ``fnir_ratio`` are highest over lowest group rate (``None`` when undefined); ``*_relative`` is the
    group's rate over the overall one. Ratios use only groups with at least ``min_trials`` searches.
    With ``replicates`` > 0 and the cluster (identity) of each search, group rates and ratios get bootstrap
    intervals (``fnir_ci``, ``fpir_ci``, ``fnir_ratio_ci``, ``fpir_ratio_ci``) resampling identities.
    """
    ms = as_scores(mate_scores, "mate scores", allow_neg_inf=True)
    mr = np.asarray(mate_ranks, dtype=np.float64).reshape(-1)
    mg = _codes(mated_groups, names, "mated groups")
    ns = as_scores(nonmated_top_scores, "non-mated scores", allow_neg_inf=True)
    ng = _codes(nonmated_groups, names, "non-mated groups")
    if not (ms.size == mr.size == mg.size and ns.size == ng.size):
        raise ValidationError("identification scores, ranks and groups must have matching lengths")
    overall_fnir = fnir_at(ms, mr, threshold, max_rank)
    overall_fpir = fpir_at(ns, threshold)
    per_group: dict[str, dict[str, Any]] = {}
    for code, g in enumerate(names):
        m = mg == code
        n = ng == code
        fnir = fnir_at(ms[m], mr[m], threshold, max_rank)
        fpir = fpir_at(ns[n], threshold)
        hits = cmc(mr[m], [1, 50])
        per_group[g] = {
            "mated_probes": int(np.count_nonzero(m)),
            "nonmated_probes": int(np.count_nonzero(n)),
            "fnir": fnir,
            "fpir": fpir,
            "fnir_relative": _relative(fnir, overall_fnir),
            "fpir_relative": _relative(fpir, overall_fpir),
            "rank1": hits[1],
            "fnir_rank50": None if hits[50] is None else 1.0 - hits[50],
        }
    warnings = _trial_warnings(per_group, "mated_probes", "fnir", "missed mated searches", min_trials)
    warnings += _trial_warnings(per_group, "nonmated_probes", "fpir", "false positive searches", min_trials)
    ratios_ci: dict[str, Any] = {}
    if replicates > 0 and mated_clusters is not None and nonmated_clusters is not None:
        mc = np.asarray(mated_clusters, dtype=np.int64).reshape(-1)
        nc = np.asarray(nonmated_clusters, dtype=np.int64).reshape(-1)
        if mc.size != ms.size or nc.size != ns.size:
            raise ValidationError("cluster columns must have one entry per search")
        miss = (mr > max_rank) | (ms < threshold)
        false_pos = ns >= threshold
        n_clusters = int(max(mc.max(initial=0), nc.max(initial=0))) + 1
        weights = bootstrap.cluster_weights(n_clusters, replicates, np.random.default_rng(seed))
        rates: dict[str, list[npt.NDArray[np.float64]]] = {"fnir": [], "fpir": []}
        for code, g in enumerate(names):
            for kind, clusters, errors, mask, count_key in (
                ("fnir", mc, miss, mg == code, "mated_probes"),
                ("fpir", nc, false_pos, ng == code, "nonmated_probes"),
            ):
                cells = bootstrap.aggregate(clusters[mask], clusters[mask], errors[mask])
                reps = bootstrap.replicate_rates(weights, cells)
                per_group[g][f"{kind}_ci"] = bootstrap.percentile_interval(reps, confidence)
                if per_group[g][count_key] >= min_trials:
                    rates[kind].append(reps)
        ratios_ci.update(_ratio_intervals(rates, confidence, replicates, seed))
    return {
        "threshold": float(threshold),
        "max_rank": int(max_rank),
        "overall": {
            "mated_probes": int(ms.size),
            "nonmated_probes": int(ns.size),
            "fnir": overall_fnir,
            "fpir": overall_fpir,
        },
        "per_group": per_group,
        "fpir_ratio": _ratio(
            [v["fpir"] for v in per_group.values()], [v["nonmated_probes"] for v in per_group.values()], min_trials
        ),
        "fnir_ratio": _ratio(
            [v["fnir"] for v in per_group.values()], [v["mated_probes"] for v in per_group.values()], min_trials
        ),
        **ratios_ci,
        "min_trials": int(min_trials),
        "warnings": warnings,
    }
