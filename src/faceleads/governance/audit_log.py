"""Reading the audit log: filters, CSV/JSON export, chain verification and statistics for public reporting.

The log itself (entries, chain head, appending, the chain walk) is :mod:`faceleads.core.audit`; this module holds
what auditors, supervisors and administrators do with it. The service functions at the end (:func:`read_entries`,
:func:`export`, :func:`verify`, :func:`anchor`, :func:`statistics`) authorise through the central policy and audit
every read and every refusal — auditors' own reads of the log are in the log too. The web pages, the REST API and
the CLI only call them.
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from faceleads import safecsv
from faceleads.config import Settings
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.audit import AuditAction, AuditEntry, Outcome, iso_utc
from faceleads.core.policy import Action, enforce, reads_every_agency
from faceleads.db import Agency
from faceleads.errors import ValidationError
from faceleads.governance import audit_integrity
from faceleads.governance.audit_integrity import Verdict

log = logging.getLogger("faceleads.audit")


@dataclass(frozen=True)
class AuditFilter:
    """Export filters; None means no restriction."""

    since: datetime | None = None
    until: datetime | None = None
    username: str | None = None
    action: str | None = None
    agency_code: str | None = None
    agency_id: int | None = None


def query_entries(session: Session, flt: AuditFilter) -> Iterator[AuditEntry]:
    """Entries matching ``flt`` in sequence order."""
    query = select(AuditEntry).order_by(AuditEntry.seq)
    if flt.since is not None:
        query = query.where(AuditEntry.at >= flt.since)
    if flt.until is not None:
        query = query.where(AuditEntry.at < flt.until)
    if flt.username is not None:
        query = query.where(AuditEntry.username == flt.username)
    if flt.action is not None:
        query = query.where(AuditEntry.action == flt.action)
    if flt.agency_code is not None:
        query = query.where(AuditEntry.agency_code == flt.agency_code)
    if flt.agency_id is not None:
        query = query.where(AuditEntry.agency_id == flt.agency_id)
    yield from session.execute(query.execution_options(yield_per=1000)).scalars()


EXPORT_COLUMNS = (
    "seq", "at", "user_id", "username", "agency_id", "agency_code", "action", "object", "case", "purpose",
    "outcome", "details", "prev_hash", "entry_hash",
)  # fmt: skip


def export_entries(entries: Iterable[AuditEntry], fmt: str) -> Iterator[str]:
    """Serialise entries as CSV (one row each, details as JSON text) or JSON (an array), chunk by chunk."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = safecsv.dict_writer(buffer, EXPORT_COLUMNS)
        writer.writeheader()
        yield buffer.getvalue()
        for entry in entries:
            buffer.seek(0)
            buffer.truncate()
            row = entry.as_dict()
            row["details"] = entry.details_json
            writer.writerow(row)
            yield buffer.getvalue()
    elif fmt == "json":
        yield "["
        for index, entry in enumerate(entries):
            yield ("," if index else "") + "\n" + json.dumps(entry.as_dict(), ensure_ascii=False)
        yield "\n]\n"
    else:
        raise ValidationError(f"unknown export format {fmt!r}: use csv or json")


StatsKey = tuple[str, str, str, str]  # (agency code, regime, offence, month 'YYYY-MM')
DEFAULT_REGIME = "investigative"  # entries written before regimes were recorded


