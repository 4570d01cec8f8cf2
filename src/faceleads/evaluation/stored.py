"""Per-agency stored calibrations and what they predict for live deployments (docs/live.md); stored summaries of
verify/identify runs, published in the transparency report (docs/transparency.md).

A calibration keeps only counts: how many impostor comparisons (two different people) scored at or above each
threshold of a fixed grid, plus the highest impostor scores exactly (the tail, where alert thresholds sit). From it:

- FMR(t): the share of impostor comparisons at or above ``t``, with a one-sided 95 % upper bound (Wilson), which is
  what to plan with when few or no impostors reach ``t``;
- the expected false alert rate of a live deployment: a passing face (one track) is compared with every template of
  the watch list, once per best shot, so ``m = templates x shots`` comparisons; with independent comparisons the
  chance that at least one reaches ``t`` is ``1 - (1 - FMR)^m`` (about ``m x FMR`` when small). Shots of one face
  are correlated, so this over-estimates a little: it is the planning figure, not a promise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.uow import transaction
from faceleads.errors import ValidationError
from faceleads.evaluation.models import EvaluationResult, ThresholdCalibration

GRID_LOW, GRID_HIGH, GRID_STEP = -0.2, 1.0, 0.005
TAIL_SCORES = 2000  # highest impostor scores kept exactly
MODEL_VERSION_LENGTH = 200  # ThresholdCalibration.model_version
Z_95_ONE_SIDED = 1.6449


def grid() -> npt.NDArray[np.float64]:
    """The thresholds a calibration curve is counted at (ascending)."""
    count = round((GRID_HIGH - GRID_LOW) / GRID_STEP) + 1
    return np.round(GRID_LOW + GRID_STEP * np.arange(count), 4)


def summarise_impostors(scores: npt.ArrayLike) -> tuple[int, list[list[float]], list[float]]:
    """(n, curve [[t, count >= t], ...], tail of the highest scores, descending) of impostor scores."""
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValidationError("no impostor comparisons to store")
    ordered = np.sort(values)
    thresholds = grid()
    counts = ordered.size - np.searchsorted(ordered, thresholds, side="left")
    curve = [[float(t), int(c)] for t, c in zip(thresholds, counts, strict=True)]
    tail = [round(float(v), 5) for v in ordered[::-1][:TAIL_SCORES]]
    return int(ordered.size), curve, tail


def count_at_or_above(curve: list[list[float]], tail: list[float], n: int, threshold: float) -> int:
    """Impostor comparisons scoring >= ``threshold``: exact within the tail, else the grid point just below
    (which can only over-count, never under-count)."""
    if tail and (len(tail) >= n or threshold >= tail[-1]):
        return sum(1 for v in tail if v >= threshold)
    below = [c for t, c in curve if t <= threshold]
    return int(below[-1]) if below else n


def wilson_upper(k: int, n: int, z: float = Z_95_ONE_SIDED) -> float:
    """One-sided upper confidence bound of a proportion ``k / n`` (Wilson score interval)."""
    if n <= 0:
        return 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / denom)


@dataclass(frozen=True)
class StoredCalibration:
    """A calibration as the live screens use it."""

    id: int
    source: str
    model_version: str
    dataset: str
    impostor_comparisons: int
    target_fmr: float | None
    threshold: float | None
    created_by: str
    created_at: datetime
    curve: list[list[float]]
    tail: list[float]

    def fmr(self, threshold: float) -> tuple[float, float, int]:
        """(observed FMR, its one-sided 95 % upper bound, impostors at or above) at ``threshold``."""
        k = count_at_or_above(self.curve, self.tail, self.impostor_comparisons, threshold)
        return k / self.impostor_comparisons, wilson_upper(k, self.impostor_comparisons), k

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("curve")
        data.pop("tail")
        data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True)
class ExpectedRate:
    """Expected false alerts of a threshold for a watch list, from a stored calibration."""

    threshold: float
    templates: int  # watch-list templates each passing face is compared with
    shots: int  # best shots compared per face
    comparisons_per_face: int
    fmr: float
    fmr_upper: float
    impostors_at_or_above: int
    false_alerts_per_1000: float  # expected false alerts per 1,000 faces passing (one per track)
    false_alerts_per_1000_upper: float
    calibration: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        """The figure as shown before a deployment starts."""
        c = self.calibration
        return (
            f"At threshold {self.threshold:.3f} with {self.templates} watch-list template(s) and up to {self.shots} "
            f"shot(s) per face, expect about {self.false_alerts_per_1000:.3g} false alert(s) per 1,000 faces "
            f"(95 % upper bound {self.false_alerts_per_1000_upper:.3g}), from calibration #{c['id']} "
            f"({c['source']}, {c['impostor_comparisons']} impostor comparisons, {c['created_at'][:10]})."
        )


def per_face_rate(fmr: float, comparisons: int) -> float:
    """Chance that at least one of ``comparisons`` independent impostor comparisons reaches the threshold."""
    if comparisons <= 0 or fmr <= 0:
        return 0.0
    return -math.expm1(comparisons * math.log1p(-min(fmr, 1 - 1e-15)))


def expected_rate(cal: StoredCalibration, threshold: float, templates: int, shots: int) -> ExpectedRate:
    """The expected false alert rate of ``threshold`` for ``templates`` list templates and ``shots`` per face."""
    if not -1.0 <= threshold <= 1.0:
        raise ValidationError(f"threshold {threshold} is outside [-1, 1]")
    fmr, upper, k = cal.fmr(threshold)
    m = max(0, templates) * max(1, shots)
    return ExpectedRate(
        threshold=threshold,
        templates=templates,
        shots=shots,
        comparisons_per_face=m,
        fmr=fmr,
        fmr_upper=upper,
        impostors_at_or_above=k,
        false_alerts_per_1000=1000 * per_face_rate(fmr, m),
        false_alerts_per_1000_upper=1000 * per_face_rate(upper, m),
        calibration=cal.summary(),
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _as_stored(row: ThresholdCalibration) -> StoredCalibration:
    return StoredCalibration(
        id=row.id,
        source=row.source,
        model_version=row.model_version,
        dataset=row.dataset,
        impostor_comparisons=row.impostor_comparisons,
        target_fmr=row.target_fmr,
        threshold=row.threshold,
        created_by=row.created_by,
        created_at=_utc(row.created_at),
        curve=[[float(t), int(c)] for t, c in row.curve],
        tail=[float(v) for v in (row.details or {}).get("tail", [])],
    )


def save_calibration(
    factory: sessionmaker[Session],
    actor: Actor,
    *,
    source: str,
    model_version: str,
    impostor_scores: npt.ArrayLike,
    dataset: str = "",
    target_fmr: float | None = None,
    threshold: float | None = None,
) -> StoredCalibration:
    """Store a calibration for the actor's agency (supervisors, administrators); audited.

    ``model_version`` is the template version the scores came from (``FaceEngine.model_version``: models, file
    digests, flip averaging, fusion); live deployments only use a calibration of the version they run.
    """
    enforce(factory, actor, Action.RECORD_CALIBRATION, "calibration:new", actor.agency_id)
    if source not in {"calibrate", "live_evaluation"}:
        raise ValidationError(f"unknown calibration source {source!r}")
    if not model_version or len(model_version) > MODEL_VERSION_LENGTH:
        # Never cut: a shortened version would silently match no pipeline (latest_calibration compares it whole).
        raise ValidationError(
            f"model version must have 1 to {MODEL_VERSION_LENGTH} characters, got {len(model_version)}"
        )
    n, curve, tail = summarise_impostors(impostor_scores)
    with transaction(factory) as session:
        row = ThresholdCalibration(
            agency_id=actor.agency_id,
            source=source,
            model_version=model_version,
            dataset=dataset[:2000],
            impostor_comparisons=n,
            curve=curve,
            target_fmr=target_fmr,
            threshold=threshold,
            details={"tail": tail},
            created_by=actor.username,
            created_by_user_id=actor.user_id,
        )
        session.add(row)
        session.flush()
        audit.record(session, actor, "calibration_save", f"calibration:{row.id}", audit.Outcome.OK,
                     details={"source": source, "impostor_count": n, "threshold": threshold,
                              "target_fmr": target_fmr, "model_version": model_version})  # fmt: skip
        return _as_stored(row)


def latest_calibration(
    session: Session, agency_id: int, model_version: str | None = None, before: datetime | None = None
) -> StoredCalibration | None:
    """The agency's most recent calibration (for ``model_version``, made before ``before``, when given), or None."""
    query = select(ThresholdCalibration).where(ThresholdCalibration.agency_id == agency_id)
    if model_version is not None:
        query = query.where(ThresholdCalibration.model_version == model_version)
    if before is not None:
        query = query.where(ThresholdCalibration.created_at < before)
    newest = query.order_by(ThresholdCalibration.created_at.desc(), ThresholdCalibration.id.desc())
    row = session.scalars(newest).first()
    return _as_stored(row) if row is not None else None


