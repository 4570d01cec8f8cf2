"""Table-driven proof of the central policy: every action x every role x agency scope, allow or deny.

The expected table is written out here independently of ``ROLE_ACTIONS``, so that a change to the policy that is
not also a deliberate change to this table fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from faceleads.core.actor import Actor, Role
from faceleads.core.audit import AuditEntry, verify_chain
from faceleads.core.policy import Action, allowed, enforce, explain, require
from faceleads.errors import NotFound, PermissionDenied
from tests.security.identity_helpers import make_factory

OWN, OTHER = 1, 2

EXPECTED: dict[Role, set[str]] = {
    Role.INVESTIGATOR: {"open_case", "view_case", "submit_evidence", "view_probe_image", "view_report"},
    Role.ANALYST: {
        "search", "view_gallery_image", "view_gallery_record", "open_case", "view_case", "submit_evidence",
        "edit_probe", "view_probe_image", "adjudicate", "release_lead", "export_report", "view_report",
    },
    Role.REVIEWER: {"view_gallery_image", "view_gallery_record", "view_case", "view_probe_image", "verify"},
    Role.SUPERVISOR: {
        "view_gallery_record", "open_case", "view_case", "view_probe_image", "decide_disagreement",
        "authorise_exception", "release_lead", "export_report", "view_report", "view_statistics",
        "view_examiner_qa", "destruction_decide", "view_destruction", "view_users", "approve_access",
        "view_ratifications",
    },
    Role.RECORDS_OFFICER: {
        "enrol", "reindex", "view_gallery_image", "view_gallery_record", "apply_retention", "destruction_request",
        "destruction_decide", "destruction_execute", "view_destruction",
    },
    Role.AUDITOR: {"audit_read", "audit_export", "audit_verify", "view_statistics", "view_destruction",
                   "view_ratifications", "view_partner_access"},
    Role.ADMINISTRATOR: {
        "manage_gallery", "admin_users", "admin_roles", "admin_offences", "admin_purposes", "admin_settings",
        "admin_sharing", "admin_regimes", "view_users", "view_partner_access", "audit_verify", "backup", "restore",
    },
    Role.TRAINING_OFFICER: {"admin_certifications", "view_users"},
    Role.OVERSIGHT: {"audit_read", "audit_export", "audit_verify", "view_statistics", "view_ratifications",
                     "view_partner_access"},
    Role.SYSTEM_OPERATOR: {"admin_agencies", "admin_system_roles", "approve_access_bootstrap", "audit_verify"},
}  # fmt: skip

# Live watch-list deployments (docs/live.md), written out independently of LIVE_ROLE_ACTIONS.
LIVE_EXPECTED: dict[Role, set[str]] = {
    Role.SUPERVISOR: {"live_prepare", "live_authorise", "live_operate", "live_view", "live_review_alert",
                      "record_calibration"},
    Role.ANALYST: {"live_prepare", "live_operate", "live_view", "live_review_alert"},
    Role.INVESTIGATOR: {"live_view", "live_review_alert"},
    Role.AUDITOR: {"live_view"},
    Role.ADMINISTRATOR: {"record_calibration"},
}  # fmt: skip
for _role, _live in LIVE_EXPECTED.items():
    EXPECTED[_role] = EXPECTED[_role] | _live

# Lawful gallery and transparency (docs/gallery.md, docs/transparency.md), independently of RECORDS_ROLE_ACTIONS.
RECORDS_EXPECTED: dict[Role, set[str]] = {
    Role.ADMINISTRATOR: {"admin_records_policy", "view_records_policy"},
    Role.RECORDS_OFFICER: {"view_records_policy", "review_records"},
    Role.SUPERVISOR: {"view_records_policy", "transparency_report"},
    Role.AUDITOR: {"view_records_policy", "transparency_report"},
    Role.OVERSIGHT: {"transparency_report"},
    Role.INVESTIGATOR: {"record_outcome"},
}
for _role, _records in RECORDS_EXPECTED.items():
    EXPECTED[_role] = EXPECTED[_role] | _records

# No owning agency: allowed whatever the resource's agency.
SYSTEM_WIDE = {
    "admin_agencies", "admin_offences", "admin_settings", "backup", "restore", "audit_verify", "view_statistics",
    "admin_system_roles", "approve_access_bootstrap",
}  # fmt: skip
# Read-only actions a role holds over every agency (oversight).
CROSS_AGENCY = {Role.OVERSIGHT: {"audit_read", "audit_export", "view_ratifications", "view_partner_access",
                                 "transparency_report"}}
# Reaches another agency's records only through a sharing agreement.
SHAREABLE = {"view_gallery_image", "view_gallery_record"}
SELF_SERVICE = {"manage_own_account"}
# Anything that displays a face, a template or a candidate list.
BIOMETRIC = {"search", "view_gallery_image", "view_gallery_record", "view_probe_image", "edit_probe", "adjudicate",
             "verify", "enrol", "live_prepare", "live_review_alert"}  # fmt: skip
READ_ONLY = {"audit_read", "audit_export", "audit_verify", "view_statistics", "view_destruction", "live_view",
             "view_records_policy", "transparency_report", "view_ratifications", "view_partner_access"}  # fmt: skip

CASES = [(action, role) for action in Action for role in Role]


def actor_with(*roles: Role, user_id: int | None = 7, agency_id: int = OWN) -> Actor:
    return Actor(username="u", agency_id=agency_id, roles=frozenset(roles), user_id=user_id, agency_code="A")


def test_table_covers_every_action() -> None:
    every = {a.value for a in Action}
    granted = set().union(*EXPECTED.values()) | SELF_SERVICE
    assert every == granted, f"actions missing from the test table: {every - granted}; unknown: {granted - every}"


@pytest.mark.parametrize(("action", "role"), CASES, ids=[f"{a.value}-{r.value}" for a, r in CASES])
def test_action_role_matrix(action: Action, role: Role) -> None:
    actor = actor_with(role)
    if action.value in SELF_SERVICE:
        assert allowed(actor, action)
        assert allowed(actor, action, OWN)
        assert not allowed(actor, action, OTHER)
        return
    granted = action.value in EXPECTED[role]
    everywhere = SYSTEM_WIDE | CROSS_AGENCY.get(role, set())
    # Own agency, and no owning agency: the role alone decides.
    assert allowed(actor, action, OWN) is granted
    assert allowed(actor, action) is granted
    # Cross-agency, nothing shared: only system-wide actions (and oversight's reads) pass.
    assert allowed(actor, action, OTHER, shared=False) is (granted and action.value in everywhere)
    # Cross-agency, shared with the actor's agency: also the shareable reads.
    assert allowed(actor, action, OTHER, shared=True) is (granted and action.value in everywhere | SHAREABLE)
    if granted and action.value not in everywhere | SHAREABLE:
        with pytest.raises(PermissionDenied, match="own agency only"):
            require(actor, action, OTHER)
    if not granted:
        with pytest.raises(PermissionDenied, match="needs one of the roles"):
            require(actor, action, OWN)


def test_the_sharing_check_fails_closed() -> None:
    """Another agency's record is readable only when the caller established that it is shared: unknown is no."""
    analyst = actor_with(Role.ANALYST)
    assert not allowed(analyst, Action.VIEW_GALLERY_IMAGE, OTHER)
    assert not allowed(analyst, Action.VIEW_GALLERY_IMAGE, OTHER, shared=None)
    assert not allowed(analyst, Action.VIEW_GALLERY_IMAGE, OTHER, shared=False)
    assert allowed(analyst, Action.VIEW_GALLERY_IMAGE, OTHER, shared=True)
    assert allowed(analyst, Action.VIEW_GALLERY_IMAGE, OWN)  # own records need no sharing decision
    assert not allowed(analyst, Action.ENROL, OTHER, shared=True)  # sharing never grants writes
    assert not allowed(actor_with(Role.RECORDS_OFFICER), Action.DESTRUCTION_EXECUTE, OTHER, shared=True)


