"""ANSI/NIST-ITL enrolment: real transactions built with nistitl around real LFW JPEGs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import nistitl
from sqlalchemy import select
from typer.testing import CliRunner

from faceleads.cli.context import cli_actor
from faceleads.gallery.models import Encounter, FaceTemplate, Image, Subject
from faceleads.gallery.nist import enrol_nist
from tests.gallery.conftest import lfw_identities
from tests.lawful import search_on_case

PEOPLE = lfw_identities()


def make_transaction(
    path: Path,
    *,
    sid: str,
    oca: str,
    doa: str,
    photos: list[Path],
    sex: str = "M",
    dob: str = "19700412",
    race: str = "W",
    extra_smt: bool = False,
) -> Path:
    """A booking transaction: Type-1, one Type-2 with EBTS-style fields, one Type-10 FACE record per photo."""
    msg = nistitl.Message()
    msg.TOT = "CAR"
    msg[0].DAT = doa
    msg[0].ORI = "MET000001"
    msg[0].TCN = f"TCN-{oca}"
    r2 = nistitl.AsciiRecord(2)
    r2.IDC = 0
    for tag, value in ((9, oca), (15, sid), (22, dob), (24, sex), (25, race), (45, doa), (47, "BURGLARY")):
        r2 += nistitl.Field(2, tag, value)
    msg += r2
    for i, photo in enumerate(photos, start=1):
        r10 = nistitl.AsciiRecord(10)
        r10.IDC = i
        r10.IMT = "FACE"
        r10.SRC = "MET000001"
        r10.PHD = doa
        r10.CGA = "JPEGB"
        r10.DATA = photo.read_bytes()
        msg += r10
    if extra_smt:  # a tattoo photo: Type-10 but not a face, must be ignored
        r10 = nistitl.AsciiRecord(10)
        r10.IDC = len(photos) + 1
        r10.IMT = "TATTOO"
        r10.DATA = photos[0].read_bytes()
        msg += r10
    path.write_bytes(msg.NIST)
    return path


def test_nist_transaction_enrols_record_and_faces(rt, tmp_path) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    gul = PEOPLE["Abdullah_Gul"]
    one = make_transaction(
        tmp_path / "a.eft", sid="SID-1", oca="BK-100", doa="20200417", photos=gul[:2], extra_smt=True
    )
    two = make_transaction(
        tmp_path / "b.eft",
        sid="SID-2",
        oca="BK-200",
        doa="20210105",
        sex="F",
        photos=[PEOPLE["AJ_Cook"][0]],
        race="A",
    )
    junk = tmp_path / "junk.eft"
    junk.write_bytes(b"1.001:99\x1d this is not a transaction")
    report = enrol_nist(rt, actor, [one, two, junk], authority="Booking Act s.3", workers=0)
    assert (report.total, report.enrolled, report.errors) == (4, 3, 1)
    assert "not a valid ANSI/NIST-ITL transaction" in report.error_rows[0]["reason"]
    assert report.error_rows[0]["photo"] == "junk.eft"
    with rt.session_factory() as session:
        subject = session.scalars(select(Subject).where(Subject.subject_number == "SID-1")).one()
        assert (subject.sex, subject.birth_year, subject.population_group) == ("M", 1970, "W")
        encounter = session.scalars(select(Encounter).where(Encounter.subject_id == subject.id)).one()
        assert (encounter.booking_number, encounter.booking_date, encounter.charge) == (
            "BK-100",
            date(2020, 4, 17),
            "BURGLARY",
        )
        assert encounter.legal_authority == "Booking Act s.3"
        images = session.scalars(select(Image).where(Image.subject_id == subject.id)).all()
        assert len(images) == 2 and {i.source for i in images} == {"a.eft#10.1", "a.eft#10.2"}
        assert all(i.capture_date == date(2020, 4, 17) for i in images)
        assert {i.sha256 for i in images} == {__import__("hashlib").sha256(p.read_bytes()).hexdigest() for p in gul[:2]}
        assert session.scalars(select(FaceTemplate).where(FaceTemplate.subject_id == subject.id)).all()
    result = search_on_case(rt, actor, gul[2], case="C-1", offence="BUR", reason="suspect photo", top=2)
    assert result.candidates[0].subject_number == "SID-1"
    # Re-running the same files is a no-op.
    again = enrol_nist(rt, actor, [one, two, junk], authority="Booking Act s.3", workers=0)
    assert again.processed_this_run == 1 and again.enrolled == 3  # only the bad file is retried


def test_nist_cli(rt, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from faceleads.cli import context
    from faceleads.cli.main import app

    monkeypatch.setattr(context, "_runtime", rt)
    nist = make_transaction(
        tmp_path / "c.an2", sid="SID-9", oca="BK-9", doa="20190101", photos=[PEOPLE["Aaron_Peirsol"][0]]
    )
    out = CliRunner().invoke(
        app,
        ["enroll", "nist", str(nist), "--authority", "Act", "--workers", "1", "--agency", "MET", "--json"],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert (data["enrolled"], data["errors"]) == (1, 0)


def test_nist_cli_exit_code_tells_failure(rt, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A batch where every file failed must not exit 0 (scripts would take it for a success); a partial failure
    has its own documented code."""
    from faceleads.cli import context
    from faceleads.cli.main import app

    monkeypatch.setattr(context, "_runtime", rt)
    junk = tmp_path / "junk.an2"
    junk.write_bytes(b"this is not an ANSI/NIST transaction")
    missing = tmp_path / "missing.an2"
    args = ["enroll", "nist", "--authority", "Act", "--workers", "0", "--agency", "MET", "--json"]
    failed = CliRunner().invoke(app, [*args, str(junk), str(missing)])
    assert failed.exit_code == 1, failed.output
    assert json.loads(failed.stdout)["errors"] == 2
    good = make_transaction(
        tmp_path / "g.an2", sid="SID-8", oca="BK-8", doa="20190101", photos=[PEOPLE["Aaron_Peirsol"][1]]
    )
    partial = CliRunner().invoke(app, [*args, str(good), str(junk)])
    assert partial.exit_code == 3, partial.output
    assert (json.loads(partial.stdout)["enrolled"], json.loads(partial.stdout)["errors"]) == (1, 1)
