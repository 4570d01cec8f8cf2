"""Look-alike identifiers: one normal form and alphabet per kind, enforced by the domain services for every entry
point (CLI, REST API and web pages call the same services)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from faceleads import identifiers
from faceleads.casework import admin, cases
from faceleads.config import Settings
from faceleads.core.actor import Actor, Role
from faceleads.errors import NotFound, ValidationError
from faceleads.gallery.enrolment import RecordInput
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.security import users
from tests.security.identity_helpers import PASSWORD, add_agency

LOOK_ALIKES = [
    "DEV/2026/\u200b4",  # zero-width space
    "DEV/2026/4\u202e",  # right-to-left override
    "DEV/2026/\u20604",  # word joiner
    "DEV/2026/\u00ad4",  # soft hyphen
    "DEV/2026/4\x00",  # NUL
    "DEV/2026/4\r\nX",  # CR/LF
    "DEV/2026/\ufeff4",  # zero-width no-break space (BOM)
    "DEV/2026/\u0410",  # Cyrillic A (looks like Latin A)
]


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[GalleryRuntime]:
    runtime = GalleryRuntime(Settings(data_dir=tmp_path / "data"))
    yield runtime
    runtime.close()


def _actors(rt: GalleryRuntime) -> tuple[Actor, Actor]:
    agency = add_agency(rt.session_factory, "DEV")
    adm = Actor("adm", agency, frozenset({Role.ADMINISTRATOR}), None, "DEV")
    investigator = Actor("inv", agency, frozenset({Role.INVESTIGATOR}), None, "DEV")
    admin.add_offence(rt, adm, "ROB", "Robbery", "serious")
    return adm, investigator


def test_a_look_alike_occurrence_number_is_not_a_second_case(rt: GalleryRuntime) -> None:
    _, investigator = _actors(rt)
    first = cases.open_case(rt, investigator, "DEV/2026/4", "ROB", "armed robbery at the post office")
    with pytest.raises(ValidationError, match=r"U\+200B ZERO WIDTH SPACE"):
        cases.open_case(rt, investigator, "DEV/2026/\u200b4", "ROB", "the same robbery, typed again")
    for variant in LOOK_ALIKES:
        with pytest.raises(ValidationError):
            cases.open_case(rt, investigator, variant, "ROB", "look-alike")
    # Compatibility forms normalise onto the one case instead of making another.
    with pytest.raises(ValidationError, match="already used"):
        cases.open_case(rt, investigator, "ＤＥＶ／２０２６／４", "ROB", "full-width digits")
    with pytest.raises(ValidationError, match="already used"):
        cases.open_case(rt, investigator, " DEV/2026/4\u00a0", "ROB", "no-break space around")
    assert cases.find_case(rt, investigator, "ＤＥＶ/2026/４").id == first.id
    assert [c.occurrence_number for c in cases.list_cases(rt, investigator)] == ["DEV/2026/4"]
    with pytest.raises(ValidationError, match="ZERO WIDTH"):
        cases.find_case(rt, investigator, "DEV/2026/\u200b4")
    with pytest.raises(NotFound):
        cases.find_case(rt, investigator, "DEV/2026/5")


def test_booking_and_subject_numbers_follow_the_same_rules() -> None:
    authority = "Custody Records Act s.12"
    assert RecordInput("Ｓ１", " B 1 ", date(2020, 1, 1), authority).subject_number == "S1"
    assert RecordInput("S1", "B  1", date(2020, 1, 1), authority).booking_number == "B 1"
    for bad in ("B\u200b1", "B1\n", "B\x001", "B\u202e1", "=B1"):
        with pytest.raises(ValidationError, match="booking number"):
            RecordInput("S1", bad, date(2020, 1, 1), authority)
        with pytest.raises(ValidationError, match="subject number"):
            RecordInput(bad, "B1", date(2020, 1, 1), authority)


def test_usernames_agency_and_offence_codes(rt: GalleryRuntime) -> None:
    adm, _ = _actors(rt)
    with pytest.raises(ValidationError, match="username"):
        users.create_user(rt.session_factory, adm, "DEV", "alice\n", PASSWORD)
    with pytest.raises(ValidationError, match="username"):
        users.create_user(rt.session_factory, adm, "DEV", "al\u200bice", PASSWORD)
    users.create_user(rt.session_factory, adm, "ｄｅｖ", "alice", PASSWORD)  # full-width agency code: DEV
    with pytest.raises(ValidationError, match="already taken"):
        users.create_user(rt.session_factory, adm, "DEV", "ａｌｉｃｅ", PASSWORD)
    operator = Actor("op", adm.agency_id, frozenset({Role.SYSTEM_OPERATOR}), None, "DEV")
    with pytest.raises(ValidationError, match="agency code"):
        users.create_agency(rt.session_factory, operator, "CTY\u200b", "County", admin_username="cty-admin",
                            admin_password=PASSWORD)  # fmt: skip
    with pytest.raises(ValidationError, match="offence code"):
        admin.add_offence(rt, adm, "ROB\u200b", "Robbery again", "serious")
    with pytest.raises(ValidationError, match="already on the list"):
        admin.add_offence(rt, adm, "ＲＯＢ", "Robbery again", "serious")


@pytest.mark.parametrize("kind", list(identifiers.Kind))
def test_normal_form_is_idempotent(kind: identifiers.Kind) -> None:
    samples = {"username": "ａｌｉｃｅ.b", "agency code": " ｍｅｔ-1 ", "offence code": "Ｒ1-2", "purpose code": "ｃｉ"}
    sample = samples.get(kind.value, "  Ａ1  2 ")
    once = identifiers.normalise(kind, sample)
    assert identifiers.normalise(kind, once) == once


def test_free_text_keeps_wording_but_refuses_controls_and_direction_overrides() -> None:
    assert identifiers.free_text("line one\r\nline two\tend ﬁ", "note") == "line one\nline two\tend ﬁ"
    for bad in ("a\x00b", "a\x1bb", "invoice \u202egnp.exe"):
        with pytest.raises(ValidationError, match="note contains"):
            identifiers.free_text(bad, "note")
