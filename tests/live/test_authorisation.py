"""Authorisation rules of live deployments and watch lists (each refusal named and audited)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from faceleads.core.audit import AuditEntry
from faceleads.db import utcnow
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.live import deployments as d
from faceleads.live import watchlists
from tests.live.conftest import LiveEnv
from tests.live.helpers import deployment_input


def denials(env: LiveEnv, action: str) -> int:
    with env.rt.session_factory() as session:
        return len(session.scalars(select(AuditEntry).where(AuditEntry.action == action,
                                                            AuditEntry.outcome == "denied")).all())  # fmt: skip


def test_prepared_deployment_shows_expected_false_alert_rate(live_env: LiveEnv) -> None:
    info = d.create_deployment(live_env.rt, live_env.actors["analyst"], deployment_input(live_env))
    assert info.status == "draft"
    assert info.usable_entries == len(live_env.listed)
    assert info.expected is not None
    assert info.expected.templates == len(live_env.listed)
    assert info.expected.comparisons_per_face == len(live_env.listed) * live_env.settings.live_embeds_per_track
    assert "false alert" in info.expected.sentence()
    # A lower threshold can only expect more false alerts.
    low = d.expected_for(live_env.rt, live_env.actors["analyst"], live_env.watchlist_id, 0.10)
    high = d.expected_for(live_env.rt, live_env.actors["analyst"], live_env.watchlist_id, 0.60)
    assert low is not None and high is not None
    assert low.false_alerts_per_1000 >= info.expected.false_alerts_per_1000 >= high.false_alerts_per_1000
    assert low.false_alerts_per_1000 > high.false_alerts_per_1000


def test_self_authorisation_is_refused(live_env: LiveEnv) -> None:
    info = d.create_deployment(live_env.rt, live_env.actors["sup1"], deployment_input(live_env))
    before = denials(live_env, "live_authorise")
    with pytest.raises(PermissionDenied, match="user who prepared it"):
        d.authorise_deployment(live_env.rt, live_env.actors["sup1"], info.id)
    assert denials(live_env, "live_authorise") == before + 1
    done = d.authorise_deployment(live_env.rt, live_env.actors["sup2"], info.id, "ok")
    assert done.status == "authorised" and done.authorised_by == "sup2"
    assert done.regime == "live_deployment" and done.expires_at == done.end_at and done.scope
    assert done.expected_false_alerts_per_1000 is not None and done.calibration_id is not None


@pytest.mark.parametrize("who", ["analyst", "officer", "auditor", "admin", "records"])
def test_only_supervisors_authorise(live_env: LiveEnv, who: str) -> None:
    info = d.create_deployment(live_env.rt, live_env.actors["analyst"], deployment_input(live_env))
    with pytest.raises(PermissionDenied, match="live authorise"):
        d.authorise_deployment(live_env.rt, live_env.actors[who], info.id)


def test_supervisor_of_another_agency_cannot_authorise(live_env: LiveEnv) -> None:
    info = d.create_deployment(live_env.rt, live_env.actors["analyst"], deployment_input(live_env))
    with pytest.raises(NotFound):
        d.authorise_deployment(live_env.rt, live_env.actors["sup-b"], info.id)


def test_duration_over_the_maximum_is_refused(live_env: LiveEnv) -> None:
    now = utcnow()
    with pytest.raises(ValidationError, match="at most 6 h"):
        d.create_deployment(live_env.rt, live_env.actors["analyst"],
                            deployment_input(live_env, start_at=now, end_at=now + timedelta(hours=6, minutes=1)))
    d.create_deployment(live_env.rt, live_env.actors["analyst"],  # exactly the maximum is allowed
                        deployment_input(live_env, start_at=now, end_at=now + timedelta(hours=6)))
    # The maximum is configurable, and checked again at authorisation.
    info = d.create_deployment(live_env.rt, live_env.actors["analyst"],
                               deployment_input(live_env, start_at=now, end_at=now + timedelta(hours=3)))
    live_env.settings.live_max_hours = 2.0
    try:
        with pytest.raises(PermissionDenied, match="at most 2 h"):
            d.authorise_deployment(live_env.rt, live_env.actors["sup1"], info.id)
    finally:
        live_env.settings.live_max_hours = 6.0  # fmt: skip


def test_signage_must_be_confirmed_before_authorisation(live_env: LiveEnv) -> None:
    info = d.create_deployment(live_env.rt, live_env.actors["analyst"],
                               deployment_input(live_env, signage_confirmed=False, signage_note=""))
    with pytest.raises(PermissionDenied, match="signage"):
        d.authorise_deployment(live_env.rt, live_env.actors["sup1"], info.id)
    d.confirm_signage(live_env.rt, live_env.actors["analyst"], info.id, "signs at both ends of the street")
    assert d.authorise_deployment(live_env.rt, live_env.actors["sup1"], info.id).status == "authorised"


def test_other_rules_of_preparation(live_env: LiveEnv) -> None:
    rt, analyst, now = live_env.rt, live_env.actors["analyst"], utcnow()
    with pytest.raises(ValidationError, match="end after it starts"):
        d.create_deployment(rt, analyst, deployment_input(live_env, start_at=now, end_at=now))
    with pytest.raises(ValidationError, match="already passed"):
        d.create_deployment(rt, analyst, deployment_input(live_env, start_at=now - timedelta(hours=2),
                                                          end_at=now - timedelta(hours=1)))  # fmt: skip
    with pytest.raises(ValidationError, match="not an active user"):
        d.create_deployment(rt, analyst, deployment_input(live_env, officers=["nobody"]))
    with pytest.raises(ValidationError, match="none of the roles"):
        d.create_deployment(rt, analyst, deployment_input(live_env, officers=["auditor"]))
    with pytest.raises(ValidationError, match="not an active user"):  # another agency's user
        d.create_deployment(rt, analyst, deployment_input(live_env, officers=["sup-b"]))
    with pytest.raises(ValidationError, match="scheme 'ftp'"):
        d.create_deployment(rt, analyst, deployment_input(live_env, cameras=[d.CameraInput("c", "ftp://x/y")]))
    with pytest.raises(ValidationError, match="threshold"):
        d.create_deployment(rt, analyst, deployment_input(live_env, threshold=1.5))
    with pytest.raises(PermissionDenied):
        d.create_deployment(rt, live_env.actors["officer"], deployment_input(live_env))


def test_watch_list_from_another_agencys_unshared_gallery_is_refused(live_env: LiveEnv) -> None:
    rt, analyst = live_env.rt, live_env.actors["analyst"]
    wl = watchlists.create_watchlist(rt, analyst, "cross-agency")
    expires = utcnow() + timedelta(days=1)
    before = denials(live_env, "view_gallery_record")
    with pytest.raises(PermissionDenied, match="not shared"):
        watchlists.add_entry(rt, analyst, wl.id, "B-001", "W-1", expires, agency_code="AGB")
    assert denials(live_env, "view_gallery_record") == before + 1
    # Shared with AGA for live watch lists by an agreement in force: allowed.
    entry = watchlists.add_entry(rt, analyst, wl.id, "B-002", "W-2", expires, agency_code="AGB")
    assert entry.agency == "AGB" and entry.state == "usable"


def test_own_gallery_not_held_for_live_use_is_refused(live_env: LiveEnv) -> None:
    from datetime import date

    from faceleads.core.actor import Actor, Role
    from faceleads.gallery.enrolment import RecordInput, enrol_record
    from faceleads.gallery.galleries import create_gallery

    rt = live_env.rt
    create_gallery(rt, live_env.actors["admin"], "investigations-only", "PACE s.64A", ["criminal-investigation"])
    records = Actor("records", live_env.agencies["AGA"], frozenset({Role.RECORDS_OFFICER}), None, "AGA")
    photo = next(iter(live_env.photos.values()))[0]
    enrol_record(rt, records, RecordInput("AGA-INV-1", "AGA-INV-B1", date(2021, 1, 2), "PACE",
                                          gallery="investigations-only"), [photo])  # fmt: skip
    wl = watchlists.create_watchlist(rt, live_env.actors["analyst"], "own-not-live")
    with pytest.raises(PermissionDenied, match="live-watchlist"):
        watchlists.add_entry(rt, live_env.actors["analyst"], wl.id, "AGA-INV-1", "W-3", utcnow() + timedelta(days=1))


def test_entry_rules(live_env: LiveEnv) -> None:
    rt, analyst = live_env.rt, live_env.actors["analyst"]
    wl = watchlists.create_watchlist(rt, analyst, "entry rules")
    number = next(iter(live_env.listed.values()))
    with pytest.raises(ValidationError, match="expiry must be in the future"):
        watchlists.add_entry(rt, analyst, wl.id, number, "W", utcnow() - timedelta(minutes=1))
    with pytest.raises(ValidationError, match="reason"):
        watchlists.add_entry(rt, analyst, wl.id, number, "  ", utcnow() + timedelta(days=1))
    watchlists.add_entry(rt, analyst, wl.id, number, "W", utcnow() + timedelta(days=1))
    with pytest.raises(ValidationError, match="already on"):
        watchlists.add_entry(rt, analyst, wl.id, number, "W", utcnow() + timedelta(days=1))
    with pytest.raises(NotFound):
        watchlists.add_entry(rt, analyst, wl.id, "NO-SUCH", "W", utcnow() + timedelta(days=1))
    with pytest.raises(PermissionDenied):
        watchlists.add_entry(rt, live_env.actors["officer"], wl.id, number, "W", utcnow() + timedelta(days=1))
    with pytest.raises(NotFound):  # another agency's list is invisible
        watchlists.get_watchlist(rt, live_env.actors["sup-b"], wl.id)


def test_empty_list_cannot_be_authorised(live_env: LiveEnv) -> None:
    empty = watchlists.create_watchlist(live_env.rt, live_env.actors["analyst"], "empty")
    info = d.create_deployment(live_env.rt, live_env.actors["analyst"],
                               deployment_input(live_env, watchlist_id=empty.id))
    with pytest.raises(ValidationError, match="no usable entry"):
        d.authorise_deployment(live_env.rt, live_env.actors["sup1"], info.id)
