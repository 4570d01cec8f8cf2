"""Legal regimes, administered per agency: which purposes are investigative, exigent or live deployment, how long a
supervisor has to ratify an exigent search, how long a prior authorisation lasts; ratification of exigent searches
and the lock on those nobody ratified in time.

The rules themselves are enforced where the work happens (``cases.open_request``, ``searching.run_search``, every
read of a stored candidate list or candidate photo), so the command line, the REST API and the web pages inherit
them. See docs/regimes.md.

- **Investigative** (default for every purpose): a registered case, an offence from the approved list, a
  justification; a purpose marked ``requires_authorisation`` also needs a supervisor's prior authorisation, which
  carries a scope (the case and request, the purpose, optionally a subset of galleries) and an expiry.
- **Exigent**: the request is ready at once (the declared reason is its justification) and stays usable for the
  ratification window after it was declared; every search made on it must be ratified by a supervisor — not the
  analyst who searched, nor whoever declared the emergency — within the window (default 48 h). Past the window an
  unratified search is *lapsed*: flagged on the ratification list and the auditor's pages, and every read of its
  candidates (list, photo, adjudication, verification, release, report) is refused and audited until a supervisor
  ratifies it (late ratification is recorded as late). A refused ratification locks it for good.
- **Live deployment**: purposes used only by authorised live watch-list deployments; a retrospective search for
  such a purpose is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from faceleads import identifiers
from faceleads.casework.common import as_utc, authorise, clean_text, get_case_search, same_person
from faceleads.casework.models import (
    AgencyRegimeSettings,
    Authorisation,
    Case,
    CaseRequest,
    CaseSearch,
    Purpose,
    PurposeRegime,
    Ratification,
)
from faceleads.config import Settings
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, allowed, enforce, reads_every_agency
from faceleads.core.regime import DEFAULT_REGIME, Regime, fixed_regime, parse_regime
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.identifiers import Kind

MAX_WINDOW_HOURS = 24 * 14
MAX_AUTHORISATION_HOURS = 24 * 90


# --- reading the administered configuration ---------------------------------------------------------------------


def windows(session: Session, settings: Settings, agency_id: int) -> tuple[int, int]:
    """(exigent ratification window, prior-authorisation validity) in hours for an agency."""
    row = session.get(AgencyRegimeSettings, agency_id)
    if row is None:
        return settings.exigent_window_hours, settings.authorisation_hours
    return row.exigent_window_hours, row.authorisation_hours


def regime_of(session: Session, agency_id: int, purpose: Purpose) -> Regime:
    """The regime ``purpose`` belongs to for ``agency_id`` (investigative unless the agency said otherwise; the live
    watch-list purpose is always live deployment)."""
    fixed = fixed_regime(purpose.code)
    if fixed is not None:
        return fixed
    row = session.scalars(
        select(PurposeRegime).where(PurposeRegime.agency_id == agency_id, PurposeRegime.purpose_id == purpose.id)
    ).first()
    return Regime(row.regime) if row is not None else DEFAULT_REGIME


def purpose_regime(rt: GalleryRuntime, agency_id: int, purpose_code: str) -> Regime | None:
    """The regime of a purpose (by code) for an agency; None for an unknown purpose. For other domains (live
    deployments check that their purpose is in the live regime)."""
    with rt.session_factory() as session:
        purpose = session.scalars(select(Purpose).where(Purpose.code == purpose_code)).first()
        return regime_of(session, agency_id, purpose) if purpose is not None else None


@dataclass(frozen=True)
class PurposeRegimeInfo:
    code: str
    title: str
    regime: str
    requires_authorisation: bool
    active: bool


@dataclass(frozen=True)
class RegimeSettings:
    """An agency's regime administration: windows and each purpose's regime."""

    agency_code: str
    exigent_window_hours: int
    authorisation_hours: int
    purposes: list[PurposeRegimeInfo]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _settings_of(rt: GalleryRuntime, session: Session, agency_id: int) -> RegimeSettings:
    agency = session.get(Agency, agency_id)
    window, validity = windows(session, rt.settings, agency_id)
    purposes = [
        PurposeRegimeInfo(p.code, p.title, regime_of(session, agency_id, p).value, p.requires_authorisation, p.active)
        for p in session.scalars(select(Purpose).order_by(Purpose.code))
    ]
    return RegimeSettings(agency.code if agency else str(agency_id), window, validity, purposes)


def show_regimes(rt: GalleryRuntime, actor: Actor) -> RegimeSettings:
    """The actor's agency's regimes (anyone who works cases, approves them or administers them)."""
    if not any(allowed(actor, a, actor.agency_id) for a in (Action.ADMIN_REGIMES, Action.VIEW_CASE,
                                                             Action.VIEW_RATIFICATIONS)):
        enforce(rt.session_factory, actor, Action.ADMIN_REGIMES, "regimes", actor.agency_id)
    with rt.session_factory() as session:
        return _settings_of(rt, session, actor.agency_id)


# --- administering ----------------------------------------------------------------------------------------------


def set_purpose_regime(rt: GalleryRuntime, actor: Actor, purpose_code: str, regime: str) -> RegimeSettings:
    """Put a purpose in a regime for the actor's agency (administrators); audited. Requests already opened keep
    the regime they were opened under and are refused at search time once it changed."""
    enforce(rt.session_factory, actor, Action.ADMIN_REGIMES, f"purpose:{str(purpose_code)[:64]}", actor.agency_id)
    code = identifiers.normalise(Kind.PURPOSE, purpose_code)
    chosen = checked_regime(regime)
    with transaction(rt.session_factory) as session:
        purpose = session.scalars(select(Purpose).where(Purpose.code == code)).first()
        if purpose is None:
            raise NotFound(f"no purpose {code!r}")
        assign_regime(session, actor, purpose, chosen)
        return _settings_of(rt, session, actor.agency_id)


def checked_regime(regime: object) -> Regime:
    """A regime from its name; ValidationError naming the choices otherwise."""
    try:
        return parse_regime(regime)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def assign_regime(session: Session, actor: Actor, purpose: Purpose, chosen: Regime) -> None:
    """Put ``purpose`` in ``chosen`` for the actor's agency, in the caller's transaction, audited. The caller has
    enforced ``ADMIN_REGIMES`` (``set_purpose_regime``, or ``casework.admin.add_purpose`` with a regime)."""
    fixed = fixed_regime(purpose.code)
    if fixed is not None and chosen is not fixed:
        raise ValidationError(f"purpose {purpose.code!r} serves live watch-list deployments: its regime is always "
                              f"{fixed.value.replace('_', ' ')}")
    row = session.scalars(select(PurposeRegime).where(PurposeRegime.agency_id == actor.agency_id,
                                                      PurposeRegime.purpose_id == purpose.id)).first()
    before = row.regime if row is not None else DEFAULT_REGIME.value
    if row is None:
        row = PurposeRegime(agency_id=actor.agency_id, purpose_id=purpose.id, regime=chosen.value,
                            updated_by=actor.username)
        session.add(row)
    row.regime, row.updated_by, row.updated_at = chosen.value, actor.username, utcnow()
    session.flush()
    audit.record(session, actor, audit.AuditAction.SETTING_CHANGE, f"purpose:{purpose.id}", purpose=purpose.code,
                 details={"setting": "regime", "from": before, "to": chosen.value})


def set_windows(
    rt: GalleryRuntime,
    actor: Actor,
    *,
    exigent_window_hours: int | None = None,
    authorisation_hours: int | None = None,
) -> RegimeSettings:
    """Set the agency's exigent ratification window and/or prior-authorisation validity (hours); audited."""
    enforce(rt.session_factory, actor, Action.ADMIN_REGIMES, "regimes/windows", actor.agency_id)
    for name, value, top in (("exigent window", exigent_window_hours, MAX_WINDOW_HOURS),
                             ("authorisation validity", authorisation_hours, MAX_AUTHORISATION_HOURS)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top):
            raise ValidationError(f"{name} must be a whole number of hours from 1 to {top}, got {value!r}")
    with transaction(rt.session_factory) as session:
        window, validity = windows(session, rt.settings, actor.agency_id)
        row = session.get(AgencyRegimeSettings, actor.agency_id)
        if row is None:
            row = AgencyRegimeSettings(agency_id=actor.agency_id, exigent_window_hours=window,
                                       authorisation_hours=validity, updated_by=actor.username)
            session.add(row)
        if exigent_window_hours is not None:
            row.exigent_window_hours = exigent_window_hours
        if authorisation_hours is not None:
            row.authorisation_hours = authorisation_hours
        row.updated_by, row.updated_at = actor.username, utcnow()
        session.flush()
        audit.record(session, actor, audit.AuditAction.SETTING_CHANGE, f"agency:{actor.agency_id}/regimes",
                     details={"setting": "regime_windows", "exigent_window_hours": row.exigent_window_hours,
                              "authorisation_hours": row.authorisation_hours,
                              "previous_exigent_window_hours": window, "previous_authorisation_hours": validity})
        return _settings_of(rt, session, actor.agency_id)