def test_roles_combine() -> None:
    both = actor_with(Role.ANALYST, Role.AUDITOR)
    assert allowed(both, Action.SEARCH) and allowed(both, Action.AUDIT_EXPORT)
    assert not allowed(both, Action.ADMIN_USERS)


def test_no_roles_and_system_actor() -> None:
    nobody = actor_with()
    assert not any(allowed(nobody, a) for a in Action if a.value not in SELF_SERVICE)
    system = actor_with(Role.ADMINISTRATOR, user_id=None)
    assert not allowed(system, Action.MANAGE_OWN_ACCOUNT)  # the system has no account to manage


def test_administrator_and_auditor_never_see_biometric_content() -> None:
    assert not EXPECTED[Role.ADMINISTRATOR] & BIOMETRIC
    assert not EXPECTED[Role.AUDITOR] & BIOMETRIC
    assert EXPECTED[Role.AUDITOR] <= READ_ONLY
    for action in Action:
        if action.value in BIOMETRIC:
            assert not allowed(actor_with(Role.ADMINISTRATOR), action, OWN)
            assert not allowed(actor_with(Role.AUDITOR), action, OWN)


@pytest.mark.parametrize("role", [Role.OVERSIGHT, Role.SYSTEM_OPERATOR, Role.TRAINING_OFFICER])
def test_new_roles_never_see_biometric_content_in_any_agency(role: Role) -> None:
    """Oversight reads every agency's audit log and statistics, never an image, a record or a template; neither does
    the system operator or the training officer, in their own agency or any other, shared or not."""
    assert not EXPECTED[role] & BIOMETRIC
    actor = actor_with(role)
    for action in Action:
        if action.value in BIOMETRIC:
            for agency, shared in ((OWN, None), (OTHER, True), (OTHER, False), (None, None)):
                assert not allowed(actor, action, agency, shared=shared), (role, action, agency)
    assert EXPECTED[Role.OVERSIGHT] <= READ_ONLY


