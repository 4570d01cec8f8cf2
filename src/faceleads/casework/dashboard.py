"""What awaits each user, and the state of the agency's cases at a glance.

:func:`work_items` is the user's queue across cases: requests to authorise, probes below the quality floor to
override, evidence to prepare, searches to adjudicate, leads to verify blind, disputes to decide, verified leads to
release and released reports to receive — each with its case, offence, priority, how long it has waited and when it
is due (``Settings.work_due_hours`` per kind, shortened by ``Settings.priority_due_hours`` for urgent and
threat-to-life requests). :func:`case_overviews` gives every case of the agency with the counts of its evidence,
searches and leads by status, its priority and whether it holds overdue or waiting work.

Both respect blind verification (:mod:`faceleads.casework.blind`): for a potential verifier a sealed search and its
leads are neither listed nor counted. Nothing biometric is returned, so the reads are not audited (like the case
list itself).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceleads.casework import blind
from faceleads.casework.common import as_utc, authorise, same_person
from faceleads.casework.models import (
    PRIORITY_ORDER,
    Adjudication,
    Case,
    CaseRequest,
    CaseSearch,
    CaseStatus,
    Evidence,
    Lead,
    LeadStatus,
    Priority,
    Probe,
    RequestStatus,
    SearchStatus,
)
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, allowed
from faceleads.core.regime import Regime
from faceleads.db import utcnow
from faceleads.gallery.runtime import GalleryRuntime

KINDS: dict[str, str] = {
    "authorise": "Authorise a request",
    "override": "Quality override asked",
    "prepare": "Prepare evidence",
    "adjudicate": "Adjudicate candidates",
    "verify": "Verify a lead (blind)",
    "decide": "Decide a disputed lead",
    "release": "Release a verified lead",
    "receive": "Released lead report",
}


@dataclass(frozen=True)
class WorkItem:
    """One piece of work waiting for the actor."""

    kind: str  # a key of KINDS
    case_id: int
    case_occurrence: str
    offence: str
    priority: str
    since: datetime
    due_at: datetime | None  # None: no deadline (a report to read)
    overdue: bool
    ref_id: int  # the request, probe, case search or lead the item is about
    detail: str = ""

    @property
    def label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        data["due_at"] = self.due_at.isoformat() if self.due_at else None
        data["label"] = self.label
        return data


@dataclass(frozen=True)
class CaseOverview:
    """A case with the counts an investigator or analyst looks at first."""

    id: int
    occurrence_number: str
    offence_code: str
    offence_title: str
    status: str
    investigator: str
    opened_at: datetime
    priority: str
    exigent: bool
    evidence: int
    probes: int
    searches: dict[str, int] = field(default_factory=dict)  # by status (adjudicating / submitted)
    leads: dict[str, int] = field(default_factory=dict)  # by status
    sealed_searches: int = 0
    waiting: int = 0  # work items of the actor on this case
    overdue: int = 0
    mine: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["opened_at"] = self.opened_at.isoformat()
        return data


def _due(rt: GalleryRuntime, kind: str, priority: str, since: datetime, now: datetime) -> tuple[datetime, bool]:
    hours = rt.settings.work_due_hours.get(kind, 72)
    hours = min(hours, rt.settings.priority_due_hours.get(priority, hours))
    due = since + timedelta(hours=hours)
    return due, now > due


def _case_priority(session: Session, case_ids: list[int]) -> dict[int, tuple[str, bool]]:
    """The highest priority of each case's live requests (refused ones do not count) and whether one was opened
    under the exigent regime."""
    out: dict[int, tuple[str, bool]] = {}
    if not case_ids:
        return out
    rows = session.scalars(select(CaseRequest).where(CaseRequest.case_id.in_(case_ids),
                                                     CaseRequest.status != RequestStatus.REFUSED.value))
    for req in rows:
        level = req.priority or Priority.ROUTINE.value
        best, exigent = out.get(req.case_id, (Priority.ROUTINE.value, False))
        if PRIORITY_ORDER.get(level, 9) < PRIORITY_ORDER.get(best, 9):
            best = level
        out[req.case_id] = (best, exigent or req.regime == Regime.EXIGENT.value)
    return out


def _offence(case: Case) -> str:
    return f"{case.offence.code} {case.offence.title}"


def work_items(rt: GalleryRuntime, actor: Actor, *, now: datetime | None = None) -> list[WorkItem]:
    """Everything waiting for the actor, overdue first, then by priority and age."""
    moment = as_utc(now or utcnow())
    if not allowed(actor, Action.VIEW_CASE, actor.agency_id):
        return []
    authorise(rt.session_factory, actor, Action.VIEW_CASE, "work", actor.agency_id)
    may = {a: allowed(actor, a, actor.agency_id) for a in (
        Action.AUTHORISE_EXCEPTION, Action.EDIT_PROBE, Action.SEARCH, Action.VERIFY, Action.DECIDE_DISAGREEMENT,
        Action.RELEASE_LEAD, Action.EXPORT_REPORT, Action.VIEW_REPORT)}  # fmt: skip
    items: list[WorkItem] = []
    with rt.session_factory() as session:
        cases = {c.id: c for c in session.scalars(select(Case).where(Case.agency_id == actor.agency_id,
                                                                     Case.status == CaseStatus.OPEN.value))}
        if not cases:
            return []
        ids = list(cases)
        priorities = _case_priority(session, ids)
        sealed = blind.sealed_search_ids(session, actor, actor.agency_id)

        def add(kind: str, case_id: int, since: datetime, ref_id: int, priority: str | None = None,
                detail: str = "", deadline: bool = True) -> None:
            case = cases[case_id]
            level = priority or priorities.get(case_id, (Priority.ROUTINE.value, False))[0]
            since = as_utc(since)
            due, late = _due(rt, kind, level, since, moment) if deadline else (None, False)
            items.append(WorkItem(kind, case_id, case.occurrence_number, _offence(case), level, since, due, late,
                                  ref_id, detail))

        requests = list(session.scalars(select(CaseRequest).where(CaseRequest.case_id.in_(ids))))
        if may[Action.AUTHORISE_EXCEPTION]:
            for req in requests:
                if req.status == RequestStatus.AWAITING_AUTHORISATION.value:
                    add("authorise", req.case_id, req.requested_at, req.id, req.priority,
                        f"{req.purpose.title} · requested by {req.requested_by}")
        probes = list(session.scalars(select(Probe).where(Probe.case_id.in_(ids))))
        if may[Action.AUTHORISE_EXCEPTION]:
            floor = rt.settings.quality_floor
            for probe in probes:
                if (probe.quality_overall is not None and probe.quality_overall < floor
                        and probe.quality_override_id is None and not same_person(actor, probe.created_by, None)):
                    add("override", probe.case_id, probe.updated_at, probe.id,
                        detail=f"probe {probe.id}: quality {probe.quality_overall:.2f} below {floor}")
        searched = {int(u["probe_id"]) for cs in session.scalars(select(CaseSearch).where(CaseSearch.case_id.in_(ids)))
                    for u in cs.probes_used}  # fmt: skip
        if may[Action.EDIT_PROBE] and may[Action.SEARCH]:
            ready = {r.case_id for r in requests if r.status == RequestStatus.READY.value}
            for probe in probes:
                if probe.case_id in ready and probe.template is None and probe.id not in searched:
                    add("prepare", probe.case_id, probe.created_at, probe.id,
                        detail=f"probe {probe.id}: choose the face and search")
        if may[Action.SEARCH]:
            for cs in session.scalars(select(CaseSearch).where(CaseSearch.case_id.in_(ids),
                                                               CaseSearch.status == SearchStatus.ADJUDICATING.value)):
                if same_person(actor, cs.analyst, cs.analyst_user_id):
                    add("adjudicate", cs.case_id, cs.created_at, cs.id, _request_priority(requests, cs.request_id),
                        f"search {cs.id}")
        leads = list(session.scalars(select(Lead).where(Lead.case_id.in_(ids))))
        searches = {cs.id: cs for cs in session.scalars(select(CaseSearch).where(CaseSearch.case_id.in_(ids)))}
        for lead in leads:
            cs = searches[lead.case_search_id]
            level = _request_priority(requests, cs.request_id)
            if lead.status == LeadStatus.AWAITING_VERIFICATION.value and may[Action.VERIFY]:
                mark = session.get(Adjudication, lead.adjudication_id)
                if mark is not None and not same_person(actor, mark.analyst, mark.analyst_user_id) \
                        and not same_person(actor, cs.analyst, cs.analyst_user_id):
                    add("verify", lead.case_id, lead.created_at, lead.id, level, f"lead {lead.id}")
                continue
            if lead.case_search_id in sealed:
                continue
            if lead.status == LeadStatus.DISPUTED.value and may[Action.DECIDE_DISAGREEMENT]:
                mark = session.get(Adjudication, lead.adjudication_id)
                if mark is not None and not same_person(actor, mark.analyst, mark.analyst_user_id) \
                        and not same_person(actor, lead.verifier, lead.verifier_user_id):
                    add("decide", lead.case_id, lead.verified_at or lead.created_at, lead.id, level,
                        f"lead {lead.id}: {lead.verifier} disagreed")
            elif lead.status == LeadStatus.VERIFIED.value and may[Action.RELEASE_LEAD]:
                add("release", lead.case_id, lead.decided_at or lead.verified_at or lead.created_at, lead.id, level,
                    f"lead {lead.id}")
            elif (lead.status == LeadStatus.RELEASED.value and may[Action.VIEW_REPORT]
                  and not may[Action.EXPORT_REPORT]):
                case = cases[lead.case_id]
                if same_person(actor, case.investigator, None) or same_person(actor, case.opened_by, None):
                    add("receive", lead.case_id, lead.released_at or lead.created_at, lead.id, level,
                        f"lead {lead.id}, search {lead.case_search_id}", deadline=False)
    return sorted(items, key=lambda i: (not i.overdue, PRIORITY_ORDER.get(i.priority, 9), i.since, i.ref_id))


def _counts(session: Session, model: type[Evidence] | type[Probe], ids: list[int]) -> dict[int, int]:
    query = select(model.case_id, func.count(model.id)).where(model.case_id.in_(ids)).group_by(model.case_id)
    return {int(case_id): int(n) for case_id, n in session.execute(query)}


def _request_priority(requests: list[CaseRequest], request_id: int) -> str:
    return next((r.priority for r in requests if r.id == request_id and r.priority), Priority.ROUTINE.value)


def case_overviews(
    rt: GalleryRuntime, actor: Actor, *, status: str | None = None, mine: bool = False, limit: int = 200,
    now: datetime | None = None,
) -> list[CaseOverview]:
    """The agency's cases (newest first) with their counts, priority and the actor's waiting and overdue work.

    ``mine``: only cases the actor investigates, opened, searched or verified in.
    """
    authorise(rt.session_factory, actor, Action.VIEW_CASE, "cases", actor.agency_id)
    work = work_items(rt, actor, now=now)
    waiting = Counter(i.case_id for i in work)
    overdue = Counter(i.case_id for i in work if i.overdue)
    with rt.session_factory() as session:
        query = select(Case).where(Case.agency_id == actor.agency_id)
        if status:
            query = query.where(Case.status == status)
        cases = list(session.scalars(query.order_by(Case.id.desc()).limit(max(1, min(limit, 1000)))))
        ids = [c.id for c in cases]
        if not ids:
            return []
        evidence = _counts(session, Evidence, ids)
        probes = _counts(session, Probe, ids)
        sealed = blind.sealed_search_ids(session, actor, actor.agency_id)
        searches: dict[int, Counter[str]] = defaultdict(Counter)
        sealed_count: Counter[int] = Counter()
        involved: set[int] = set()
        for cs in session.scalars(select(CaseSearch).where(CaseSearch.case_id.in_(ids))):
            if cs.id in sealed:
                sealed_count[cs.case_id] += 1
                continue
            searches[cs.case_id][cs.status] += 1
            if same_person(actor, cs.analyst, cs.analyst_user_id):
                involved.add(cs.case_id)
        leads: dict[int, Counter[str]] = defaultdict(Counter)
        for lead in session.scalars(select(Lead).where(Lead.case_id.in_(ids))):
            if same_person(actor, lead.verifier, lead.verifier_user_id):
                involved.add(lead.case_id)
            if lead.case_search_id not in sealed:
                leads[lead.case_id][lead.status] += 1
        priorities = _case_priority(session, ids)
        out = []
        for case in cases:
            own = (case.id in involved or same_person(actor, case.investigator, None)
                   or same_person(actor, case.opened_by, None))
            if mine and not own:
                continue
            level, exigent = priorities.get(case.id, (Priority.ROUTINE.value, False))
            out.append(CaseOverview(
                case.id, case.occurrence_number, case.offence.code, case.offence.title, case.status, case.investigator,
                as_utc(case.opened_at), level, exigent, int(evidence.get(case.id, 0)), int(probes.get(case.id, 0)),
                dict(searches[case.id]), dict(leads[case.id]), sealed_count[case.id], waiting[case.id],
                overdue[case.id], own,
            ))  # fmt: skip
        return out


__all__ = ["KINDS", "CaseOverview", "WorkItem", "case_overviews", "work_items"]