@dataclass
class AuditStats:
    """Counts for public reporting, keyed by (agency code, legal regime, offence, month 'YYYY-MM')."""

    searches: Counter[StatsKey] = field(default_factory=Counter)
    leads: Counter[StatsKey] = field(default_factory=Counter)
    verified_leads: Counter[StatsKey] = field(default_factory=Counter)
    conclusions: dict[StatsKey, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    ratified: Counter[StatsKey] = field(default_factory=Counter)
    ratification_refused: Counter[StatsKey] = field(default_factory=Counter)

    def rows(self) -> list[dict[str, Any]]:
        """One row per (agency, regime, offence, month) with every count, sorted."""
        keys = (set(self.searches) | set(self.leads) | set(self.verified_leads) | set(self.conclusions)
                | set(self.ratified) | set(self.ratification_refused))
        out = []
        for key in sorted(keys):
            agency, regime, offence, month = key
            outcomes = self.conclusions.get(key, Counter())
            out.append(
                {
                    "agency": agency,
                    "regime": regime,
                    "offence": offence,
                    "month": month,
                    "searches": self.searches[key],
                    "leads": self.leads[key],
                    "verified_leads": self.verified_leads[key],
                    "excluded": outcomes["excluded"],
                    "possible_lead": outcomes["possible_lead"],
                    "inconclusive": outcomes["inconclusive"],
                    "ratified": self.ratified[key],
                    "ratification_refused": self.ratification_refused[key],
                }
            )
        return out


REGIME_TOTALS = ("searches", "leads", "verified_leads", "ratified", "ratification_refused")


def regime_totals(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Totals per legal regime of statistics rows (searches, leads, verified leads, ratifications)."""
    totals: dict[str, Counter[str]] = {}
    for row in rows:
        bucket = totals.setdefault(str(row.get("regime", DEFAULT_REGIME)), Counter())
        for name in REGIME_TOTALS:
            bucket[name] += int(row.get(name, 0))
    return {regime: {name: counts[name] for name in REGIME_TOTALS} for regime, counts in sorted(totals.items())}


def compute_stats(session: Session, flt: AuditFilter | None = None) -> AuditStats:
    """Searches, leads (conclusions 'possible_lead'), verified leads (verifications 'agree'), conclusion outcomes and
    exigent ratifications (granted / refused), by legal regime.

    Only successful entries (outcome 'ok'; 'refused' for refused ratifications) count. The offence comes from
    details 'offence' (for ratifications, the case's search entry is not looked up: offence '(ratification)'),
    the regime from details 'regime' (investigative for entries written before regimes were recorded).
    """
    flt = flt or AuditFilter()
    stats = AuditStats()
    wanted = (AuditAction.SEARCH, AuditAction.CONCLUSION, AuditAction.VERIFICATION)
    query = select(AuditEntry).where(
        ((AuditEntry.action.in_(wanted)) & (AuditEntry.outcome == Outcome.OK))
        | ((AuditEntry.action == "exigent_ratification") & (AuditEntry.outcome.in_((Outcome.OK, "refused"))))
    )
    if flt.since is not None:
        query = query.where(AuditEntry.at >= flt.since)
    if flt.until is not None:
        query = query.where(AuditEntry.at < flt.until)
    if flt.agency_code is not None:
        query = query.where(AuditEntry.agency_code == flt.agency_code)
    if flt.agency_id is not None:
        query = query.where(AuditEntry.agency_id == flt.agency_id)
    for entry in session.execute(query.execution_options(yield_per=1000)).scalars():
        details = entry.details
        key = (
            entry.agency_code or "(none)",
            str(details.get("regime") or DEFAULT_REGIME),
            str(details.get("offence") or ("(ratification)" if entry.action == "exigent_ratification"
                                           else "(unspecified)")),
            iso_utc(entry.at)[:7],
        )
        if entry.action == "exigent_ratification":
            if entry.outcome == Outcome.OK:
                stats.ratified[key] += 1
            else:
                stats.ratification_refused[key] += 1
        elif entry.action == AuditAction.SEARCH:
            stats.searches[key] += 1
        elif entry.action == AuditAction.CONCLUSION:
            conclusion = str(details.get("conclusion") or "")
            stats.conclusions[key][conclusion] += 1
            if conclusion == "possible_lead":
                stats.leads[key] += 1
        elif entry.action == AuditAction.VERIFICATION and details.get("result") == "agree":
            stats.verified_leads[key] += 1
    return stats


# --- services -----------------------------------------------------------------------------------------------------

MAX_PAGE = 500
EXPORT_FORMATS = ("csv", "json")


def parse_when(text: str | None, name: str, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` (an ``end`` day includes that whole day) or an ISO time (UTC when no zone); None passes."""
    if not text:
        return None
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time.min, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name} {text!r} is not a date (YYYY-MM-DD) or ISO time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _filter_details(flt: AuditFilter) -> dict[str, str | None]:
    return {
        "since": iso_utc(flt.since) if flt.since else None,
        "until": iso_utc(flt.until) if flt.until else None,
        "user": (flt.username or "")[:150] or None,
        "filter_action": (flt.action or "")[:64] or None,
    }


def _agency_log(
    session_factory: sessionmaker[Session], actor: Actor, agency_code: str | None, action: Action
) -> tuple[int | None, str]:
    """(agency id, code) of the log being read: the actor's own unless ``agency_code`` names another; (None, 'all')
    for oversight reading every agency's entries (those of no agency included)."""
    code = (agency_code or "").strip().upper()
    if not code:
        if reads_every_agency(actor, action):
            return None, "all"
        return actor.agency_id, actor.agency_code or str(actor.agency_id)
    if code == (actor.agency_code or "").upper():
        return actor.agency_id, code
    with session_factory() as session:
        agency = session.scalars(select(Agency).where(Agency.code == code)).first()
    if agency is None:
        raise ValidationError(f"unknown agency {code!r}")
    return agency.id, code


@dataclass(frozen=True)
class EntriesPage:
    """A page of entries, newest first, and how many match."""

    total: int
    entries: list[dict[str, Any]]


def read_entries(
    session_factory: sessionmaker[Session],
    actor: Actor,
    flt: AuditFilter | None = None,
    *,
    outcome: str | None = None,
    limit: int = 100,
    offset: int = 0,
    agency_code: str | None = None,
) -> EntriesPage:
    """Entries of the actor's agency (newest first) matching ``flt`` and ``outcome`` (auditors); oversight reads
    every agency's (``agency_code`` narrows it to one), another agency's log is refused to anyone else.

    The read itself is recorded (``audit_read``, with the filters): who looked at which part of the log is part of
    the log.
    """
    agency_id, code = _agency_log(session_factory, actor, agency_code, Action.AUDIT_READ)
    ref = f"audit_log/agency:{code}"
    enforce(session_factory, actor, Action.AUDIT_READ, ref, agency_id)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE or not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"limit must be 1 to {MAX_PAGE} and offset 0 or more")
    base = flt or AuditFilter()
    scoped = AuditFilter(since=base.since, until=base.until, username=base.username, action=base.action,
                         agency_id=agency_id)  # fmt: skip
    with session_factory() as session:
        rows = [e for e in query_entries(session, scoped) if not outcome or e.outcome == outcome]
        rows.reverse()
        page = EntriesPage(total=len(rows), entries=[e.as_dict() for e in rows[offset : offset + limit]])
    audit.record_now(session_factory, actor, "audit_read", ref, Outcome.OK,
                     details={**_filter_details(scoped), "outcome": (outcome or "")[:32] or None,
                              "offset": offset, "returned": len(page.entries), "total": page.total})  # fmt: skip
    return page


def export(
    session_factory: sessionmaker[Session],
    actor: Actor,
    fmt: str,
    flt: AuditFilter | None = None,
    *,
    agency_code: str | None = None,
) -> tuple[str, int]:
    """The agency's entries matching ``flt`` as CSV or JSON text, and their count (the export is audited). Oversight
    exports every agency's entries unless ``agency_code`` names one."""
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"unknown export format {fmt!r}: use csv or json")
    agency_id, code = _agency_log(session_factory, actor, agency_code, Action.AUDIT_EXPORT)
    ref = f"audit_log/agency:{code}"
    enforce(session_factory, actor, Action.AUDIT_EXPORT, ref, agency_id)
    base = flt or AuditFilter()
    scoped = AuditFilter(since=base.since, until=base.until, username=base.username, action=base.action,
                         agency_id=agency_id)  # fmt: skip
    with session_factory() as session:
        entries = list(query_entries(session, scoped))
        body = "".join(export_entries(entries, fmt))
    audit.record_now(session_factory, actor, AuditAction.AUDIT_EXPORT, ref, Outcome.OK,
                     details={"format": fmt, "entries": len(entries), **_filter_details(scoped)})  # fmt: skip
    return body, len(entries)