def test_biometric_roles_are_the_ones_needing_a_second_person() -> None:
    from faceleads.core.policy import biometric_roles

    assert biometric_roles() == {Role.INVESTIGATOR, Role.ANALYST, Role.REVIEWER, Role.SUPERVISOR,
                                 Role.RECORDS_OFFICER}  # fmt: skip
    assert {r for r, actions in EXPECTED.items() if actions & BIOMETRIC} == biometric_roles()


def test_oversight_reads_every_agency_but_an_auditor_only_its_own() -> None:
    oversight, auditor = actor_with(Role.OVERSIGHT), actor_with(Role.AUDITOR)
    for action in (Action.AUDIT_READ, Action.AUDIT_EXPORT, Action.VIEW_RATIFICATIONS, Action.VIEW_PARTNER_ACCESS,
                   Action.TRANSPARENCY_REPORT):
        assert allowed(oversight, action, OTHER) and allowed(oversight, action, OWN)
        assert allowed(auditor, action, OWN) and not allowed(auditor, action, OTHER)
    assert not allowed(oversight, Action.VIEW_DESTRUCTION, OWN)  # nothing beyond its reads
    assert not allowed(oversight, Action.VIEW_RECORDS_POLICY, OWN)


def test_explain_names_the_problem() -> None:
    reason = explain(actor_with(Role.INVESTIGATOR), Action.SEARCH)
    assert reason is not None and "analyst" in reason and "investigator" in reason
    reason = explain(actor_with(Role.ANALYST), Action.VIEW_GALLERY_IMAGE, OTHER, shared=False)
    assert reason is not None and "not shared" in reason
    assert explain(actor_with(Role.ANALYST), Action.SEARCH) is None


def test_enforce_audits_a_refusal_in_its_own_transaction(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    admin = actor_with(Role.ADMINISTRATOR)
    with pytest.raises(PermissionDenied):
        enforce(factory, admin, Action.VIEW_GALLERY_IMAGE, "image:42", OWN, case="OCC-1")
    enforce(factory, actor_with(Role.ANALYST), Action.SEARCH, "case:OCC-1")  # allowed: nothing recorded
    with factory() as session:
        entries = list(session.scalars(select(AuditEntry)))
        assert [(e.action, e.object_ref, e.outcome, e.case_ref) for e in entries] == [
            ("view_gallery_image", "image:42", "denied", "OCC-1")
        ]
        assert "needs one of the roles" in str(entries[0].details["reason"])
        assert verify_chain(session).ok


def test_enforce_answers_another_agencys_record_like_a_missing_one(tmp_path: Path) -> None:
    """With ``not_found``, a refusal for agency scope is a NotFound (404) carrying the missing-record message, and
    it is still audited; a refusal for lack of a role stays a PermissionDenied (it says nothing about the record)."""
    factory = make_factory(tmp_path)
    analyst = actor_with(Role.ANALYST)
    with pytest.raises(NotFound, match=r"^no case 9$"):
        enforce(factory, analyst, Action.VIEW_CASE, "case:9", OTHER, not_found="no case 9")
    with pytest.raises(NotFound, match=r"^no image 4$"):
        enforce(factory, analyst, Action.VIEW_GALLERY_IMAGE, "image:4", OTHER, shared=None, not_found="no image 4")
    with pytest.raises(PermissionDenied):
        enforce(factory, actor_with(Role.AUDITOR), Action.VIEW_CASE, "case:9", OTHER, not_found="no case 9")
    with factory() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        assert [(e.action, e.object_ref, e.outcome) for e in entries] == [
            ("view_case", "case:9", "denied"),
            ("view_gallery_image", "image:4", "denied"),
            ("view_case", "case:9", "denied"),
        ]  # fmt: skip

