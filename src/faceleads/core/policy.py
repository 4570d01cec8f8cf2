"""The one central authorisation policy: (actor's roles, action, resource's agency, sharing) -> allow or deny.

Every CLI command, API route and web page goes through :func:`require`. The decision has three parts:

1. **Role**: the action must be granted to one of the actor's roles (:data:`ROLE_ACTIONS`). The roles an
   :class:`Actor` carries are its *effective* roles: :func:`faceleads.security.auth.actor_for_session` leaves out
   ``analyst`` and ``reviewer`` when the user's analyst certification has expired.
2. **Agency scope**: every action on a resource of another agency is denied, except
   - the read-only gallery actions in :data:`SHAREABLE_ACTIONS`, which are allowed across agencies only when the
     resource is shared with the actor's agency (``shared=True``, decided from the sharing agreements by the
     caller — ``faceleads.gallery.visibility`` owns those). The check fails closed: ``shared`` unknown (None) is
     a refusal, and
   - the system-wide actions in :data:`SYSTEM_ACTIONS` (agency list, offence list, settings, backups, chain
     verification, aggregate statistics), which have no owning agency.
   - the read-only oversight actions in :data:`CROSS_AGENCY_ACTIONS`, which the ``oversight`` role (a privacy
     commissioner, an external auditor) holds over every agency.
3. **Nothing else**: there is no per-route special casing; a route that needs a new kind of decision adds an
   action here.

Domain services call :func:`enforce` (which audits every refusal) inside the service function that reads or
changes the data; ``web`` and ``cli`` never decide. A service that loads a record by id passes ``not_found`` so
that a record of another agency is answered exactly like a missing one (404, no hint that the id exists) while
the refusal is still audited.

The administrator manages people and configuration but holds no action that reads biometric content (gallery or
probe images, records, candidate lists); the auditor only reads the audit log and statistics; oversight reads
audit, statistics and reports of every agency and nothing biometric; the system operator creates agencies and
grants the system-level roles, and reads no agency's data. Granting a role that reaches biometric content
(:func:`biometric_roles`) or recording a certification needs a second person's approval
(``faceleads.security.approvals``).
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.orm import Session, sessionmaker

from faceleads.core import audit
from faceleads.core.actor import Actor, Role
from faceleads.errors import NotFound, PermissionDenied


class Action(StrEnum):
    """Everything a user can do that the policy decides on."""

    # Gallery (booking records).
    ENROL = "enrol"
    REINDEX = "reindex"
    SEARCH = "search"
    VIEW_GALLERY_IMAGE = "view_gallery_image"
    VIEW_GALLERY_RECORD = "view_gallery_record"
    MANAGE_GALLERY = "manage_gallery"  # gallery metadata: name, legal authority, purposes (no images)

    # Casework: request -> probe -> search -> adjudication -> verification -> release -> report.
    OPEN_CASE = "open_case"
    VIEW_CASE = "view_case"
    SUBMIT_EVIDENCE = "submit_evidence"
    EDIT_PROBE = "edit_probe"  # crop/enhance (non-destructive edit list), pick the face
    VIEW_PROBE_IMAGE = "view_probe_image"
    ADJUDICATE = "adjudicate"
    VERIFY = "verify"  # blind verification of a proposed lead
    DECIDE_DISAGREEMENT = "decide_disagreement"
    AUTHORISE_EXCEPTION = "authorise_exception"  # quality override, exigent purpose, extra galleries
    RELEASE_LEAD = "release_lead"
    EXPORT_REPORT = "export_report"
    VIEW_REPORT = "view_report"  # receive a released lead report
    VIEW_STATISTICS = "view_statistics"
    VIEW_EXAMINER_QA = "view_examiner_qa"  # agreement, dispute rate and time per candidate of the agency's examiners

    # Retention and destruction.
    APPLY_RETENTION = "apply_retention"
    DESTRUCTION_REQUEST = "destruction_request"
    DESTRUCTION_DECIDE = "destruction_decide"
    DESTRUCTION_EXECUTE = "destruction_execute"
    VIEW_DESTRUCTION = "view_destruction"  # requests, decisions, certificates (no biometric content)

    # Audit.
    AUDIT_READ = "audit_read"
    AUDIT_EXPORT = "audit_export"
    AUDIT_VERIFY = "audit_verify"

    # Administration.
    ADMIN_AGENCIES = "admin_agencies"
    ADMIN_USERS = "admin_users"
    ADMIN_ROLES = "admin_roles"
    ADMIN_CERTIFICATIONS = "admin_certifications"
    ADMIN_OFFENCES = "admin_offences"
    ADMIN_PURPOSES = "admin_purposes"
    ADMIN_SETTINGS = "admin_settings"
    ADMIN_SHARING = "admin_sharing"
    ADMIN_REGIMES = "admin_regimes"  # which purposes belong to which legal regime, the exigent window
    VIEW_USERS = "view_users"
    BACKUP = "backup"
    RESTORE = "restore"

    # Separation of duties: approving a request that gives someone access to biometric content (a biometric role, a
    # certification, a credential reset of a biometric user). The bootstrap form lets a system operator approve the
    # first holder of the approving role in an agency that has none yet.
    APPROVE_ACCESS = "approve_access"
    APPROVE_ACCESS_BOOTSTRAP = "approve_access_bootstrap"
    ADMIN_SYSTEM_ROLES = "admin_system_roles"  # grant/revoke system_operator and oversight

    # Legal regimes and oversight.
    VIEW_RATIFICATIONS = "view_ratifications"  # exigent searches awaiting (or past) their supervisor's ratification
    VIEW_PARTNER_ACCESS = "view_partner_access"  # which partner agencies read the agency's own records

    # Any signed-in user, on their own account only.
    MANAGE_OWN_ACCOUNT = "manage_own_account"  # change password, enrol TOTP, regenerate recovery codes

    # Live watch-list deployments (docs/live.md): a separate legal regime; see LIVE_ROLE_ACTIONS below.
    LIVE_PREPARE = "live_prepare"  # build watch lists from gallery subjects, draft deployments
    LIVE_AUTHORISE = "live_authorise"  # authorise or refuse a deployment (never one's own)
    LIVE_OPERATE = "live_operate"  # start and stop an authorised deployment's cameras
    LIVE_VIEW = "live_view"  # deployments, counts, decisions and reports (no face images)
    LIVE_REVIEW_ALERT = "live_review_alert"  # see alerts and record decisions, only when named on the deployment
    RECORD_CALIBRATION = "record_calibration"  # store an agency's threshold calibration (no biometric content)

    # Lawful gallery and transparency (docs/gallery.md "Lawful gallery", docs/transparency.md); see
    # RECORDS_ROLE_ACTIONS below.
    ADMIN_RECORDS_POLICY = "admin_records_policy"  # legal authority list, destruction criteria, disposition rules
    VIEW_RECORDS_POLICY = "view_records_policy"  # read those lists and the compliance summary (counts only)
    REVIEW_RECORDS = "review_records"  # compliance details, re-attribute records, record dispositions
    RECORD_OUTCOME = "record_outcome"  # sign off the outcome of a released lead
    TRANSPARENCY_REPORT = "transparency_report"  # produce the agency's public transparency report


_A = Action

ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.INVESTIGATOR: frozenset({_A.OPEN_CASE, _A.VIEW_CASE, _A.SUBMIT_EVIDENCE, _A.VIEW_PROBE_IMAGE, _A.VIEW_REPORT}),
    Role.ANALYST: frozenset(
        {
            _A.SEARCH,
            _A.VIEW_GALLERY_IMAGE,
            _A.VIEW_GALLERY_RECORD,
            _A.OPEN_CASE,
            _A.VIEW_CASE,
            _A.SUBMIT_EVIDENCE,
            _A.EDIT_PROBE,
            _A.VIEW_PROBE_IMAGE,
            _A.ADJUDICATE,
            _A.RELEASE_LEAD,
            _A.EXPORT_REPORT,
            _A.VIEW_REPORT,
        }
    ),
    Role.REVIEWER: frozenset(
        {_A.VIEW_GALLERY_IMAGE, _A.VIEW_GALLERY_RECORD, _A.VIEW_CASE, _A.VIEW_PROBE_IMAGE, _A.VERIFY}
    ),
    Role.SUPERVISOR: frozenset(
        {
            _A.VIEW_GALLERY_RECORD,
            _A.OPEN_CASE,
            _A.VIEW_CASE,
            _A.VIEW_PROBE_IMAGE,
            _A.DECIDE_DISAGREEMENT,
            _A.AUTHORISE_EXCEPTION,
            _A.RELEASE_LEAD,
            _A.EXPORT_REPORT,
            _A.VIEW_REPORT,
            _A.VIEW_STATISTICS,
            _A.VIEW_EXAMINER_QA,
            _A.DESTRUCTION_DECIDE,
            _A.VIEW_DESTRUCTION,
            _A.VIEW_USERS,
            _A.APPROVE_ACCESS,
            _A.VIEW_RATIFICATIONS,
        }
    ),
    Role.RECORDS_OFFICER: frozenset(
        {
            _A.ENROL,
            _A.REINDEX,
            _A.VIEW_GALLERY_IMAGE,
            _A.VIEW_GALLERY_RECORD,
            _A.APPLY_RETENTION,
            _A.DESTRUCTION_REQUEST,
            _A.DESTRUCTION_DECIDE,
            _A.DESTRUCTION_EXECUTE,
            _A.VIEW_DESTRUCTION,
        }
    ),
    Role.AUDITOR: frozenset(
        {
            _A.AUDIT_READ,
            _A.AUDIT_EXPORT,
            _A.AUDIT_VERIFY,
            _A.VIEW_STATISTICS,
            _A.VIEW_DESTRUCTION,
            _A.VIEW_RATIFICATIONS,
            _A.VIEW_PARTNER_ACCESS,
        }
    ),
    Role.ADMINISTRATOR: frozenset(
        {
            _A.MANAGE_GALLERY,
            _A.ADMIN_USERS,
            _A.ADMIN_ROLES,
            _A.ADMIN_OFFENCES,
            _A.ADMIN_PURPOSES,
            _A.ADMIN_SETTINGS,
            _A.ADMIN_SHARING,
            _A.ADMIN_REGIMES,
            _A.VIEW_USERS,
            _A.VIEW_PARTNER_ACCESS,
            _A.AUDIT_VERIFY,
            _A.BACKUP,
            _A.RESTORE,
        }
    ),
    Role.TRAINING_OFFICER: frozenset({_A.ADMIN_CERTIFICATIONS, _A.VIEW_USERS}),
    Role.OVERSIGHT: frozenset(
        {
            _A.AUDIT_READ,
            _A.AUDIT_EXPORT,
            _A.AUDIT_VERIFY,
            _A.VIEW_STATISTICS,
            _A.VIEW_RATIFICATIONS,
            _A.VIEW_PARTNER_ACCESS,
        }
    ),
    Role.SYSTEM_OPERATOR: frozenset(
        {_A.ADMIN_AGENCIES, _A.ADMIN_SYSTEM_ROLES, _A.APPROVE_ACCESS_BOOTSTRAP, _A.AUDIT_VERIFY}
    ),
}

# Read-only actions a role holds over *every* agency's resources: oversight reads the audit log, statistics,
# ratifications, partner accesses and transparency reports of all agencies (never anything biometric: see
# BIOMETRIC_ACTIONS).
CROSS_AGENCY_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.OVERSIGHT: frozenset(
        {_A.AUDIT_READ, _A.AUDIT_EXPORT, _A.VIEW_RATIFICATIONS, _A.VIEW_PARTNER_ACCESS, _A.TRANSPARENCY_REPORT}
    ),
}

# --- Live watch-list deployments ------------------------------------------------------------------------------
# Kept in one block so that the live mode's grants read (and can be reviewed) together. No new role: alerts go to the
# officers named on a deployment, who must also hold one of the roles granted LIVE_REVIEW_ALERT (the service checks
# the naming; administrators and auditors never see alert images).
LIVE_ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.SUPERVISOR: frozenset(
        {_A.LIVE_PREPARE, _A.LIVE_AUTHORISE, _A.LIVE_OPERATE, _A.LIVE_VIEW, _A.LIVE_REVIEW_ALERT,
         _A.RECORD_CALIBRATION}
    ),
    Role.ANALYST: frozenset({_A.LIVE_PREPARE, _A.LIVE_OPERATE, _A.LIVE_VIEW, _A.LIVE_REVIEW_ALERT}),
    Role.INVESTIGATOR: frozenset({_A.LIVE_VIEW, _A.LIVE_REVIEW_ALERT}),
    Role.AUDITOR: frozenset({_A.LIVE_VIEW}),
    Role.ADMINISTRATOR: frozenset({_A.RECORD_CALIBRATION}),
}  # fmt: skip
for _role, _extra in LIVE_ROLE_ACTIONS.items():
    ROLE_ACTIONS[_role] = ROLE_ACTIONS[_role] | _extra
LIVE_BIOMETRIC_ACTIONS: frozenset[Action] = frozenset({_A.LIVE_PREPARE, _A.LIVE_REVIEW_ALERT})

# --- Lawful gallery and transparency --------------------------------------------------------------------------
# None of these shows biometric content. The records policy (which legal authorities the agency holds photos under,
# when a disposition leads to destruction, what makes a record eligible for destruction) is administered; records
# officers apply it; the transparency report (aggregate counts, never an image) is produced by supervisors and
# auditors of the agency, and by oversight for any agency or all of them at once (CROSS_AGENCY_ACTIONS above).
RECORDS_ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.ADMINISTRATOR: frozenset({_A.ADMIN_RECORDS_POLICY, _A.VIEW_RECORDS_POLICY}),
    Role.RECORDS_OFFICER: frozenset({_A.VIEW_RECORDS_POLICY, _A.REVIEW_RECORDS}),
    Role.SUPERVISOR: frozenset({_A.VIEW_RECORDS_POLICY, _A.TRANSPARENCY_REPORT}),
    Role.AUDITOR: frozenset({_A.VIEW_RECORDS_POLICY, _A.TRANSPARENCY_REPORT}),
    Role.OVERSIGHT: frozenset({_A.TRANSPARENCY_REPORT}),
    Role.INVESTIGATOR: frozenset({_A.RECORD_OUTCOME}),
}
for _role, _extra in RECORDS_ROLE_ACTIONS.items():
    ROLE_ACTIONS[_role] = ROLE_ACTIONS[_role] | _extra

# Read-only gallery actions that may reach another agency's records, but only those shared with the actor's agency.
SHAREABLE_ACTIONS: frozenset[Action] = frozenset({_A.VIEW_GALLERY_IMAGE, _A.VIEW_GALLERY_RECORD})

# Actions with no owning agency: the resource (agency list, offence list, settings, the whole database, the audit
# chain, aggregate statistics for public reporting) is system-wide.
SYSTEM_ACTIONS: frozenset[Action] = frozenset(
    {
        _A.ADMIN_AGENCIES,
        _A.ADMIN_OFFENCES,
        _A.ADMIN_SETTINGS,
        _A.BACKUP,
        _A.RESTORE,
        _A.AUDIT_VERIFY,
        _A.VIEW_STATISTICS,
        _A.ADMIN_SYSTEM_ROLES,
        _A.APPROVE_ACCESS_BOOTSTRAP,
    }
)

# Actions any signed-in user holds on their own account, whatever their roles.
SELF_SERVICE_ACTIONS: frozenset[Action] = frozenset({_A.MANAGE_OWN_ACCOUNT})

# Actions that show biometric content (face images, gallery records, candidate lists). Kept as a list so that a test
# can prove the administrator and auditor never receive one.
BIOMETRIC_ACTIONS: frozenset[Action] = frozenset(
    {
        _A.SEARCH,
        _A.VIEW_GALLERY_IMAGE,
        _A.VIEW_GALLERY_RECORD,
        _A.VIEW_PROBE_IMAGE,
        _A.EDIT_PROBE,
        _A.ADJUDICATE,
        _A.VERIFY,
        _A.ENROL,
    }
) | LIVE_BIOMETRIC_ACTIONS

# Kept for callers written against the first policy: every action that is neither shareable nor system-wide is
# own-agency-only now.
OWN_AGENCY_ONLY: frozenset[Action] = frozenset(set(Action) - SHAREABLE_ACTIONS - SYSTEM_ACTIONS)


def biometric_roles() -> frozenset[Role]:
    """The roles that reach biometric content (hold an action of :data:`BIOMETRIC_ACTIONS`).

    Granting one of them, or the certification that makes analyst and reviewer effective, needs a second person's
    approval; production mode requires a second factor to sign in with one of them.
    """
    return frozenset(role for role, actions in ROLE_ACTIONS.items() if actions & BIOMETRIC_ACTIONS)


# Roles only a system operator grants (they reach across agencies or the installation itself).
SYSTEM_ROLES: frozenset[Role] = frozenset({Role.SYSTEM_OPERATOR, Role.OVERSIGHT})


def roles_for(action: Action) -> frozenset[Role]:
    """The roles that grant ``action`` (empty for self-service actions, which need no role)."""
    return frozenset(role for role, actions in ROLE_ACTIONS.items() if action in actions)


def allowed(actor: Actor, action: Action, resource_agency_id: int | None = None, *, shared: bool | None = None) -> bool:
    """Whether ``actor`` may perform ``action`` on a resource owned by ``resource_agency_id``.

    ``resource_agency_id`` None means the resource has no owning agency or the caller scopes the query itself
    (e.g. a search runs over the visible galleries only). ``shared`` matters only for a shareable action on another
    agency's resource: True when a sharing agreement in force covers it. False and None (unknown) both refuse: the
    sharing check fails closed.
    """
    if action in SELF_SERVICE_ACTIONS:
        return actor.user_id is not None and (resource_agency_id is None or resource_agency_id == actor.agency_id)
    if not any(action in ROLE_ACTIONS.get(role, frozenset()) for role in actor.roles):
        return False
    if resource_agency_id is None or resource_agency_id == actor.agency_id or action in SYSTEM_ACTIONS:
        return True
    if reads_every_agency(actor, action):
        return True
    if action in SHAREABLE_ACTIONS:
        return shared is True
    return False


def reads_every_agency(actor: Actor, action: Action) -> bool:
    """Whether one of the actor's roles holds ``action`` over every agency (oversight's reads)."""
    return any(action in CROSS_AGENCY_ACTIONS.get(role, frozenset()) for role in actor.roles)


def holds_role_for(actor: Actor, action: Action) -> bool:
    """Whether one of the actor's roles grants ``action`` (the role part of the decision, without agency scope)."""
    if action in SELF_SERVICE_ACTIONS:
        return actor.user_id is not None
    return any(action in ROLE_ACTIONS.get(role, frozenset()) for role in actor.roles)