def verify(
    session_factory: sessionmaker[Session],
    actor: Actor,
    settings: Settings,
    *,
    anchors: Iterable[tuple[int, str]] = (),
    anchor_documents: Iterable[dict[str, Any]] = (),
) -> Verdict:
    """Is the log whole (auditors, administrators)? The chain walk, the head against the highest stored entry, the
    anchors (the anchor file's, and those handed in as SEQ:HASH pairs or signed documents) and older data
    (:func:`faceleads.governance.audit_integrity.verify`).

    The verdict is made before the verification is recorded, and a failure to record it (a damaged log) never
    hides the verdict: it comes back in ``Verdict.recording_problem``. A damaged log never raises here.
    """
    enforce(session_factory, actor, Action.AUDIT_VERIFY, "audit_log")
    verdict = audit_integrity.verify(session_factory, settings, anchors=anchors, anchor_documents=anchor_documents)
    problem = audit_integrity.record_verification(session_factory, actor, verdict)
    return replace(verdict, recording_problem=problem)


def anchor(
    session_factory: sessionmaker[Session], actor: Actor, settings: Settings
) -> tuple[Verdict, dict[str, Any] | None]:
    """Verify the log, then append a signed anchor of its head to the anchor file and return it (auditors,
    administrators): the document to hand to the oversight body. A broken log is not anchored (None with the
    verdict). Either way the attempt is audited."""
    enforce(session_factory, actor, Action.AUDIT_VERIFY, "audit_log")
    verdict, document = audit_integrity.anchor_now(session_factory, settings)
    if document is None:
        r = verdict.result
        details: dict[str, audit.DetailValue] = {"first_bad_seq": r.first_bad_seq, "highest_seq": r.highest_seq}
        outcome = Outcome.FAILED
    else:
        details = {"anchored_seq": document["seq"], "anchor_sha256": document["sha256"]}
        outcome = Outcome.OK
    try:
        audit.record_now(session_factory, actor, "audit_anchor", "audit_log", outcome, details=details)
    except (sa_exc.SQLAlchemyError, ValueError) as exc:
        # The anchor is already written outside the database; a damaged log must not hide it or the verdict.
        log.critical("could not record an audit anchor: %s", exc)
        verdict = replace(verdict, recording_problem=f"the anchor could not be recorded in the audit log "
                                                     f"({type(exc).__name__})")  # fmt: skip
    return verdict, document


def statistics(
    session_factory: sessionmaker[Session], actor: Actor, flt: AuditFilter | None = None
) -> list[dict[str, Any]]:
    """Searches, leads, verified leads, conclusion outcomes and exigent ratifications by agency, legal regime,
    offence and month (public reporting); the read is audited."""
    enforce(session_factory, actor, Action.VIEW_STATISTICS, "audit_log/statistics")
    base = flt or AuditFilter()
    scoped = AuditFilter(since=base.since, until=base.until)
    with session_factory() as session:
        rows = compute_stats(session, scoped).rows()
    audit.record_now(session_factory, actor, "view_statistics", "audit_log/statistics", Outcome.OK,
                     details={**_filter_details(scoped), "rows": len(rows)})  # fmt: skip
    return rows