# --- exigent searches: state, lock, ratification ---------------------------------------------------------------


def ratification_state_at(ratify_by: datetime | None, decision: tuple[datetime, bool] | None, now: datetime) -> str:
    """Where an exigent search due by ``ratify_by`` stands at ``now``: ``pending`` / ``lapsed`` while undecided
    (``decision`` None), then ``ratified`` / ``ratified_late`` / ``refused`` from its decision (when, granted).

    Pure: the transparency report asks it as of the end of a past period, passing None for a decision taken after.
    """
    due = as_utc(ratify_by) if ratify_by else None
    if decision is None:
        return "lapsed" if due is not None and now >= due else "pending"
    decided_at, granted = decision
    if not granted:
        return "refused"
    return "ratified_late" if due is not None and as_utc(decided_at) > due else "ratified"


def ratification_state(cs: CaseSearch, session: Session, now: datetime) -> str:
    """``not_required`` / ``pending`` / ``lapsed`` / ``ratified`` / ``ratified_late`` / ``refused``."""
    if cs.regime != Regime.EXIGENT.value or cs.ratification is None:
        return "not_required"
    if cs.ratification == Ratification.PENDING.value:
        return ratification_state_at(cs.ratify_by, None, now)
    if cs.ratification == Ratification.REFUSED.value:
        return "refused"
    decision = session.get(Authorisation, cs.ratification_id) if cs.ratification_id else None
    if decision is None:
        return "ratified"  # no decision record to tell whether it came late
    return ratification_state_at(cs.ratify_by, (decision.at, True), now)