# --- stored verify / identify summaries (the transparency report's accuracy and demographic differentials) ----------

RESULT_KINDS = ("verify", "identify")
_HEADLINE: dict[str, tuple[str, ...]] = {
    "verify": ("pairs", "genuine_pairs", "impostor_pairs", "failures", "accuracy", "eer", "eer_threshold", "threshold",
               "tar_at_far", "threshold_at_far"),
    "identify": ("gallery", "gallery_images", "mated_probes", "nonmated_probes", "failures", "rank", "fnir_at_fpir",
                 "threshold_at_fpir", "fnir_rank50", "candidate_list_length", "score_fusion"),
}  # fmt: skip
_GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    "verify": ("genuine_pairs", "impostor_pairs", "fmr", "fnmr"),
    "identify": ("mated_probes", "nonmated_probes", "fnir", "fpir", "rank1"),
}
_RATIOS: dict[str, tuple[str, ...]] = {"verify": ("fmr_ratio", "fnmr_ratio"), "identify": ("fpir_ratio", "fnir_ratio")}


def _finite(value: Any) -> Any:
    """JSON-safe: non-finite floats and numpy scalars become None / Python numbers; containers are walked."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summarise_result(kind: str, result: dict[str, Any], group_column: str | None = None) -> dict[str, Any]:
    """The figures of an ``evaluate verify|identify`` result worth publishing: headline accuracy and, when groups
    were measured, each group's error rates at the common threshold and the max/min differentials."""
    if kind not in RESULT_KINDS:
        raise ValidationError(f"unknown evaluation kind {kind!r}: expected verify or identify")
    summary: dict[str, Any] = {k: result.get(k) for k in _HEADLINE[kind] if k in result}
    groups = result.get("groups")
    if isinstance(groups, dict):
        summary["groups"] = {
            "column": group_column,
            "threshold": groups.get("threshold"),
            "min_trials": groups.get("min_trials"),
            "per_group": {
                str(name): {f: row.get(f) for f in _GROUP_FIELDS[kind]}
                for name, row in (groups.get("per_group") or {}).items()
            },
            **{r: groups.get(r) for r in _RATIOS[kind]},
        }
    return _finite(summary)