def explain(
    actor: Actor, action: Action, resource_agency_id: int | None = None, *, shared: bool | None = None
) -> str | None:
    """Why the policy refuses (a sentence for the user), or None when it allows."""
    if allowed(actor, action, resource_agency_id, shared=shared):
        return None
    verb = action.value.replace("_", " ")
    who = f"user {actor.username!r} (roles: {', '.join(sorted(actor.roles)) or 'none'})"
    if action in SELF_SERVICE_ACTIONS:
        return f"{who} may only manage their own account"
    granting = roles_for(action)
    if not actor.roles & granting:
        return f"{who} may not {verb}: it needs one of the roles {', '.join(sorted(granting))}"
    if action in SHAREABLE_ACTIONS:
        return (
            f"{who} may not {verb} on agency {resource_agency_id}'s records: "
            f"they are not shared with agency {actor.agency_id}"
        )
    return f"{who} may not {verb} on agency {resource_agency_id}'s records (own agency only)"


def require(actor: Actor, action: Action, resource_agency_id: int | None = None, *, shared: bool | None = None) -> None:
    """Raise :class:`PermissionDenied` unless the policy allows the action."""
    reason = explain(actor, action, resource_agency_id, shared=shared)
    if reason is not None:
        raise PermissionDenied(reason)


def enforce(
    session_factory: sessionmaker[Session],
    actor: Actor,
    action: Action,
    object_ref: str,
    resource_agency_id: int | None = None,
    *,
    shared: bool | None = None,
    case: str | None = None,
    purpose: str | None = None,
    not_found: str | None = None,
) -> None:
    """:func:`require`, and when it refuses, record the refusal in the audit log in its own transaction.

    Call it before opening the transaction of the action itself: the denial entry is committed even though the
    action never happens. With ``not_found`` (the caller's message for a missing record), a refusal because the
    record belongs to another agency raises :class:`NotFound` with that message instead of
    :class:`PermissionDenied`, so that ids of other agencies cannot be told from missing ones; a refusal for
    lack of a role stays a PermissionDenied (it says nothing about the record).
    """
    reason = explain(actor, action, resource_agency_id, shared=shared)
    if reason is None:
        return
    audit.record_now(
        session_factory,
        actor,
        action.value,
        object_ref,
        audit.Outcome.DENIED,
        case=case,
        purpose=purpose,
        details={"reason": reason[:500], "resource_agency_id": resource_agency_id},
    )
    if not_found is not None and holds_role_for(actor, action):
        raise NotFound(not_found)
    raise PermissionDenied(reason)
