"""Blind verification: what a potential verifier may see of a search whose leads await verification.

A lead is verified blind: the second examiner compares the probe with the one proposed candidate and reaches their
own conclusion without knowing anything else of the search. So while any lead of a case search awaits
verification, the search is **sealed** for every user who could verify it — anyone holding the verify right who
is not the analyst who ran the search. For them the casework services refuse (and audit) everything else of that
search: its candidate list (ranks, scores, photos), the search record, the other candidates' photos, the list and
the state of its leads, the lead report, the first analyst's marks, and running a search of their own on the same
evidence (which would reproduce the list). The only view they get is :func:`faceleads.casework.adjudication.
verification_task` and the lead-scoped photos of the proposed candidate.

The seal lifts by itself once no lead of the search awaits verification (the verifier concluded). It is decided
here, in the domain, from the database: the pages, the REST API and the CLI all call services that call
:func:`refuse_if_sealed`, so no interface can show what another hides.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from faceleads.casework.common import same_person
from faceleads.casework.models import Case, CaseSearch, Lead, LeadStatus, Probe
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, holds_role_for
from faceleads.errors import PermissionDenied


def may_verify(actor: Actor) -> bool:
    """Whether the actor holds the verify right (and so could be the blind verifier of a colleague's lead)."""
    return holds_role_for(actor, Action.VERIFY)


def sealed_search_ids(session: Session, actor: Actor, agency_id: int, case_id: int | None = None) -> set[int]:
    """Ids of the agency's case searches (of one case, when given) sealed for ``actor``."""
    if not may_verify(actor):
        return set()
    query = (
        select(CaseSearch.id, CaseSearch.analyst, CaseSearch.analyst_user_id)
        .join(Lead, Lead.case_search_id == CaseSearch.id)
        .join(Case, Case.id == CaseSearch.case_id)
        .where(Case.agency_id == agency_id, Lead.status == LeadStatus.AWAITING_VERIFICATION.value)
    )
    if case_id is not None:
        query = query.where(CaseSearch.case_id == case_id)
    return {cs_id for cs_id, analyst, user_id in session.execute(query).all()
            if not same_person(actor, analyst, user_id)}  # fmt: skip


def is_sealed(session: Session, actor: Actor, cs: CaseSearch) -> bool:
    """Whether case search ``cs`` is sealed for ``actor`` (see the module docstring)."""
    if not may_verify(actor) or same_person(actor, cs.analyst, cs.analyst_user_id):
        return False
    waiting = session.scalars(
        select(Lead.id).where(Lead.case_search_id == cs.id, Lead.status == LeadStatus.AWAITING_VERIFICATION.value)
    ).first()
    return waiting is not None


def sealed_message(case_search_id: int) -> str:
    """The refusal a potential verifier gets (it says why, and where their task is)."""
    return (
        f"search {case_search_id} is sealed for you: a lead of it awaits blind verification and you may be its "
        "verifier, so until it is verified you see only the probe and the proposed candidate (Verification page)"
    )


def refuse_if_sealed(
    factory: sessionmaker[Session], session: Session, actor: Actor, cs: CaseSearch, case: Case, action: str
) -> None:
    """Refuse ``action`` on case search ``cs`` when it is sealed for ``actor``; the refusal is audited (in its own
    transaction, so it survives the caller's rollback)."""
    if not is_sealed(session, actor, cs):
        return
    message = sealed_message(cs.id)
    audit.record_now(factory, actor, action, f"case_search:{cs.id}", audit.Outcome.DENIED,
                     case=case.occurrence_number, details={"reason": "sealed for blind verification"})  # fmt: skip
    raise PermissionDenied(message)


def sealed_evidence(session: Session, actor: Actor, agency_id: int) -> set[str]:
    """SHA-256 of every evidence item searched by a case search sealed for ``actor``: a search of their own on the
    same evidence would show them the sealed candidate list again."""
    ids = sealed_search_ids(session, actor, agency_id)
    if not ids:
        return set()
    out: set[str] = set()
    for cs in session.scalars(select(CaseSearch).where(CaseSearch.id.in_(ids))):
        out.update(str(u.get("evidence_sha256")) for u in cs.probes_used or [] if u.get("evidence_sha256"))
    return out


def refuse_sealed_evidence(
    factory: sessionmaker[Session], session: Session, actor: Actor, case: Case, probes: list[Probe]
) -> None:
    """Refuse a search by a potential verifier on evidence of a sealed search (audited)."""
    if not may_verify(actor):
        return
    sealed = sealed_evidence(session, actor, case.agency_id)
    hit = next((p for p in probes if p.evidence.sha256 in sealed), None)
    if hit is None:
        return
    audit.record_now(factory, actor, audit.AuditAction.SEARCH, f"probe:{hit.id}", audit.Outcome.DENIED,
                     case=case.occurrence_number, details={"reason": "sealed for blind verification"})  # fmt: skip
    raise PermissionDenied(
        f"probe {hit.id}'s evidence was searched in a search whose lead awaits blind verification, and you may be "
        "its verifier: searching it yourself would show you that candidate list. Verify the lead first."
    )


__all__ = [
    "is_sealed",
    "may_verify",
    "refuse_if_sealed",
    "refuse_sealed_evidence",
    "sealed_evidence",
    "sealed_message",
    "sealed_search_ids",
]
