"""Identification (1:N) evaluation on a labelled folder: gallery/probe split, exact search, CMC, FNIR.

Split rules (documented in ``docs/accuracy.md``):

* Without a ``role`` column: for each identity with two or more photos, its first photo (file order)
  goes to the gallery and the others are mated probes; an identity with a single photo is a non-mated
  probe (nobody in the gallery). ``holdout`` (a share in [0, 1)) additionally holds out that share of the
  multi-photo identities, chosen by the SHA-256 of the identity name (stable, order independent): all
  their photos become non-mated probes. Use it when a data set has no single-photo identities.
* With a ``role`` column (``gallery`` / ``probe`` on every row): rows go where they say; a probe is
  mated when its identity has a gallery photo, non-mated otherwise.
* An optional ``probe_group`` column fuses the probes sharing a value into one search (several shots of
  one unknown person): quality-weighted mean of their embeddings, renormalised. A probe group must hold
  one identity.

Search is exact (all gallery templates), consolidated per identity with ``settings.score_fusion``:
``best`` keeps the best photo's score, ``mean_template`` fuses each identity's photos into one template.
A mate's rank is 1 + the number of other identities scoring at least as high (ties count against the
mate). Failures: a search whose every probe image failed returns nothing (score ``-inf``: a miss when
mated, never a false positive when non-mated); a mated search whose identity has no enrolled gallery
photo is a miss.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceleads.config import ScoreFusion
from faceleads.errors import ValidationError
from faceleads.evaluation import metrics
from faceleads.evaluation.datasets import LabelledImage
from faceleads.evaluation.templates import Template, embedding_matrix, fuse
from faceleads.evaluation.verify import group_codes, rate_key

RANKS: tuple[int, ...] = (1, 5, 10, 20, 50)
DEFAULT_FPIRS: tuple[float, ...] = (1e-1, 1e-2, 1e-3)
MAX_RANK = max(RANKS)


@dataclass
class Search:
    """One probe search: one or more images of one identity (fused when several)."""

    identity: str
    images: list[LabelledImage]
    mated: bool = False


@dataclass
class Split:
    """Gallery photos and probe searches."""

    gallery: list[LabelledImage]
    searches: list[Search]

    @property
    def mated(self) -> list[Search]:
        """Searches whose identity is in the gallery."""
        return [s for s in self.searches if s.mated]

    @property
    def nonmated(self) -> list[Search]:
        """Searches whose identity is not in the gallery."""
        return [s for s in self.searches if not s.mated]


def _held_out(identities: Sequence[str], share: float) -> set[str]:
    if not 0.0 <= share < 1.0:
        raise ValidationError(f"holdout must be in [0, 1), got {share}")
    count = round(share * len(identities))
    ordered = sorted(identities, key=lambda name: hashlib.sha256(name.encode("utf-8")).hexdigest())
    return set(ordered[:count])


def split_labels(rows: Sequence[LabelledImage], holdout: float = 0.0) -> Split:
    """Split labelled images into a gallery and probe searches (see the module docstring)."""
    by_identity: OrderedDict[str, list[LabelledImage]] = OrderedDict()
    for r in rows:
        by_identity.setdefault(r.identity, []).append(r)
    gallery: list[LabelledImage] = []
    probes: list[LabelledImage] = []
    if any(r.role is not None for r in rows):
        if holdout:
            raise ValidationError("holdout cannot be combined with a role column (roles decide the split)")
        gallery = [r for r in rows if r.role == "gallery"]
        probes = [r for r in rows if r.role == "probe"]
    else:
        multi = [name for name, imgs in by_identity.items() if len(imgs) >= 2]
        held = _held_out(multi, holdout)
        for name, imgs in by_identity.items():
            if len(imgs) >= 2 and name not in held:
                gallery.append(imgs[0])
                probes.extend(imgs[1:])
            else:
                probes.extend(imgs)
    enrolled = {r.identity for r in gallery}
    grouped: OrderedDict[str, list[LabelledImage]] = OrderedDict()
    searches: list[Search] = []
    for p in probes:
        if p.probe_group:
            grouped.setdefault(p.probe_group, []).append(p)
        else:
            searches.append(Search(p.identity, [p], p.identity in enrolled))
    for name, imgs in grouped.items():
        idents = {i.identity for i in imgs}
        if len(idents) > 1:
            raise ValidationError(
                f"probe_group {name!r} mixes identities {sorted(idents)} (line {imgs[0].line}): "
                "a probe group is several shots of one person"
            )
        searches.append(Search(imgs[0].identity, imgs, imgs[0].identity in enrolled))
    if not gallery:
        raise ValidationError("the split left the gallery empty: an identity needs two photos, or use roles")
    if not searches:
        raise ValidationError("the split left no probes")
    return Split(gallery, searches)


@dataclass
class SearchResults:
    """Per search: the mate's consolidated score and rank, and the top candidate's score."""

    gallery_identities: int
    gallery_images: int
    mate_scores: npt.NDArray[np.float64]
    mate_ranks: npt.NDArray[np.float64]
    mated_groups: npt.NDArray[np.int64]
    nonmated_top: npt.NDArray[np.float64]
    nonmated_groups: npt.NDArray[np.int64]
    group_names: list[str] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    # Identity cluster of each mated / non-mated search (for bootstrap intervals that resample people).
    mated_clusters: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    nonmated_clusters: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))


def consolidated_scores(
    probes: npt.NDArray[np.float32],
    gallery: npt.NDArray[np.float32],
    gallery_identity: npt.NDArray[np.int64],
    n_identities: int,
) -> npt.NDArray[np.float64]:
    """Per probe and identity, the best score of that identity's gallery photos (-inf: none)."""
    out = np.full((probes.shape[0], n_identities), -np.inf, dtype=np.float64)
    if gallery.shape[0] == 0 or probes.shape[0] == 0:
        return out
    order = np.argsort(gallery_identity, kind="stable")
    ids = gallery_identity[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    sims = probes.astype(np.float32) @ gallery[order].T
    out[:, ids[starts]] = np.maximum.reduceat(sims, starts, axis=1)
    return out


def run_searches(
    split: Split,
    templates: dict[Path, Template],
    group_column: str | None = None,
    fusion: ScoreFusion = ScoreFusion.BEST,
) -> SearchResults:
    """Search every probe against the gallery (exact, consolidated per identity)."""
    enrolled = [g for g in split.gallery if templates[g.path].ok]
    identities = sorted({g.identity for g in split.gallery})
    index = {name: i for i, name in enumerate(identities)}
    g_mat, _ = embedding_matrix([templates[g.path] for g in enrolled])
    g_ident = np.array([index[g.identity] for g in enrolled], dtype=np.int64)
    if fusion is ScoreFusion.MEAN_TEMPLATE and enrolled:
        fused_ids = np.unique(g_ident)
        g_mat = np.stack(
            [
                fuse(
                    g_mat[g_ident == i],
                    [templates[enrolled[j].path].quality for j in np.flatnonzero(g_ident == i)],
                )
                for i in fused_ids
            ]
        )
        g_ident = fused_ids
    # Probe vectors (fused per search); a search with no usable image has no vector.
    vectors = np.zeros((len(split.searches), g_mat.shape[1] if g_mat.size else 512), dtype=np.float32)
    usable = np.zeros(len(split.searches), dtype=bool)
    for k, s in enumerate(split.searches):
        ok = [templates[i.path] for i in s.images if templates[i.path].ok]
        if ok:
            emb = np.stack([t.embedding for t in ok if t.embedding is not None])
            vectors[k] = fuse(emb, [t.quality for t in ok]) if len(ok) > 1 else emb[0]
            usable[k] = True
    scores = consolidated_scores(vectors, g_mat, g_ident, len(identities))
    scores[~usable] = -np.inf
    top = scores.max(axis=1) if identities else np.full(len(split.searches), -np.inf)
    if group_column is not None:
        codes, names = group_codes([s.images[0].columns.get(group_column, "") for s in split.searches])
    else:
        codes, names = np.full(len(split.searches), -1, dtype=np.int64), []
    cluster_names = {name: i for i, name in enumerate(sorted({s.identity for s in split.searches}))}
    clusters = np.array([cluster_names[s.identity] for s in split.searches], dtype=np.int64)
    mated_idx = [k for k, s in enumerate(split.searches) if s.mated]
    non_idx = [k for k, s in enumerate(split.searches) if not s.mated]
    mate_scores = np.full(len(mated_idx), -np.inf)
    mate_ranks = np.full(len(mated_idx), np.inf)
    enrolled_ids = set(g_ident.tolist())
    not_enrolled = 0
    for n, k in enumerate(mated_idx):
        mate = index[split.searches[k].identity]
        if mate not in enrolled_ids:
            not_enrolled += 1
            continue
        if not usable[k]:
            continue
        row = scores[k]
        mate_scores[n] = row[mate]
        mate_ranks[n] = int(np.count_nonzero(row >= row[mate]))  # the mate plus every other scoring >= it
    return SearchResults(
        gallery_identities=len(enrolled_ids),
        gallery_images=len(enrolled),
        mate_scores=mate_scores,
        mate_ranks=mate_ranks,
        mated_groups=codes[mated_idx] if mated_idx else np.zeros(0, np.int64),
        nonmated_top=top[non_idx] if non_idx else np.zeros(0),
        nonmated_groups=codes[non_idx] if non_idx else np.zeros(0, np.int64),
        mated_clusters=clusters[mated_idx] if mated_idx else np.zeros(0, np.int64),
        nonmated_clusters=clusters[non_idx] if non_idx else np.zeros(0, np.int64),
        group_names=names,
        failures={
            "gallery_images": len(split.gallery) - len(enrolled),
            "probe_searches": int(np.count_nonzero(~usable)),
            "mates_not_enrolled": not_enrolled,
        },
    )


def evaluate_identification(
    res: SearchResults,
    max_rank: int,
    group_threshold: float | None = None,
    fpirs: Sequence[float] = DEFAULT_FPIRS,
    min_group_trials: int = 1,
    replicates: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The identification figures (the ``faceleads evaluate identify --json`` object).

    ``replicates`` > 0 adds bootstrap intervals (resampling probe identities) to the per-group figures.
    """
    warnings: list[str] = []
    if res.gallery_identities < MAX_RANK:
        warnings.append(
            f"the gallery has {res.gallery_identities} identities: ranks at or above that are trivially hits"
        )
    if res.mate_scores.size == 0:
        warnings.append("no mated probes: rank and FNIR figures are undefined")
    cmc = metrics.cmc(res.mate_ranks, RANKS)
    fnir: dict[str, float | None] = {}
    thresholds: dict[str, float | None] = {}
    for fpir in fpirs:
        out = metrics.fnir_at_fpir(res.mate_scores, res.mate_ranks, res.nonmated_top, fpir, max_rank)
        fnir[rate_key(fpir)] = None if out is None else out[0]
        thresholds[rate_key(fpir)] = None if out is None else out[1]
        if out is None and res.mate_scores.size:
            warnings.append(
                f"FNIR at FPIR {fpir:g} needs at least {round(1 / fpir)} non-mated searches "
                f"(have {res.nonmated_top.size})"
            )
    result: dict[str, Any] = {
        "gallery": res.gallery_identities,
        "gallery_images": res.gallery_images,
        "mated_probes": int(res.mate_scores.size),
        "nonmated_probes": int(res.nonmated_top.size),
        "failures": res.failures,
        "rank": {str(k): v for k, v in cmc.items()},
        "fnir_at_fpir": fnir,
        "threshold_at_fpir": thresholds,
        "candidate_list_length": max_rank,
        "fnir_rank50": metrics.fnir_at_rank(res.mate_ranks, 50),
        "warnings": warnings,
    }
    if res.group_names and group_threshold is not None:
        result["groups"] = metrics.identification_differentials(
            res.mate_scores,
            res.mate_ranks,
            res.mated_groups,
            res.nonmated_top,
            res.nonmated_groups,
            res.group_names,
            group_threshold,
            max_rank,
            min_group_trials,
            mated_clusters=res.mated_clusters,
            nonmated_clusters=res.nonmated_clusters,
            replicates=replicates,
            confidence=confidence,
        )
        warnings.extend(result["groups"]["warnings"])
    return result