@dataclass(frozen=True)
class StoredResult:
    """A stored evaluation summary."""

    id: int
    kind: str
    model_version: str
    dataset: str
    summary: dict[str, Any]
    created_by: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


def save_result(
    factory: sessionmaker[Session],
    actor: Actor,
    *,
    kind: str,
    model_version: str,
    result: dict[str, Any],
    dataset: str = "",
    group_column: str | None = None,
) -> StoredResult:
    """Store the summary of a verify/identify run for the actor's agency (supervisors, administrators); audited."""
    enforce(factory, actor, Action.RECORD_CALIBRATION, "evaluation_result:new", actor.agency_id)
    summary = summarise_result(kind, result, group_column)
    with transaction(factory) as session:
        row = EvaluationResult(agency_id=actor.agency_id, kind=kind, model_version=model_version[:200],
                               dataset=dataset[:2000], summary=summary, created_by=actor.username,
                               created_by_user_id=actor.user_id)  # fmt: skip
        session.add(row)
        session.flush()
        audit.record(session, actor, "evaluation_save", f"evaluation_result:{row.id}", audit.Outcome.OK,
                     details={"kind": kind, "model_version": model_version[:200],
                              "group_count": len((summary.get("groups") or {}).get("per_group") or {})})  # fmt: skip
        return _as_result(row)


def _as_result(row: EvaluationResult) -> StoredResult:
    return StoredResult(row.id, row.kind, row.model_version, row.dataset, dict(row.summary), row.created_by,
                        _utc(row.created_at))  # fmt: skip


def latest_result(session: Session, agency_id: int, kind: str, before: datetime | None = None) -> StoredResult | None:
    """The agency's most recent stored ``kind`` summary (made before ``before`` when given), or None."""
    query = select(EvaluationResult).where(EvaluationResult.agency_id == agency_id, EvaluationResult.kind == kind)
    if before is not None:
        query = query.where(EvaluationResult.created_at < before)
    row = session.scalars(query.order_by(EvaluationResult.created_at.desc(), EvaluationResult.id.desc())).first()
    return _as_result(row) if row is not None else None
