"""Verification (1:1) evaluation: pair scores from templates, then accuracy, ROC/DET, EER, TAR at FAR.

Two sources of pairs:

* a pairs file (:func:`faceleads.evaluation.datasets.read_pairs`): the listed pairs, with the file's
  folds or 10 stratified folds;
* a labels file with no pairs file (*all-pairs mode*): every pair of labelled images, genuine when the
  identities match. Accuracy then uses 10 folds dealt round-robin over the genuine and the impostor pairs,
  and is dominated by the (far more numerous) impostor pairs: read TAR at FAR and EER instead.

A pair with a failure to enrol on either side gets the score -1: a non-match at every usable threshold
(it counts against accuracy when genuine, and never as a false match). ``failures`` counts such pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceleads.errors import ValidationError
from faceleads.evaluation import metrics
from faceleads.evaluation.datasets import LabelledImage, PairSet, stratified_folds
from faceleads.evaluation.templates import Template, embedding_matrix

FAILED_SCORE = -1.0
DEFAULT_FARS: tuple[float, ...] = (1e-2, 1e-3, 1e-4)


def rate_key(rate: float) -> str:
    """JSON key of a rate: ``0.01``, ``0.001``, ``0.0001`` (plain decimal, as the issue specifies)."""
    return np.format_float_positional(rate, trim="-")


@dataclass
class PairScores:
    """Scores of a set of pairs with everything the metrics need."""

    scores: npt.NDArray[np.float64]
    same: npt.NDArray[np.bool_]
    folds: npt.NDArray[np.int64]
    failed: npt.NDArray[np.bool_]
    protocol: str
    failed_images: int = 0
    group_a: npt.NDArray[np.int64] | None = None
    group_b: npt.NDArray[np.int64] | None = None
    group_names: list[str] = field(default_factory=list)
    # Cluster (identity, or image when identities are unknown) of each pair's two images, for the bootstrap.
    cluster_a: npt.NDArray[np.int64] | None = None
    cluster_b: npt.NDArray[np.int64] | None = None

    @property
    def genuine(self) -> npt.NDArray[np.float64]:
        """Scores of the same-person pairs."""
        return self.scores[self.same]

    @property
    def impostor(self) -> npt.NDArray[np.float64]:
        """Scores of the different-person pairs."""
        return self.scores[~self.same]


def group_codes(values: Sequence[str]) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Integer codes for group labels (blank = unknown = -1) and the sorted group names."""
    names = sorted({v for v in values if v})
    index = {n: i for i, n in enumerate(names)}
    return np.array([index.get(v, -1) for v in values], dtype=np.int64), names


def cluster_codes(paths_a: Sequence[Path], paths_b: Sequence[Path], identities: dict[Path, str] | None) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64]
]:
    """Integer cluster ids of both images of each pair: the identity when known (labels file), else the image."""
    keys: dict[str, int] = {}

    def code(path: Path) -> int:
        resolved = path.resolve()
        key = identities.get(resolved) if identities else None
        name = f"id:{key}" if key else f"img:{resolved}"
        return keys.setdefault(name, len(keys))

    a = np.array([code(p) for p in paths_a], dtype=np.int64)
    b = np.array([code(p) for p in paths_b], dtype=np.int64)
    return a, b


def score_pair_set(
    pair_set: PairSet,
    templates: dict[Path, Template],
    groups: dict[Path, str] | None = None,
    identities: dict[Path, str] | None = None,
) -> PairScores:
    """Cosine scores of the pairs of a pairs file (failures scored -1), with folds and optional groups.

    ``identities`` (image -> identity, from a labels file) cluster the pairs by person for the bootstrap
    intervals; images without one are their own cluster.
    """
    if not pair_set.pairs:
        raise ValidationError(f"{pair_set.source}: no pairs")
    a = [templates[p.a] for p in pair_set.pairs]
    b = [templates[p.b] for p in pair_set.pairs]
    ma, oka = embedding_matrix(a)
    mb, okb = embedding_matrix(b)
    ok = oka & okb
    scores = np.where(ok, np.einsum("ij,ij->i", ma, mb, dtype=np.float64), FAILED_SCORE)
    protocol = (
        "folds from the pairs file"
        if pair_set.folds_from_file
        else "10 folds dealt round-robin over genuine and impostor pairs (file has no folds)"
    )
    failed_images = sum(1 for t in {id(x): x for x in a + b}.values() if not t.ok)
    out = PairScores(
        scores=np.clip(scores, -1.0, 1.0),
        same=pair_set.same,
        folds=pair_set.folds(),
        failed=~ok,
        protocol=protocol,
        failed_images=failed_images,
    )
    out.cluster_a, out.cluster_b = cluster_codes(
        [p.a for p in pair_set.pairs], [p.b for p in pair_set.pairs], identities
    )
    if groups is not None:
        values_a = [groups.get(p.a.resolve(), "") for p in pair_set.pairs]
        values_b = [groups.get(p.b.resolve(), "") for p in pair_set.pairs]
        codes, names = group_codes(values_a + values_b)
        out.group_a, out.group_b, out.group_names = codes[: len(values_a)], codes[len(values_a) :], names
    return out


