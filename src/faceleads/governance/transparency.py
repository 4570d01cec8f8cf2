"""The public transparency report of an agency over a period: counts and measured figures, never personal or
biometric data, with small counts suppressed (docs/transparency.md).

:func:`transparency_report` is the one service (CLI ``faceleads report transparency``, ``GET
/api/v1/reports/transparency``, the web page ``/transparency``): it authorises (supervisors and auditors of the
agency), gathers the figures from the records (:func:`gather`), suppresses small counts (:func:`suppress`), renders
CSV and/or PDF and audits the production.

What it holds, for ``[from, to]`` (whole UTC days):

- searches: total, by legal regime (:func:`search_regime`), by purpose, by offence category;
- casework: candidates reviewed (adjudications, by conclusion), leads proposed, verified, disputed, rejected, released;
- outcomes of the leads released in the period (their latest signed-off outcome at the end of the period);
- refusals (audited denials of the agency's users, by action);
- exigent authorisations: granted (ratified), refused, lapsed (:func:`exigent_figures`);
- destruction requests received / approved / denied / executed, and those opened by the disposition policy;
- the lawful gallery: bookings held under a listed legal authority and bookings awaiting review, and the listed
  authorities themselves (at production time);
- live watch-list deployments (:func:`faceleads.live.reports.deployment_statistics`);
- the last measured accuracy and demographic differentials (stored calibration and verify/identify summaries made
  before the end of the period).

Nothing in it names a person: no user, case, occurrence, subject or booking number, no image or template. Counts of
1 to ``k-1`` (``Settings.transparency_min_count``, default 5) are shown as ``<k``; when one cell of a breakdown that
sums to a shown total is suppressed, the smallest other non-zero cell is withheld too (``n/p``) so that the
suppressed one cannot be worked out by subtraction.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import PurePath
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from faceleads.casework.models import (
    Adjudication,
    Authorisation,
    Case,
    CaseRequest,
    CaseSearch,
    Lead,
    LeadOutcome,
    Offence,
    Purpose,
)
from faceleads.casework.models import RequestStatus as CaseRequestStatus
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.audit import AuditEntry
from faceleads.core.policy import Action, enforce
from faceleads.db import Agency, utcnow
from faceleads.errors import NotFound, ValidationError
from faceleads.evaluation.stored import latest_calibration, latest_result
from faceleads.gallery.models import Encounter, LegalAuthority, SearchRecord
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.governance.models import DestructionRequest, RequestStatus

COUNT, FIGURE, TEXT = "count", "figure", "text"
MAX_PERIOD_DAYS = 3660
FORMATS = ("csv", "pdf", "json")
NOT_PUBLISHED = "n/p"
TOTAL = "total"


@dataclass
class Row:
    """One published value: ``section`` / ``measure`` / ``breakdown`` = ``value`` (``published`` after suppression).

    ``kind``: ``count`` (of events in the agency's records: suppressed when small), ``figure`` (a measured rate or
    a count of evaluation trials: published as is), ``text``.
    """

    section: str
    measure: str
    breakdown: str
    value: int | float | str | None
    kind: str = COUNT
    published: str = ""


@dataclass
class TransparencyReport:
    """The report: what it covers, the suppression threshold and its rows."""

    agency: str
    agency_name: str
    period_from: date
    period_to: date  # inclusive
    generated_at: datetime
    min_count: int
    rows: list[Row] = field(default_factory=list)

    def header(self) -> list[Row]:
        """The report's own description, as rows (first in the CSV)."""
        k = self.min_count
        rule = (f"counts from 1 to {k - 1} are shown as <{k}; {NOT_PUBLISHED} = withheld so that a suppressed count "
                "cannot be worked out from a total" if k > 1 else "no suppression")  # fmt: skip
        facts = [("agency", self.agency), ("agency_name", self.agency_name),
                 ("period_from", self.period_from.isoformat()), ("period_to", self.period_to.isoformat()),
                 ("generated_at", audit.iso_utc(self.generated_at)), ("suppression", rule)]  # fmt: skip
        return [Row("report", key, "", value, TEXT, str(value)) for key, value in facts]

    def to_csv(self) -> str:
        """``section,measure,breakdown,value`` — one line per published value, the report's description first."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["section", "measure", "breakdown", "value"])
        for row in [*self.header(), *self.rows]:
            writer.writerow([row.section, row.measure, row.breakdown, row.published])
        return buffer.getvalue()

    def to_json(self) -> dict[str, Any]:
        """The published values (never the suppressed raw counts)."""
        return {
            "agency": self.agency,
            "agency_name": self.agency_name,
            "period_from": self.period_from.isoformat(),
            "period_to": self.period_to.isoformat(),
            "generated_at": audit.iso_utc(self.generated_at),
            "min_count": self.min_count,
            "rows": [{"section": r.section, "measure": r.measure, "breakdown": r.breakdown, "value": r.published}
                     for r in self.rows],
        }  # fmt: skip

    def value(self, section: str, measure: str, breakdown: str = TOTAL) -> str:
        """The published value of one row ('' when absent)."""
        for row in self.rows:
            if (row.section, row.measure, row.breakdown) == (section, measure, breakdown):
                return row.published
        return ""


# --------------------------------------------------------------------------------------------- suppression


def _shown(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def suppress(rows: list[Row], min_count: int) -> list[Row]:
    """Fill ``published`` for every row: small counts as ``<k``, and complementary suppression (see the module
    docstring). Figures and text are published as they are. Returns ``rows``."""
    small = f"<{min_count}"
    for row in rows:
        if row.kind == COUNT and isinstance(row.value, int) and 0 < row.value < min_count:
            row.published = small
        else:
            row.published = _shown(row.value)
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        if row.kind == COUNT:
            groups.setdefault((row.section, row.measure), []).append(row)
    for members in groups.values():
        total = next((r for r in members if r.breakdown == TOTAL), None)
        cells = [r for r in members if r.breakdown != TOTAL]
        if total is None or total.published == small or len(cells) < 2:
            continue
        hidden = [r for r in cells if r.published in (small, NOT_PUBLISHED)]
        if len(hidden) != 1:
            continue  # none to protect, or two or more already hide each other
        others = [r for r in cells if r.published not in (small, NOT_PUBLISHED) and isinstance(r.value, int)
                  and r.value > 0]  # fmt: skip
        if others:
            min(others, key=lambda r: (r.value, r.breakdown)).published = NOT_PUBLISHED
        else:
            total.published = NOT_PUBLISHED  # the lone suppressed cell equals the total
    return rows


# --------------------------------------------------------------------------------------------- legal regimes
# The one place the report decides regimes. On this base a purpose's "needs a supervisor's authorisation" flag is the
# only regime mechanism (exigent purposes carry it); the integrator repoints these two functions when the legal
# regimes (investigative / exigent with ratification / live) land.

EXIGENT_LAPSE_HOURS = 48


def search_regime(purpose_code: str, requires_authorisation: bool) -> str:
    """The legal regime a search ran under: ``exigent`` when its purpose needs a supervisor's authorisation,
    otherwise ``investigative``. (Live deployments are their own section.)"""
    return "exigent" if requires_authorisation else "investigative"


def exigent_figures(session: Session, agency_id: int, start: datetime, end: datetime) -> dict[str, int]:
    """Authorisations of purposes that need one, in the period: ``ratified`` (granted), ``refused``, and ``lapsed``
    (requests still awaiting a decision more than :data:`EXIGENT_LAPSE_HOURS` hours after they were made, by the end
    of the period)."""
    decided = session.execute(
        select(Authorisation.granted, func.count(Authorisation.id))
        .join(Case, Case.id == Authorisation.case_id)
        .where(Case.agency_id == agency_id, Authorisation.kind == "purpose", Authorisation.at >= start,
               Authorisation.at < end)
        .group_by(Authorisation.granted)
    )  # fmt: skip
    counts = {bool(granted): int(n) for granted, n in decided}
    lapsed = session.scalar(
        select(func.count(CaseRequest.id))
        .join(Case, Case.id == CaseRequest.case_id)
        .where(Case.agency_id == agency_id, CaseRequest.status == CaseRequestStatus.AWAITING_AUTHORISATION.value,
               CaseRequest.requested_at >= start, CaseRequest.requested_at < end - timedelta(hours=EXIGENT_LAPSE_HOURS))
    )  # fmt: skip
    return {"ratified": counts.get(True, 0), "refused": counts.get(False, 0), "lapsed": int(lapsed or 0)}


# --------------------------------------------------------------------------------------------- gathering


def _breakdown(section: str, measure: str, counter: Counter[str], keys: list[str] | None = None) -> list[Row]:
    names = keys if keys is not None else sorted(counter)
    rows = [Row(section, measure, name, int(counter.get(name, 0))) for name in names]
    rows.append(Row(section, measure, TOTAL, int(sum(counter.values()))))
    return rows


def _searches(session: Session, agency_id: int, start: datetime, end: datetime) -> list[Row]:
    purposes = {p.code: p for p in session.scalars(select(Purpose))}
    categories = {o.code: o.category for o in session.scalars(select(Offence).where(Offence.agency_id == agency_id))}
    regime: Counter[str] = Counter()
    purpose: Counter[str] = Counter()
    category: Counter[str] = Counter()
    for code, offence in session.execute(
        select(SearchRecord.purpose, SearchRecord.offence_code)
        .where(SearchRecord.agency_id == agency_id, SearchRecord.created_at >= start, SearchRecord.created_at < end)
    ):  # fmt: skip
        known = purposes.get(code)
        regime[search_regime(code, bool(known and known.requires_authorisation))] += 1
        purpose[code] += 1
        category[categories.get(offence, "(unlisted offence)")] += 1
    return [
        *_breakdown("searches", "by_regime", regime, sorted({"investigative", "exigent"} | set(regime))),
        *_breakdown("searches", "by_purpose", purpose),
        *_breakdown("searches", "by_offence_category", category),
    ]


def _casework(session: Session, agency_id: int, start: datetime, end: datetime) -> list[Row]:
    def window(column: Any) -> Any:
        return (column >= start) & (column < end)

    conclusions = Counter(dict(session.execute(
        select(Adjudication.conclusion, func.count(Adjudication.id))
        .join(CaseSearch, CaseSearch.id == Adjudication.case_search_id)
        .join(Case, Case.id == CaseSearch.case_id)
        .where(Case.agency_id == agency_id, window(Adjudication.at))
        .group_by(Adjudication.conclusion)
    ).all()))  # fmt: skip

    def leads(*conditions: Any) -> int:
        query = select(func.count(Lead.id)).join(Case, Case.id == Lead.case_id).where(Case.agency_id == agency_id)
        return int(session.scalar(query.where(*conditions)) or 0)

    verified = leads(or_((Lead.verification == "agree") & window(Lead.verified_at),
                         (Lead.supervisor_decision == "verified") & window(Lead.decided_at)))  # fmt: skip
    return [
        *_breakdown("casework", "candidates_reviewed", conclusions, ["excluded", "possible_lead", "inconclusive"]),
        Row("casework", "leads", "proposed", leads(window(Lead.created_at))),
        Row("casework", "leads", "verified", verified),
        Row("casework", "leads", "disputed_by_verifier", leads((Lead.verification == "disagree"),
                                                              window(Lead.verified_at))),
        Row("casework", "leads", "rejected_by_supervisor", leads((Lead.supervisor_decision == "rejected"),
                                                                window(Lead.decided_at))),
        Row("casework", "leads", "released", leads(window(Lead.released_at))),
    ]  # fmt: skip


def _outcomes(session: Session, agency_id: int, start: datetime, end: datetime) -> list[Row]:
    from faceleads.casework.outcomes import OUTCOMES

    released = list(session.scalars(
        select(Lead.id).join(Case, Case.id == Lead.case_id)
        .where(Case.agency_id == agency_id, Lead.released_at >= start, Lead.released_at < end)
    ))  # fmt: skip
    latest: dict[int, str] = {}
    if released:
        for lead_id, outcome in session.execute(
            select(LeadOutcome.lead_id, LeadOutcome.outcome)
            .where(LeadOutcome.lead_id.in_(released), LeadOutcome.signed_off_at < end)
            .order_by(LeadOutcome.id)
        ):  # fmt: skip
            latest[lead_id] = outcome
    counter: Counter[str] = Counter(latest.get(i, "awaiting_outcome") for i in released)
    return _breakdown("outcomes", "of_leads_released", counter, [*OUTCOMES, "awaiting_outcome"])


def _refusals(session: Session, agency_id: int, start: datetime, end: datetime) -> list[Row]:
    counter = Counter(dict(session.execute(
        select(AuditEntry.action, func.count(AuditEntry.seq))
        .where(AuditEntry.agency_id == agency_id, AuditEntry.outcome == audit.Outcome.DENIED, AuditEntry.at >= start,
               AuditEntry.at < end)
        .group_by(AuditEntry.action)
    ).all()))  # fmt: skip
    return _breakdown("refusals", "by_action", counter)


def _destruction(session: Session, agency_id: int, start: datetime, end: datetime) -> list[Row]:
    def count(*conditions: Any) -> int:
        query = select(func.count(DestructionRequest.id)).where(DestructionRequest.agency_id == agency_id, *conditions)
        return int(session.scalar(query) or 0)

    def window(column: Any) -> Any:
        return (column >= start) & (column < end)

    events = session.scalar(
        select(func.count(AuditEntry.seq)).where(AuditEntry.agency_id == agency_id, AuditEntry.action == "disposition",
                                                 AuditEntry.outcome == audit.Outcome.OK, AuditEntry.at >= start,
                                                 AuditEntry.at < end)
    )  # fmt: skip
    return [
        Row("destruction", "requests", "received", count(window(DestructionRequest.recorded_at))),
        Row("destruction", "requests", "opened_by_disposition_policy",
            count(window(DestructionRequest.recorded_at), DestructionRequest.origin == "disposition")),
        Row("destruction", "requests", "approved",
            count(window(DestructionRequest.decided_at), DestructionRequest.status != RequestStatus.DENIED.value)),
        Row("destruction", "requests", "denied",
            count(window(DestructionRequest.decided_at), DestructionRequest.status == RequestStatus.DENIED.value)),
        Row("destruction", "requests", "executed", count(window(DestructionRequest.completed_at))),
        Row("destruction", "dispositions_recorded", TOTAL, int(events or 0)),
    ]  # fmt: skip


def _gallery(session: Session, agency_id: int) -> list[Row]:
    active = select(LegalAuthority.id).where(LegalAuthority.active.is_(True))
    listed = session.scalar(select(func.count(Encounter.id)).where(Encounter.agency_id == agency_id,
                                                                   Encounter.authority_id.in_(active)))  # fmt: skip
    total = session.scalar(select(func.count(Encounter.id)).where(Encounter.agency_id == agency_id))
    authorities = session.scalar(
        select(func.count(LegalAuthority.id)).where(LegalAuthority.agency_id == agency_id,
                                                    LegalAuthority.active.is_(True))
    )  # fmt: skip
    # The authorities themselves are public law, not personal data: the public sees what photos are held under.
    listed_now = session.execute(
        select(LegalAuthority.code, LegalAuthority.title)
        .where(LegalAuthority.agency_id == agency_id, LegalAuthority.active.is_(True))
        .order_by(LegalAuthority.code)
    ).all()
    return [
        Row("gallery", "bookings_now", "held_under_a_listed_authority", int(listed or 0)),
        Row("gallery", "bookings_now", "awaiting_authority_review", int(total or 0) - int(listed or 0)),
        Row("gallery", "bookings_now", TOTAL, int(total or 0)),
        Row("gallery", "listed_legal_authorities", TOTAL, int(authorities or 0), FIGURE),
        *[Row("gallery", "legal_authority", code, title, TEXT) for code, title in listed_now],
    ]


def _dataset_name(text: str) -> str:
    """Only file names, never the paths they were read from."""
    return ", ".join(PurePath(part.strip()).name for part in (text or "").split(",") if part.strip()) or "unnamed"


def _accuracy(session: Session, agency_id: int, end: datetime) -> list[Row]:
    rows: list[Row] = []
    cal = latest_calibration(session, agency_id, before=end)
    if cal is None:
        rows.append(Row("accuracy", "calibration", "", "not measured", TEXT))
    else:
        rows += [
            Row("accuracy", "calibration", "measured_on", cal.created_at.date().isoformat(), TEXT),
            Row("accuracy", "calibration", "dataset", _dataset_name(cal.dataset), TEXT),
            Row("accuracy", "calibration", "model_version", cal.model_version, TEXT),
            Row("accuracy", "calibration", "impostor_comparisons", cal.impostor_comparisons, FIGURE),
            Row("accuracy", "calibration", "target_fmr", cal.target_fmr, FIGURE),
            Row("accuracy", "calibration", "threshold", cal.threshold, FIGURE),
        ]
    for kind in ("verify", "identify"):
        section = f"accuracy_{kind}"
        stored = latest_result(session, agency_id, kind, before=end)
        if stored is None:
            rows.append(Row(section, "measurement", "", "not measured", TEXT))
            continue
        rows += [
            Row(section, "measurement", "measured_on", stored.created_at.date().isoformat(), TEXT),
            Row(section, "measurement", "dataset", _dataset_name(stored.dataset), TEXT),
            Row(section, "measurement", "model_version", stored.model_version, TEXT),
        ]
        summary = dict(stored.summary)
        groups = summary.pop("groups", None)
        for key, value in summary.items():
            if isinstance(value, dict):
                rows += [Row(section, key, str(k), v, FIGURE) for k, v in value.items()]
            else:
                rows.append(Row(section, "overall", key, value, FIGURE if not isinstance(value, str) else TEXT))
        if isinstance(groups, dict):
            rows.append(Row(section, "groups", "column", groups.get("column") or "unnamed", TEXT))
            rows.append(Row(section, "groups", "threshold", groups.get("threshold"), FIGURE))
            for name, figures in (groups.get("per_group") or {}).items():
                rows += [Row(section, f"group {name}", str(k), v, FIGURE) for k, v in figures.items()]
            for ratio in ("fmr_ratio", "fnmr_ratio", "fpir_ratio", "fnir_ratio"):
                if ratio in groups:
                    rows.append(Row(section, "differentials", ratio, groups[ratio], FIGURE))
    return rows


def _live(rt: GalleryRuntime, actor: Actor, code: str, start: datetime, end: datetime) -> list[Row]:
    from faceleads.live.reports import deployment_statistics

    stats = [s for s in deployment_statistics(rt, actor, start, end, agency_code=code) if s.agency == code]
    data = stats[0].to_json() if stats else {}
    counts = ("deployments", "watchlist_entries", "faces_passing", "alerts", "confirmed", "false_alerts",
              "not_actioned", "pending")  # fmt: skip
    rows = [Row("live", "deployments", key, int(data.get(key, 0))) for key in counts]
    rows.append(Row("live", "deployments", "hours", float(data.get("hours", 0.0)), FIGURE))
    return rows


def gather(
    rt: GalleryRuntime, actor: Actor, session: Session, agency_id: int, code: str, start: datetime, end: datetime
) -> list[Row]:
    """Every row of the report for ``[start, end)`` (raw values; :func:`suppress` publishes them)."""
    exigent = exigent_figures(session, agency_id, start, end)
    return [
        *_searches(session, agency_id, start, end),
        *_casework(session, agency_id, start, end),
        *_outcomes(session, agency_id, start, end),
        *_refusals(session, agency_id, start, end),
        *[Row("exigent", "authorisations", key, value) for key, value in exigent.items()],
        *_destruction(session, agency_id, start, end),
        *_gallery(session, agency_id),
        *_live(rt, actor, code, start, end),
        *_accuracy(session, agency_id, end),
    ]


# --------------------------------------------------------------------------------------------- the service


@dataclass(frozen=True)
class TransparencyOutput:
    """The report and its renderings (those asked for)."""

    report: TransparencyReport
    csv: str | None
    pdf: bytes | None

    def to_json(self) -> dict[str, Any]:
        return self.report.to_json()


def period(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """``[from 00:00 UTC, the day after to 00:00 UTC)``; refused when reversed or longer than ten years."""
    if date_to < date_from:
        raise ValidationError(f"the period ends ({date_to.isoformat()}) before it starts ({date_from.isoformat()})")
    if (date_to - date_from).days > MAX_PERIOD_DAYS:
        raise ValidationError(f"a report covers at most {MAX_PERIOD_DAYS} days")
    start = datetime.combine(date_from, time.min, tzinfo=UTC)
    return start, datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)


def transparency_report(
    rt: GalleryRuntime,
    actor: Actor,
    date_from: date,
    date_to: date,
    *,
    agency_code: str | None = None,
    formats: tuple[str, ...] = ("csv", "pdf"),
) -> TransparencyOutput:
    """Produce the public report of ``agency_code`` (default: the actor's agency) for ``[date_from, date_to]``
    (supervisors and auditors of that agency); the production is audited (``transparency_report``)."""
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValidationError(f"unknown report format {fmt!r}: use {', '.join(FORMATS)}")
    start, end = period(date_from, date_to)
    code = (agency_code or actor.agency_code or "").strip().upper()
    ref = f"transparency_report:{code or actor.agency_id}"[:300]
    enforce(rt.session_factory, actor, Action.TRANSPARENCY_REPORT, ref)
    with rt.session_factory() as session:
        agency = (session.scalars(select(Agency).where(Agency.code == code)).first() if code
                  else session.get(Agency, actor.agency_id))  # fmt: skip
    if agency is None:
        raise NotFound(f"unknown agency {code!r}")
    enforce(rt.session_factory, actor, Action.TRANSPARENCY_REPORT, ref, agency.id)
    min_count = rt.settings.transparency_min_count
    with rt.session_factory() as session:
        rows = gather(rt, actor, session, agency.id, agency.code, start, end)
    report = TransparencyReport(agency.code, agency.name, date_from, date_to, utcnow(), min_count,
                                suppress(rows, min_count))  # fmt: skip
    csv_text = report.to_csv() if "csv" in formats else None
    pdf = None
    if "pdf" in formats:
        from faceleads.governance.transparency_pdf import render_pdf

        pdf = render_pdf(report)
    audit.record_now(rt.session_factory, actor, "transparency_report", ref, audit.Outcome.OK,
                     details={"agency": agency.code, "period_from": date_from.isoformat(),
                              "period_to": date_to.isoformat(), "formats": ",".join(formats),
                              "min_count": min_count, "row_count": len(rows)})  # fmt: skip
    return TransparencyOutput(report, csv_text, pdf)


__all__ = [
    "NOT_PUBLISHED",
    "Row",
    "TransparencyOutput",
    "TransparencyReport",
    "exigent_figures",
    "gather",
    "period",
    "search_regime",
    "suppress",
    "transparency_report",
]
