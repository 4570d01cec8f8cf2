"""Reading the audit log: filters, CSV/JSON export and statistics for public reporting.

The log itself (entries, chain head, appending, chain verification) is :mod:`faceleads.core.audit`; this module
holds what auditors and supervisors do with it.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.core.audit import AuditAction, AuditEntry, Outcome, iso_utc
from faceleads.errors import ValidationError


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
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
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


@dataclass
class AuditStats:
    """Counts for public reporting, keyed by (agency code, offence, month 'YYYY-MM')."""

    searches: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    leads: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    verified_leads: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    conclusions: dict[tuple[str, str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def rows(self) -> list[dict[str, Any]]:
        """One row per (agency, offence, month) with every count, sorted."""
        keys = set(self.searches) | set(self.leads) | set(self.verified_leads) | set(self.conclusions)
        out = []
        for key in sorted(keys):
            agency, offence, month = key
            outcomes = self.conclusions.get(key, Counter())
            out.append(
                {
                    "agency": agency,
                    "offence": offence,
                    "month": month,
                    "searches": self.searches[key],
                    "leads": self.leads[key],
                    "verified_leads": self.verified_leads[key],
                    "excluded": outcomes["excluded"],
                    "possible_lead": outcomes["possible_lead"],
                    "inconclusive": outcomes["inconclusive"],
                }
            )
        return out


def compute_stats(session: Session, flt: AuditFilter | None = None) -> AuditStats:
    """Searches, leads (conclusions 'possible_lead'), verified leads (verifications 'agree') and conclusion outcomes.

    Only successful entries (outcome 'ok') count. The offence comes from details 'offence'.
    """
    flt = flt or AuditFilter()
    stats = AuditStats()
    wanted = (AuditAction.SEARCH, AuditAction.CONCLUSION, AuditAction.VERIFICATION)
    query = select(AuditEntry).where(AuditEntry.action.in_(wanted), AuditEntry.outcome == Outcome.OK)
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
            str(details.get("offence") or "(unspecified)"),
            iso_utc(entry.at)[:7],
        )
        if entry.action == AuditAction.SEARCH:
            stats.searches[key] += 1
        elif entry.action == AuditAction.CONCLUSION:
            conclusion = str(details.get("conclusion") or "")
            stats.conclusions[key][conclusion] += 1
            if conclusion == "possible_lead":
                stats.leads[key] += 1
        elif entry.action == AuditAction.VERIFICATION and details.get("result") == "agree":
            stats.verified_leads[key] += 1
    return stats