def all_pairs_scores(
    rows: Sequence[LabelledImage],
    templates: dict[Path, Template],
    group_column: str | None = None,
    impostors: bool = True,
) -> PairScores:
    """Every pair of labelled images (all-pairs mode), computed in blocks to bound memory.

    With ``impostors=False`` only the genuine pairs are kept (cheap), which callers use when they need
    genuine scores only.
    """
    n = len(rows)
    if n < 2:
        raise ValidationError("all-pairs evaluation needs at least two labelled images")
    mat, ok = embedding_matrix([templates[r.path] for r in rows])
    ident_names = sorted({r.identity for r in rows})
    ident_index = {name: i for i, name in enumerate(ident_names)}
    ident = np.array([ident_index[r.identity] for r in rows], dtype=np.int64)
    codes = names = None
    if group_column is not None:
        codes, names = group_codes([r.columns.get(group_column, "") for r in rows])
    parts_s: list[npt.NDArray[np.float32]] = []
    parts_i: list[npt.NDArray[np.int32]] = []
    parts_j: list[npt.NDArray[np.int32]] = []
    block = 256
    for start in range(0, n - 1, block):
        stop = min(n, start + block)
        sims = mat[start:stop] @ mat[start:].T  # rows start..stop against columns start..n
        ii, jj = np.nonzero(np.triu(np.ones_like(sims, dtype=bool), k=1))
        if not impostors:
            keep = ident[start + ii] == ident[start + jj]
            ii, jj = ii[keep], jj[keep]
        parts_s.append(sims[ii, jj].astype(np.float32))
        parts_i.append((start + ii).astype(np.int32))
        parts_j.append((start + jj).astype(np.int32))
    pi = np.concatenate(parts_i)
    pj = np.concatenate(parts_j)
    scores = np.concatenate(parts_s).astype(np.float64)
    pair_ok = ok[pi] & ok[pj]
    scores = np.clip(np.where(pair_ok, scores, FAILED_SCORE), -1.0, 1.0)
    same = ident[pi] == ident[pj]
    out = PairScores(
        scores=scores,
        same=same,
        folds=stratified_folds(same),
        failed=~pair_ok,
        protocol="all pairs of the labelled images; 10 folds dealt round-robin (impostor-dominated)",
        failed_images=int(np.count_nonzero(~ok)),
    )
    out.cluster_a, out.cluster_b = ident[pi], ident[pj]
    if codes is not None and names is not None:
        out.group_a, out.group_b, out.group_names = codes[pi], codes[pj], names
    return out


def evaluate_verification(
    ps: PairScores,
    group_threshold: float | None = None,
    fars: Sequence[float] = DEFAULT_FARS,
    min_group_trials: int = 1,
    replicates: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The verification figures (the ``faceleads evaluate verify --json`` object).

    ``replicates`` > 0 adds bootstrap intervals (resampling identities) to the per-group figures.
    """
    gen, imp = ps.genuine, ps.impostor
    if gen.size == 0 or imp.size == 0:
        raise ValidationError(
            f"verification needs genuine and impostor pairs (have {gen.size} genuine, {imp.size} impostor)"
        )
    warnings: list[str] = []
    kfold = metrics.kfold_accuracy(ps.scores, ps.same, ps.folds)
    threshold, _ = metrics.best_threshold(ps.scores, ps.same)
    eer, eer_threshold = metrics.equal_error_rate(gen, imp)
    tar: dict[str, float | None] = {}
    tar_thresholds: dict[str, float | None] = {}
    for far in fars:
        res = metrics.tar_at_far(gen, imp, far)
        tar[rate_key(far)] = None if res is None else res[0]
        tar_thresholds[rate_key(far)] = None if res is None else res[1]
        if res is None:
            warnings.append(f"TAR at FAR {far:g} needs at least {round(1 / far)} impostor pairs (have {imp.size})")
    result: dict[str, Any] = {
        "pairs": int(ps.scores.size),
        "genuine_pairs": int(gen.size),
        "impostor_pairs": int(imp.size),
        "failures": int(np.count_nonzero(ps.failed)),
        "failed_images": int(ps.failed_images),
        "accuracy": kfold.mean,
        "accuracy_std": kfold.std,
        "accuracy_protocol": ps.protocol,
        "eer": eer,
        "eer_threshold": eer_threshold,
        "threshold": threshold,
        "tar_at_far": tar,
        "threshold_at_far": tar_thresholds,
        "warnings": warnings,
    }
    if ps.group_a is not None and ps.group_b is not None and group_threshold is not None:
        result["groups"] = metrics.verification_differentials(
            ps.scores,
            ps.same,
            ps.group_a,
            ps.group_b,
            ps.group_names,
            group_threshold,
            min_group_trials,
            cluster_a=ps.cluster_a,
            cluster_b=ps.cluster_b,
            replicates=replicates,
            confidence=confidence,
        )
        warnings.extend(result["groups"]["warnings"])
    return result
