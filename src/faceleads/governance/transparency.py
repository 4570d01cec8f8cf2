"""The public transparency report of an agency over a period: counts and measured figures, never personal or
biometric data, with small counts suppressed (docs/transparency.md).

:func:`transparency_report` is the one service (CLI ``faceleads report transparency``, ``GET
/api/v1/reports/transparency``, the web page ``/transparency``): it authorises (supervisors and auditors of the
agency; the oversight role for any agency, or every agency at once), gathers the figures from the records
(:func:`gather`), suppresses small counts (:func:`suppress`), renders CSV and/or PDF and audits the production.

What it holds, for ``[from, to]`` (whole UTC days):

- searches: total, by legal regime (the regime each search recorded, ``casework.regimes``), by purpose, by offence
  category; supervisors' prior authorisations granted and refused;
- casework: candidates reviewed (adjudications, by conclusion), leads proposed, verified, disputed, rejected, released;
- outcomes of the leads released in the period (their latest signed-off outcome at the end of the period);
- refusals (audited denials of the agency's users, by action);
- exigent searches and their supervisor's ratification, from the ratification records, as they stood at the end of
  the period: ratified in time, ratified late, refused, lapsed (unratified past the agency's window), still within
  the window (:func:`exigent_figures`);
- destruction requests received / approved / denied / executed, and those opened by the disposition policy;
- the lawful gallery: bookings held under a listed legal authority and bookings awaiting review, and the listed
  authorities themselves (at production time);
- live watch-list deployments (:func:`faceleads.live.reports.deployment_statistics`);
- the last measured accuracy and demographic differentials (stored calibration and verify/identify summaries made
  before the end of the period).

The oversight role (a privacy commissioner, an external auditor) may produce it for any agency, or — with no agency
named — for every agency at once: the same counts summed over the agencies (each agency's accuracy measurements
stay in that agency's own report).

Nothing in it names a person: no user, case, occurrence, subject or booking number, no image or template. Counts of
1 to ``k-1`` (``Settings.transparency_min_count``, default 5) are shown as ``<k``; when one cell of a breakdown that
sums to a shown total is suppressed, the smallest other non-zero cell is withheld too (``n/p``) so that the
suppressed one cannot be worked out by subtraction.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import PurePath
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from faceleads import safecsv
from faceleads.casework.common import as_utc
from faceleads.casework.models import (
    Adjudication,
    Authorisation,
    Case,
    CaseSearch,
    Lead,
    LeadOutcome,
    Offence,
)
from faceleads.casework.regimes import ratification_state_at
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.audit import AuditEntry
from faceleads.core.policy import Action, enforce, reads_every_agency
from faceleads.core.regime import DEFAULT_REGIME, Regime
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
        writer = safecsv.writer(buffer, lineterminator="\n")  # an authority title is an administrator's text
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
# The regime of a search is the one it recorded (``CaseSearch.regime``: the request's regime for the agency when it
# was searched, ``casework.regimes``); exigent figures come from the ratification records. Live deployments are their
# own section.

EXIGENT_STATES = ("ratified", "ratified_late", "refused", "lapsed", "pending")


def exigent_figures(
    session: Session, agency_ids: list[int], start: datetime, end: datetime, as_of: datetime
) -> dict[str, int]:
    """The exigent searches made in ``[start, end)`` by where their ratification stood at ``as_of`` (the end of the
    period, or now if sooner): ``ratified`` (in the window), ``ratified_late``, ``refused``, ``lapsed`` (unratified
    past the window) and ``pending`` (unratified, still within it). A decision taken after ``as_of`` is not counted,
    so that a report of a past period reads the same whenever it is produced."""
    counts: Counter[str] = Counter({state: 0 for state in EXIGENT_STATES})
    for ratify_by, decided_at, granted in session.execute(
        select(CaseSearch.ratify_by, Authorisation.at, Authorisation.granted)
        .join(Case, Case.id == CaseSearch.case_id)
        .outerjoin(Authorisation, Authorisation.id == CaseSearch.ratification_id)
        .where(Case.agency_id.in_(agency_ids), CaseSearch.regime == Regime.EXIGENT.value,
               CaseSearch.created_at >= start, CaseSearch.created_at < end)
    ):  # fmt: skip
        decided = decided_at is not None and as_utc(decided_at) < as_of
        counts[ratification_state_at(ratify_by, (decided_at, bool(granted)) if decided else None, as_of)] += 1
    return dict(counts)


# --------------------------------------------------------------------------------------------- gathering


def _breakdown(section: str, measure: str, counter: Counter[str], keys: list[str] | None = None) -> list[Row]:
    names = keys if keys is not None else sorted(counter)
    rows = [Row(section, measure, name, int(counter.get(name, 0))) for name in names]
    rows.append(Row(section, measure, TOTAL, int(sum(counter.values()))))
    return rows


def _searches(session: Session, agency_ids: list[int], start: datetime, end: datetime) -> list[Row]:
    categories = {(o.agency_id, o.code): o.category
                  for o in session.scalars(select(Offence).where(Offence.agency_id.in_(agency_ids)))}  # fmt: skip
    regime: Counter[str] = Counter()
    purpose: Counter[str] = Counter()
    category: Counter[str] = Counter()
    for agency_id, code, offence, recorded in session.execute(
        select(SearchRecord.agency_id, SearchRecord.purpose, SearchRecord.offence_code, CaseSearch.regime)
        .outerjoin(CaseSearch, CaseSearch.search_id == SearchRecord.id)
        .where(SearchRecord.agency_id.in_(agency_ids), SearchRecord.created_at >= start,
               SearchRecord.created_at < end)
    ):  # fmt: skip
        regime[recorded or DEFAULT_REGIME.value] += 1
        purpose[code] += 1
        category[categories.get((agency_id, offence), "(unlisted offence)")] += 1
    prior = Counter({bool(granted): int(n) for granted, n in session.execute(
        select(Authorisation.granted, func.count(Authorisation.id))
        .join(Case, Case.id == Authorisation.case_id)
        .where(Case.agency_id.in_(agency_ids), Authorisation.kind == "purpose", Authorisation.at >= start,
               Authorisation.at < end)
        .group_by(Authorisation.granted)
    )})  # fmt: skip
    retrospective = [Regime.INVESTIGATIVE.value, Regime.EXIGENT.value]
    return [
        *_breakdown("searches", "by_regime", regime, sorted(set(retrospective) | set(regime))),
        *_breakdown("searches", "by_purpose", purpose),
        *_breakdown("searches", "by_offence_category", category),
        Row("searches", "prior_authorisations", "granted", prior.get(True, 0)),
        Row("searches", "prior_authorisations", "refused", prior.get(False, 0)),
    ]


def _casework(session: Session, agency_ids: list[int], start: datetime, end: datetime) -> list[Row]:
    def window(column: Any) -> Any:
        return (column >= start) & (column < end)

    conclusions = Counter(dict(session.execute(
        select(Adjudication.conclusion, func.count(Adjudication.id))
        .join(CaseSearch, CaseSearch.id == Adjudication.case_search_id)
        .join(Case, Case.id == CaseSearch.case_id)
        .where(Case.agency_id.in_(agency_ids), window(Adjudication.at))
        .group_by(Adjudication.conclusion)
    ).all()))  # fmt: skip

    def leads(*conditions: Any) -> int:
        query = select(func.count(Lead.id)).join(Case, Case.id == Lead.case_id)
        return int(session.scalar(query.where(Case.agency_id.in_(agency_ids), *conditions)) or 0)

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


def _outcomes(session: Session, agency_ids: list[int], start: datetime, end: datetime) -> list[Row]:
    from faceleads.casework.outcomes import OUTCOMES

    released = list(session.scalars(
        select(Lead.id).join(Case, Case.id == Lead.case_id)
        .where(Case.agency_id.in_(agency_ids), Lead.released_at >= start, Lead.released_at < end)
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


def _refusals(session: Session, agency_ids: list[int], start: datetime, end: datetime) -> list[Row]:
    counter = Counter(dict(session.execute(
        select(AuditEntry.action, func.count(AuditEntry.seq))
        .where(AuditEntry.agency_id.in_(agency_ids), AuditEntry.outcome == audit.Outcome.DENIED,
               AuditEntry.at >= start, AuditEntry.at < end)
        .group_by(AuditEntry.action)
    ).all()))  # fmt: skip
    return _breakdown("refusals", "by_action", counter)


def _destruction(session: Session, agency_ids: list[int], start: datetime, end: datetime) -> list[Row]:
    def count(*conditions: Any) -> int:
        query = select(func.count(DestructionRequest.id))
        return int(session.scalar(query.where(DestructionRequest.agency_id.in_(agency_ids), *conditions)) or 0)

    def window(column: Any) -> Any:
        return (column >= start) & (column < end)

    events = session.scalar(
        select(func.count(AuditEntry.seq)).where(
            AuditEntry.agency_id.in_(agency_ids), AuditEntry.action == "disposition",
            AuditEntry.outcome == audit.Outcome.OK, AuditEntry.at >= start, AuditEntry.at < end)
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


def _gallery(session: Session, agencies: dict[int, str]) -> list[Row]:
    ids = list(agencies)
    active = select(LegalAuthority.id).where(LegalAuthority.active.is_(True))
    listed = session.scalar(select(func.count(Encounter.id)).where(Encounter.agency_id.in_(ids),
                                                                   Encounter.authority_id.in_(active)))  # fmt: skip
    total = session.scalar(select(func.count(Encounter.id)).where(Encounter.agency_id.in_(ids)))
    # The authorities themselves are public law, not personal data: the public sees what photos are held under.
    listed_now = session.execute(
        select(LegalAuthority.agency_id, LegalAuthority.code, LegalAuthority.title)
        .where(LegalAuthority.agency_id.in_(ids), LegalAuthority.active.is_(True))
        .order_by(LegalAuthority.agency_id, LegalAuthority.code)
    ).all()
    several = len(agencies) > 1

    def named(agency_id: int, code: str) -> str:
        return f"{agencies.get(agency_id, agency_id)}/{code}" if several else code

    return [
        Row("gallery", "bookings_now", "held_under_a_listed_authority", int(listed or 0)),
        Row("gallery", "bookings_now", "awaiting_authority_review", int(total or 0) - int(listed or 0)),
        Row("gallery", "bookings_now", TOTAL, int(total or 0)),
        Row("gallery", "listed_legal_authorities", TOTAL, len(listed_now), FIGURE),
        *[Row("gallery", "legal_authority", named(agency_id, code), title, TEXT)
          for agency_id, code, title in listed_now],
    ]  # fmt: skip


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


def _live(rt: GalleryRuntime, actor: Actor, codes: list[str], start: datetime, end: datetime) -> list[Row]:
    from faceleads.live.reports import deployment_statistics

    stats = [s.to_json() for s in deployment_statistics(rt, actor, start, end) if s.agency in codes]
    counts = ("deployments", "watchlist_entries", "faces_passing", "alerts", "confirmed", "false_alerts",
              "not_actioned", "pending")  # fmt: skip
    rows = [Row("live", "deployments", key, sum(int(data.get(key, 0)) for data in stats)) for key in counts]
    rows.append(Row("live", "deployments", "hours", sum(float(data.get("hours", 0.0)) for data in stats), FIGURE))
    return rows


def gather(
    rt: GalleryRuntime, actor: Actor, session: Session, agencies: dict[int, str], start: datetime, end: datetime,
    as_of: datetime | None = None,
) -> list[Row]:
    """Every row of the report for ``[start, end)`` over ``agencies`` (id -> code; one agency, or every agency for
    oversight), as raw values (:func:`suppress` publishes them). ``as_of``: when the ratification states are read
    (default: the end of the period, or now if sooner)."""
    ids = list(agencies)
    cutoff = as_of or min(end, utcnow())
    exigent = exigent_figures(session, ids, start, end, cutoff)
    per_agency = [Row("accuracy", "measurement", "", "per agency: see each agency's own report", TEXT)]
    accuracy = _accuracy(session, ids[0], end) if len(ids) == 1 else per_agency
    return [
        *_searches(session, ids, start, end),
        *_casework(session, ids, start, end),
        *_outcomes(session, ids, start, end),
        *_refusals(session, ids, start, end),
        *_breakdown("exigent", "searches_by_ratification", Counter(exigent), list(EXIGENT_STATES)),
        *_destruction(session, ids, start, end),
        *_gallery(session, agencies),
        *_live(rt, actor, list(agencies.values()), start, end),
        *accuracy,
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


ALL_AGENCIES = "ALL"  # the report's agency when oversight produces it for every agency at once


def transparency_report(
    rt: GalleryRuntime,
    actor: Actor,
    date_from: date,
    date_to: date,
    *,
    agency_code: str | None = None,
    formats: tuple[str, ...] = ("csv", "pdf"),
) -> TransparencyOutput:
    """Produce the public report of ``agency_code`` for ``[date_from, date_to]``; the production is audited
    (``transparency_report``).

    Supervisors and auditors produce their own agency's. The oversight role produces any agency's, and with no
    agency named, every agency's figures summed (agency ``ALL``); anyone else without an agency named gets their own
    agency's.
    """
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValidationError(f"unknown report format {fmt!r}: use {', '.join(FORMATS)}")
    start, end = period(date_from, date_to)
    code = (agency_code or "").strip().upper()
    every = not code and reads_every_agency(actor, Action.TRANSPARENCY_REPORT)
    code = code or ("" if every else (actor.agency_code or "").upper())
    ref = f"transparency_report:{ALL_AGENCIES if every else (code or actor.agency_id)}"[:300]
    enforce(rt.session_factory, actor, Action.TRANSPARENCY_REPORT, ref)
    with rt.session_factory() as session:
        if every:
            agencies = {a.id: a.code for a in session.scalars(select(Agency).order_by(Agency.code))}
            name = f"every agency ({len(agencies)}: {', '.join(agencies.values())})"
        else:
            agency = (session.scalars(select(Agency).where(Agency.code == code)).first() if code
                      else session.get(Agency, actor.agency_id))  # fmt: skip
            if agency is None:
                raise NotFound(f"unknown agency {code!r}")
            agencies, name = {agency.id: agency.code}, agency.name
    if not every:
        enforce(rt.session_factory, actor, Action.TRANSPARENCY_REPORT, ref, next(iter(agencies)))
    min_count = rt.settings.transparency_min_count
    with rt.session_factory() as session:
        rows = gather(rt, actor, session, agencies, start, end) if agencies else []
    label = ALL_AGENCIES if every else next(iter(agencies.values()))
    report = TransparencyReport(label, name, date_from, date_to, utcnow(), min_count,
                                suppress(rows, min_count))  # fmt: skip
    csv_text = report.to_csv() if "csv" in formats else None
    pdf = None
    if "pdf" in formats:
        from faceleads.governance.transparency_pdf import render_pdf

        pdf = render_pdf(report)
    audit.record_now(rt.session_factory, actor, "transparency_report", ref, audit.Outcome.OK,
                     details={"agency": label, "agencies": len(agencies), "period_from": date_from.isoformat(),
                              "period_to": date_to.isoformat(), "formats": ",".join(formats),
                              "min_count": min_count, "row_count": len(rows)})  # fmt: skip
    return TransparencyOutput(report, csv_text, pdf)


__all__ = [
    "ALL_AGENCIES",
    "NOT_PUBLISHED",
    "Row",
    "TransparencyOutput",
    "TransparencyReport",
    "exigent_figures",
    "gather",
    "period",
    "suppress",
    "transparency_report",
]
