"""Examiner quality assurance: how often analysts and blind verifiers agree, how often leads end in a dispute, and
how long examiners take per candidate — per examiner for the agency's supervisors, per agency for anyone who may
read the system-wide statistics.

Definitions (all over a period, by the time of the act):

- **Conclusion agreement**: of the leads an analyst proposed that a verifier has concluded on, the share the
  verifier agreed with (their own conclusion was "possible lead"). For a verifier: the share of their
  verifications that agreed.
- **Feature agreement**: over the checklist features both the analyst and the verifier recorded for the same
  lead, the share with the same finding (similar / dissimilar / not visible).
- **Dispute rate**: disputed leads over concluded verifications; a dispute's outcome is "upheld" when the
  supervisor verified the lead (sided with the analyst), "rejected" otherwise.
- **Time per candidate**: for an analyst, the time from running a search to submitting its conclusions divided by
  the number of candidates (median over searches); for a verifier, from first opening the blind task to
  recording the verification (median).

Names of examiners are personnel data: only supervisors of the agency (``view_examiner_qa``) get the per-examiner
table; the per-agency table carries no names. The reads are audited.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceleads.casework.common import as_utc, authorise
from faceleads.casework.models import Adjudication, Case, CaseSearch, Lead, LeadStatus
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, allowed
from faceleads.db import Agency
from faceleads.gallery.models import SearchCandidate
from faceleads.gallery.runtime import GalleryRuntime


@dataclass
class ExaminerQA:
    """The figures of one examiner (or, with ``username`` empty, of one agency)."""

    agency: str
    username: str = ""
    searches: int = 0  # searches submitted
    candidates: int = 0  # candidates concluded in them
    seconds_per_candidate: float | None = None
    leads_proposed: int = 0
    proposed_agreed: int = 0  # verifier agreed with this analyst's lead
    proposed_disputed: int = 0
    verifications: int = 0  # as a blind verifier
    verifications_agreed: int = 0
    seconds_per_verification: float | None = None
    features_compared: int = 0
    features_agreed: int = 0
    disputes_upheld: int = 0  # disputes on this analyst's leads the supervisor decided as verified
    disputes_rejected: int = 0
    _search_times: list[float] = field(default_factory=list, repr=False)
    _verify_times: list[float] = field(default_factory=list, repr=False)

    @property
    def conclusion_agreement(self) -> float | None:
        done = self.proposed_agreed + self.proposed_disputed
        return self.proposed_agreed / done if done else None

    @property
    def verifier_agreement(self) -> float | None:
        return self.verifications_agreed / self.verifications if self.verifications else None

    @property
    def feature_agreement(self) -> float | None:
        return self.features_agreed / self.features_compared if self.features_compared else None

    @property
    def dispute_rate(self) -> float | None:
        done = self.proposed_agreed + self.proposed_disputed
        return self.proposed_disputed / done if done else None

    def finish(self) -> ExaminerQA:
        self.seconds_per_candidate = round(statistics.median(self._search_times), 1) if self._search_times else None
        self.seconds_per_verification = (round(statistics.median(self._verify_times), 1)
                                         if self._verify_times else None)  # fmt: skip
        return self

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        for name in ("conclusion_agreement", "verifier_agreement", "feature_agreement", "dispute_rate"):
            value = getattr(self, name)
            data[name] = round(value, 4) if value is not None else None
        return data


@dataclass(frozen=True)
class QAReport:
    """Examiner QA over a period."""

    since: datetime | None
    until: datetime | None
    examiners: list[ExaminerQA]  # of the actor's agency (supervisors), empty otherwise
    agencies: list[ExaminerQA]  # per agency (without names)

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "examiners": [e.to_json() for e in self.examiners],
                "agencies": [a.to_json() for a in self.agencies]}  # fmt: skip


def _bound(day: date | datetime | None, end: bool) -> datetime | None:
    if day is None:
        return None
    if isinstance(day, datetime):
        return as_utc(day)
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)


def _in(moment: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    if moment is None:
        return False
    moment = as_utc(moment)
    return (since is None or moment >= since) and (until is None or moment <= until)


def _collect(session: Session, agency_ids: list[int] | None, since: datetime | None, until: datetime | None,
             by_person: bool) -> dict[tuple[int, str], ExaminerQA]:
    codes = {a.id: a.code for a in session.scalars(select(Agency))}
    out: dict[tuple[int, str], ExaminerQA] = {}

    def row(agency_id: int, username: str) -> ExaminerQA:
        key = (agency_id, username if by_person else "")
        if key not in out:
            out[key] = ExaminerQA(codes.get(agency_id, str(agency_id)), key[1])
        return out[key]

    searches = select(CaseSearch, Case.agency_id).join(Case, Case.id == CaseSearch.case_id)
    if agency_ids is not None:
        searches = searches.where(Case.agency_id.in_(agency_ids))
    counts = {sid: n for sid, n in session.execute(
        select(SearchCandidate.search_id, func.count(SearchCandidate.id)).group_by(SearchCandidate.search_id))}
    for cs, agency_id in session.execute(searches):
        if cs.submitted_at is None or not _in(cs.submitted_at, since, until):
            continue
        n = int(counts.get(cs.search_id, 0))
        entry = row(agency_id, cs.analyst)
        entry.searches += 1
        entry.candidates += n
        if n:
            seconds = (as_utc(cs.submitted_at) - as_utc(cs.created_at)).total_seconds()
            entry._search_times.append(max(0.0, seconds) / n)
    leads = (select(Lead, Adjudication, Case.agency_id).join(Adjudication, Adjudication.id == Lead.adjudication_id)
             .join(Case, Case.id == Lead.case_id))
    if agency_ids is not None:
        leads = leads.where(Case.agency_id.in_(agency_ids))
    for lead, mark, agency_id in session.execute(leads):
        if _in(lead.created_at, since, until):
            row(agency_id, mark.analyst).leads_proposed += 1
        if lead.verification is None or not _in(lead.verified_at, since, until):
            continue
        agreed = lead.verification == "agree"
        analyst = row(agency_id, mark.analyst)
        analyst.proposed_agreed += agreed
        analyst.proposed_disputed += not agreed
        verifier = row(agency_id, lead.verifier or "?")
        verifier.verifications += 1
        verifier.verifications_agreed += agreed
        if lead.verification_started_at is not None and lead.verified_at is not None:
            seconds = (as_utc(lead.verified_at) - as_utc(lead.verification_started_at)).total_seconds()
            verifier._verify_times.append(max(0.0, seconds))
        theirs, ours = dict(mark.checklist or {}), dict(lead.verification_checklist or {})
        both = set(theirs) & set(ours)
        for target in {id(analyst): analyst, id(verifier): verifier}.values():
            target.features_compared += len(both)
            target.features_agreed += sum(theirs[f] == ours[f] for f in both)
        if lead.supervisor_decision:
            analyst.disputes_upheld += lead.supervisor_decision == LeadStatus.VERIFIED.value
            analyst.disputes_rejected += lead.supervisor_decision == LeadStatus.REJECTED.value
    return out


def examiner_qa(
    rt: GalleryRuntime, actor: Actor, *, since: date | datetime | None = None, until: date | datetime | None = None
) -> QAReport:
    """Examiner QA over a period: per examiner of the actor's agency (supervisors) and per agency (anyone who may
    read the statistics). Refused (and audited) when the actor may do neither."""
    start, end = _bound(since, False), _bound(until, True)
    per_person = allowed(actor, Action.VIEW_EXAMINER_QA, actor.agency_id)
    if not per_person:
        authorise(rt.session_factory, actor, Action.VIEW_STATISTICS, "examiner_qa", None)
    with rt.session_factory() as session:
        examiners = sorted((e.finish() for e in _collect(session, [actor.agency_id], start, end, True).values()),
                           key=lambda e: e.username) if per_person else []  # fmt: skip
        scope = None if allowed(actor, Action.VIEW_STATISTICS) else [actor.agency_id]
        agencies = sorted((e.finish() for e in _collect(session, scope, start, end, False).values()),
                          key=lambda e: e.agency)  # fmt: skip
    audit.record_now(rt.session_factory, actor, "view_examiner_qa", "examiner_qa", audit.Outcome.OK,
                     details={"examiners": len(examiners), "agencies": len(agencies)})  # fmt: skip
    return QAReport(start, end, examiners, agencies)


__all__ = ["ExaminerQA", "QAReport", "examiner_qa"]