LOCKED_STATES = ("lapsed", "refused")


def require_unlocked(
    rt: GalleryRuntime, session: Session, actor: Actor, cs: CaseSearch, case: Case, action: str,
    object_ref: str | None = None, now: datetime | None = None,
) -> None:
    """Refuse (and audit) any read of or work on the candidates of an exigent search nobody ratified in time, or
    whose ratification was refused."""
    state = ratification_state(cs, session, as_utc(now or utcnow()))
    if state not in LOCKED_STATES:
        return
    if state == "refused":
        reason = (f"case search {cs.id} is locked: a supervisor refused to ratify this exigent search, so its "
                  "candidates may not be read or used")
    else:
        due = f" by {as_utc(cs.ratify_by):%Y-%m-%d %H:%M} UTC" if cs.ratify_by else ""
        reason = (f"case search {cs.id} is locked: the exigent search was not ratified by a supervisor{due} (its "
                  "window); its candidates stay locked until a supervisor ratifies it")
    audit.record_now(rt.session_factory, actor, action, object_ref or f"case_search:{cs.id}", audit.Outcome.DENIED,
                     case=case.occurrence_number,
                     details={"reason": reason[:400], "case_search_id": cs.id, "ratification": state})
    raise PermissionDenied(reason)


@dataclass(frozen=True)
class RatificationInfo:
    """An exigent search and where it stands with its ratification."""

    case_search_id: int
    agency: str
    case_id: int
    occurrence_number: str
    request_id: int
    purpose: str
    justification: str
    analyst: str
    searched_at: datetime
    ratify_by: datetime | None
    state: str
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None

    @property
    def locked(self) -> bool:
        return self.state in LOCKED_STATES

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("searched_at", "ratify_by", "decided_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        data["locked"] = self.locked
        return data


def _ratification_info(session: Session, cs: CaseSearch, case: Case, now: datetime) -> RatificationInfo:
    req = session.get(CaseRequest, cs.request_id)
    agency = session.get(Agency, case.agency_id)
    decision = session.get(Authorisation, cs.ratification_id) if cs.ratification_id else None
    return RatificationInfo(
        case_search_id=cs.id,
        agency=agency.code if agency else str(case.agency_id),
        case_id=case.id,
        occurrence_number=case.occurrence_number,
        request_id=cs.request_id,
        purpose=req.purpose.code if req else "",
        justification=req.justification if req else "",
        analyst=cs.analyst,
        searched_at=as_utc(cs.created_at),
        ratify_by=as_utc(cs.ratify_by) if cs.ratify_by else None,
        state=ratification_state(cs, session, now),
        decided_by=decision.by_username if decision else None,
        decided_at=as_utc(decision.at) if decision else None,
        decision_reason=decision.reason if decision else None,
    )


def ratify_search(
    rt: GalleryRuntime, actor: Actor, case_search_id: int, reason: str, *, grant: bool = True
) -> RatificationInfo:
    """A supervisor ratifies (or refuses to ratify) an exigent search, recording who, when and why.

    Neither the analyst who ran the search nor whoever declared the emergency (opened the request) may ratify it.
    A ratification after the window is accepted and recorded as late (it unlocks the candidates); a refusal locks
    them for good.
    """
    why = clean_text(reason, "reason", 2000)
    ref = f"case_search:{case_search_id}"
    authorise(rt.session_factory, actor, Action.AUTHORISE_EXCEPTION, ref, None)
    now = as_utc(utcnow())
    with rt.session_factory() as session:  # who may: read only (refusals are recorded on their own)
        cs, case = get_case_search(session, case_search_id)
        authorise(rt.session_factory, actor, Action.AUTHORISE_EXCEPTION, ref, case.agency_id, case.occurrence_number)
        if cs.regime != Regime.EXIGENT.value or cs.ratification is None:
            raise ValidationError(f"case search {cs.id} is not an exigent search: it needs no ratification")
        if cs.ratification != Ratification.PENDING.value:
            raise ValidationError(f"case search {cs.id} was already {cs.ratification}")
        req = session.get(CaseRequest, cs.request_id)
        assert req is not None
        if same_person(actor, cs.analyst, cs.analyst_user_id):
            _deny(rt, actor, ref, case,
                  "the analyst who ran an exigent search cannot ratify it: another supervisor must")
        if actor.username == req.requested_by:
            _deny(rt, actor, ref, case,
                  "whoever declared the emergency (opened the request) cannot ratify its search")
        state_before = ratification_state(cs, session, now)
    decided = (Ratification.RATIFIED if grant else Ratification.REFUSED).value
    with transaction(rt.session_factory) as session:
        # Claimed first: two supervisors deciding at once cannot both record a decision.
        claimed = session.execute(update(CaseSearch).where(
            CaseSearch.id == case_search_id, CaseSearch.ratification == Ratification.PENDING.value,
        ).values(ratification=decided))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise ValidationError(f"case search {case_search_id} was decided by another supervisor meanwhile")
        cs, case = get_case_search(session, case_search_id)
        session.refresh(cs)
        req = session.get(CaseRequest, cs.request_id)
        assert req is not None
        due = as_utc(cs.ratify_by) if cs.ratify_by else now
        decision = Authorisation(case_id=case.id, kind="ratification", request_id=req.id, case_search_id=cs.id,
                                 granted=grant, by_username=actor.username, by_user_id=actor.user_id, reason=why,
                                 at=now, details={"due": due.isoformat(), "late": now > due})
        session.add(decision)
        session.flush()
        cs.ratification_id = decision.id
        session.flush()
        audit.record(session, actor, "exigent_ratification", ref, audit.Outcome.OK if grant else "refused",
                     case=case.occurrence_number, purpose=req.purpose.code,
                     details={"granted": grant, "late": now > due, "state_before": state_before,
                              "due": due.isoformat(), "regime": Regime.EXIGENT.value})
        return _ratification_info(session, cs, case, now)


def _deny(rt: GalleryRuntime, actor: Actor, ref: str, case: Case, reason: str) -> None:
    audit.record_now(rt.session_factory, actor, "exigent_ratification", ref, audit.Outcome.DENIED,
                     case=case.occurrence_number, details={"reason": reason})
    raise PermissionDenied(reason)


RATIFICATION_FILTERS = ("open", "pending", "lapsed", "decided", "all")


def list_ratifications(
    rt: GalleryRuntime, actor: Actor, *, state: str = "open", agency_code: str | None = None,
    audit_when_empty: bool = True,
) -> list[RatificationInfo]:
    """Exigent searches by ratification state: ``open`` (pending and lapsed, the default), ``pending``, ``lapsed``,
    ``decided`` or ``all``; newest first. Supervisors and auditors see their agency's; oversight every agency's
    (``agency_code`` narrows it).

    The read is audited. ``audit_when_empty=False`` (the home dashboard, shown on every visit) records the read only
    when it returned something to show: an empty answer disclosed no case, search or reason, and auditing it on
    every home page view would bury the entries that matter.
    """
    if state not in RATIFICATION_FILTERS:
        raise ValidationError(f"state must be one of {', '.join(RATIFICATION_FILTERS)}, got {state!r}")
    enforce(rt.session_factory, actor, Action.VIEW_RATIFICATIONS, "ratifications", actor.agency_id)
    every = reads_every_agency(actor, Action.VIEW_RATIFICATIONS)
    now = as_utc(utcnow())
    out: list[RatificationInfo] = []
    with rt.session_factory() as session:
        query = (select(CaseSearch, Case).join(Case, Case.id == CaseSearch.case_id)
                 .where(CaseSearch.regime == Regime.EXIGENT.value).order_by(CaseSearch.id.desc()))
        code = (agency_code or "").strip().upper()
        if code:
            agency = session.scalars(select(Agency).where(Agency.code == code)).first()
            if agency is None:
                raise ValidationError(f"unknown agency {code!r}")
            enforce(rt.session_factory, actor, Action.VIEW_RATIFICATIONS, f"ratifications/agency:{code}", agency.id)
            query = query.where(Case.agency_id == agency.id)
        elif not every:
            query = query.where(Case.agency_id == actor.agency_id)
        for cs, case in session.execute(query):
            info = _ratification_info(session, cs, case, now)
            wanted = {"open": info.state in ("pending", "lapsed"), "pending": info.state == "pending",
                      "lapsed": info.state == "lapsed",
                      "decided": info.state in ("ratified", "ratified_late", "refused"), "all": True}[state]
            if wanted:
                out.append(info)
    if out or audit_when_empty:
        audit.record_now(rt.session_factory, actor, "view_ratifications", "ratifications", audit.Outcome.OK,
                         details={"state": state, "agency": code or None, "all_agencies": every and not code,
                                  "returned": len(out), "lapsed": sum(1 for r in out if r.state == "lapsed"),
                                  "case_searches": ",".join(str(r.case_search_id) for r in out[:100])})
    return out


def exigent_deadline(session: Session, settings: Settings, agency_id: int, start: datetime) -> datetime:
    """When an exigent search started at ``start`` must be ratified by."""
    window, _ = windows(session, settings, agency_id)
    return as_utc(start) + timedelta(hours=window)
