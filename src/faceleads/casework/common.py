"""Small helpers shared by the casework services: loading scoped records, case keys, text checks, certification."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from faceleads import identifiers
from faceleads.casework.models import Case, CaseRequest, CaseSearch, CaseStatus, Lead, Probe
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.gallery.runtime import GalleryRuntime


def as_utc(moment: datetime) -> datetime:
    """SQLite returns naive datetimes (stored as UTC); make every time aware."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def clean_text(value: object, name: str, limit: int, *, required: bool = True) -> str:
    """A stripped string of at most ``limit`` characters; refused when required and empty."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be text")
    text = identifiers.free_text(value.strip(), name)
    if required and not text:
        raise ValidationError(f"{name} is required")
    if len(text) > limit:
        raise ValidationError(f"{name} is limited to {limit} characters, got {len(text)}")
    return text


def evidence_context(sha256: str) -> str:
    """Blob-store context of an evidence original (the store adds the case key id and the address)."""
    return f"case-evidence|{sha256}"


def frame_context(sha256: str) -> str:
    """Blob-store context of an extracted video frame."""
    return f"case-frame|{sha256}"


def probe_template_context(case_key_id: str, probe_id: int, edits_version: int, model_version: str) -> str:
    """Associated data binding a probe template to its case, probe, edit-list version and model."""
    return f"probe-template|{case_key_id}|{probe_id}|{edits_version}|{model_version}"


def case_key(rt: GalleryRuntime, case: Case) -> bytes:
    """The case's data key (created on first use; KeyDestroyedError once retention destroyed it)."""
    if case.status == CaseStatus.PURGED.value:
        raise NotFound(f"case {case.occurrence_number} was purged under the retention rules")
    rt.keystore.create(case.key_id)
    return rt.keystore.get(case.key_id)


def missing_message(object_ref: str) -> str:
    """What a lookup says for a missing record: ``case_search:5`` -> ``no case search 5``."""
    kind, _, ident = object_ref.partition(":")
    return f"no {kind.replace('_', ' ')} {ident}".strip()


def authorise(
    factory: sessionmaker[Session], actor: Actor, action: Action, object_ref: str, agency_id: int | None,
    case: str | None = None, *, not_found: str | None = None, shared: bool | None = None,
) -> None:
    """The central policy decision (denials are audited).

    Services call it twice around a lookup by id: first with ``agency_id`` None (the role alone, before anything is
    read, so that a user without the role gets the same 403 for every id), then with the record's agency. A record
    of another agency is then answered like a missing one (``not_found``, by default the getters' own message), so
    that its id cannot be told from an unused one.
    """
    enforce(factory, actor, action, object_ref, agency_id, case=case, shared=shared,
            not_found=not_found or missing_message(object_ref))


def get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def get_request(session: Session, request_id: int) -> tuple[CaseRequest, Case]:
    req = session.get(CaseRequest, request_id)
    if req is None:
        raise NotFound(f"no request {request_id}")
    return req, get_case(session, req.case_id)


def get_probe(session: Session, probe_id: int) -> tuple[Probe, Case]:
    probe = session.get(Probe, probe_id)
    if probe is None:
        raise NotFound(f"no probe {probe_id}")
    return probe, get_case(session, probe.case_id)


def get_case_search(session: Session, case_search_id: int) -> tuple[CaseSearch, Case]:
    cs = session.get(CaseSearch, case_search_id)
    if cs is None:
        raise NotFound(f"no case search {case_search_id}")
    return cs, get_case(session, cs.case_id)


def get_lead(session: Session, lead_id: int) -> tuple[Lead, Case]:
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id}")
    return lead, get_case(session, lead.case_id)


def require_open(case: Case) -> None:
    if case.status != CaseStatus.OPEN.value:
        raise ValidationError(f"case {case.occurrence_number} is {case.status}; only an open case can be worked on")


def require_certified(session: Session, actor: Actor, now: datetime) -> None:
    """Analysts and reviewers need an unexpired certification at the moment they act.

    The actor's roles already omit analyst/reviewer for an uncertified user at sign-in; checking again here
    catches a certification that expired or was revoked during a session. The dev-mode system actor (no user)
    has no certification to check.
    """
    if actor.user_id is None:
        return
    from faceleads.security.auth import has_valid_certification

    if not has_valid_certification(session, actor.user_id, now):
        raise PermissionDenied(
            f"user {actor.username!r} has no valid facial comparison certification (expired or revoked)"
        )


def same_person(actor: Actor, username: str | None, user_id: int | None) -> bool:
    """Whether ``actor`` is the user recorded as (username, user_id)."""
    if actor.user_id is not None and user_id is not None:
        return actor.user_id == user_id
    return username is not None and actor.username == username
