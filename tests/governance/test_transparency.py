"""Outcomes of released leads and the public transparency report, on a real flow: searches under the investigative
and the exigent regime (one exigent search ratified by a supervisor, one left to lapse), prior authorisations
granted and refused, adjudication, blind verification, release, outcomes signed off by the investigator, a refused
action, a denied destruction request, and stored accuracy measurements made by ``faceleads evaluate --save`` on real
LFW photos. The CSV's content, the PDF (parsed with pypdf), small-count suppression, the absence of personal data,
who may produce it, and oversight's report across agencies."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from typer.testing import CliRunner

from faceleads.casework import adjudication as adj
from faceleads.casework import cases, outcomes, probes, regimes, searching
from faceleads.casework.models import CaseSearch
from faceleads.cli import context
from faceleads.config import get_settings
from faceleads.core.actor import Actor, Role
from faceleads.core.audit import AuditEntry
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.gallery.models import Encounter, Subject
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.governance import destruction
from faceleads.governance.transparency import (
    ALL_AGENCIES,
    NOT_PUBLISHED,
    Row,
    exigent_figures,
    gather,
    suppress,
    transparency_report,
)
from tests.casework import conftest as casework
from tests.casework.conftest import CI, EXIGENT, VICTIM, Env
from tests.conftest import LFW_DIR
from tests.lawful import list_authorities

env = casework.env  # the casework environment (users, lists, a small real gallery), built once for this module

OBTAINED = datetime(2026, 1, 5, 22, 10, tzinfo=UTC)


def _today() -> date:
    """Today in UTC, read when a test runs: a date fixed at import could be yesterday by the time a long suite
    reaches the test (the report's period would then end before the events the test just recorded)."""
    return datetime.now(UTC).date()


# --------------------------------------------------------------------------------------------- suppression


def _rows(**cells: int) -> list[Row]:
    return [Row("s", "m", name, value) for name, value in cells.items()]


def _published(rows: list[Row]) -> dict[str, str]:
    return {r.breakdown: r.published for r in rows}


def test_small_counts_and_complementary_suppression() -> None:
    # 1 to 4 become "<5"; 0 and 5+ are shown.
    assert _published(suppress(_rows(a=0, b=1, c=4, d=5, e=120), 5)) == {"a": "0", "b": "<5", "c": "<5", "d": "5",
                                                                         "e": "120"}  # fmt: skip
    # One suppressed cell of a breakdown with its total: the smallest other non-zero cell is withheld too, so the
    # hidden one cannot be computed from the total.
    assert _published(suppress(_rows(a=3, b=9, c=40, total=52), 5)) == {"a": "<5", "b": NOT_PUBLISHED, "c": "40",
                                                                        "total": "52"}  # fmt: skip
    # Two suppressed cells protect each other; a suppressed total needs nothing more.
    assert _published(suppress(_rows(a=3, b=2, c=40, total=45), 5)) == {"a": "<5", "b": "<5", "c": "40",
                                                                        "total": "45"}  # fmt: skip
    assert _published(suppress(_rows(a=3, b=0, total=3), 5)) == {"a": "<5", "b": "0", "total": "<5"}
    # The only non-zero cell is suppressed and equals the total: the total is withheld.
    assert _published(suppress(_rows(a=3, b=0, total=8), 5))["total"] == NOT_PUBLISHED
    # Figures (measured rates) are never suppressed; a threshold of 1 publishes everything.
    figure = Row("accuracy", "overall", "eer", 0.0123, "figure")
    assert suppress([figure], 5)[0].published == "0.0123"
    assert _published(suppress(_rows(a=1, total=1), 1)) == {"a": "1", "total": "1"}


def test_the_csv_neutralises_formula_cells() -> None:
    """An authority title is an administrator's text: a cell a spreadsheet would evaluate is published as text."""
    from faceleads.governance.transparency import TransparencyReport

    hostile = '=HYPERLINK("http://evil.example/","open")'
    rows = suppress([Row("gallery", "legal_authority", "X", hostile, "text"), Row("s", "m", "total", 7)], 5)
    report = TransparencyReport("AGA", "A", _today(), _today(), datetime.now(UTC), 5, rows)
    parsed = list(csv.reader(io.StringIO(report.to_csv())))
    assert ["gallery", "legal_authority", "X", "'" + hostile] in parsed and ["s", "m", "total", "7"] in parsed


# --------------------------------------------------------------------------------------------- the flow


def _search(env: Env, number: str, offence: str, purpose: str, probe: Path, top: int = 3) -> tuple[int, int]:
    """Open a case and a request, take the probe in, search; returns (request id, case search id)."""
    rt = env.rt
    case = cases.open_case(rt, env.investigator, number, offence, "Suspect photographed at the scene by a witness")
    req = cases.open_request(rt, env.investigator, case.id, purpose, "Identify the person on the witness photo")
    if req.status == "awaiting_authorisation":
        cases.authorise_request(rt, env.supervisor, req.id, "Threat to life: missing person at risk", grant=True)
    probe_id = probes.add_photo(rt, env.investigator, case.id, probe.read_bytes(), source="witness phone",
                                obtained_by="PC 1 Smith", obtained_at=OBTAINED, legal_basis="consent",
                                filename="witness.jpg").id  # fmt: skip
    probes.detect_faces(rt, env.analyst, probe_id)
    probes.pick_face(rt, env.analyst, probe_id, 1)
    return req.id, searching.run_search(rt, env.analyst, req.id, [probe_id], top=top).id


def _released_lead(env: Env, number: str, name: str) -> int:
    _, cs = _search(env, number, "ROB", CI, env.people[name][1])
    adj.adjudicate(env.rt, env.analyst, cs, 1, "possible_lead", "Same ears, hairline and nose bridge")
    for rank in (2, 3):
        adj.adjudicate(env.rt, env.analyst, cs, rank, "excluded", "Different face shape")
    (lead,) = adj.submit_adjudication(env.rt, env.analyst, cs)
    adj.verify_lead(env.rt, env.reviewer, lead.id, "agree", "Consistent features throughout")
    adj.release_lead(env.rt, env.analyst, lead.id)
    return lead.id


def _labels(tmp: Path, identities: int = 8, photos: int = 3) -> Path:
    """A labels CSV of LFW photos with the gender column (identities with several photos)."""
    with (LFW_DIR / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_id: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_id.setdefault(row["identity"], []).append(row)
    eligible = [v[:photos] for v in by_id.values() if len(v) >= photos]
    half = identities // 2  # as many women as men, so that both groups are measured
    chosen = [group for sex in ("F", "M") for group in [v for v in eligible if v[0]["gender"] == sex][:half]]
    path = tmp / "labels-small.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "identity", "gender"])
        writer.writeheader()
        for group in chosen:
            for row in group:
                writer.writerow({"path": str(LFW_DIR / row["path"]), "identity": row["identity"],
                                 "gender": row["gender"]})  # fmt: skip
    return path


def _measure(env: Env, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``faceleads evaluate verify|identify|calibrate --save`` on real photos, for agency MET."""
    from faceleads.cli.main import app

    monkeypatch.setattr(context, "_runtime", env.rt)
    monkeypatch.setenv("FACELEADS_DATA_DIR", str(tmp / "eval"))  # the template cache
    get_settings.cache_clear()
    labels = _labels(tmp)
    runner = CliRunner()
    try:
        groups = ["--group-column", "gender", "--min-group-trials", "1"]
        for command in (["evaluate", "verify", "--labels", str(labels), *groups],
                        ["evaluate", "identify", "--labels", str(labels), *groups],
                        ["evaluate", "calibrate", "--labels", str(labels), "--target-fmr", "0.01"]):  # fmt: skip
            result = runner.invoke(app, [*command, "--save", "--agency", "MET", "--json"])
            assert result.exit_code == 0, result.output
            assert '"evaluation_result_id"' in result.stdout or '"calibration_id"' in result.stdout
    finally:
        get_settings.cache_clear()


def _csv(text: str) -> dict[tuple[str, str, str], str]:
    return {(r["section"], r["measure"], r["breakdown"]): r["value"] for r in csv.DictReader(io.StringIO(text))}


def _pdf_text(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages)


def _auditor(env: Env, code: str = "MET", role: Role = Role.AUDITOR) -> Actor:
    agency_id = list_authorities(env.rt, code, entries=())  # the agency (created if missing)
    return Actor(f"{role.value}@{code}", agency_id, frozenset({role}), None, code)


def _prior_authorisations(env: Env) -> None:
    """A purpose that needs a supervisor's prior authorisation: one request authorised, one refused."""
    case_id = cases.open_case(env.rt, env.investigator, "MET/T/5", "ROB", "Child abuse images seized from a phone").id
    for grant in (True, False):
        req = cases.open_request(env.rt, env.investigator, case_id, VICTIM, "Identify the child in the images")
        cases.authorise_request(env.rt, env.supervisor, req.id, "Victim identification under the agency's policy",
                                grant=grant)  # fmt: skip


def test_outcomes_and_the_transparency_report(env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = env.rt
    names = list(env.people)
    regimes.set_purpose_regime(rt, env.admin, EXIGENT, "exigent")  # threat to life: searched now, ratified after
    lead_a = _released_lead(env, "MET/T/1", names[0])
    lead_b = _released_lead(env, "MET/T/2", names[1])
    # An exigent search ratified by a supervisor, every candidate excluded.
    _, exigent = _search(env, "MET/T/3", "SHOP", EXIGENT, env.people[names[2]][1])
    for rank in (1, 2, 3):
        adj.adjudicate(rt, env.analyst, exigent, rank, "excluded", "Not the missing person")
    assert adj.submit_adjudication(rt, env.analyst, exigent) == []
    ratified = regimes.ratify_search(rt, env.supervisor, exigent, "Threat to life confirmed by the duty inspector")
    assert ratified.state == "ratified"
    # Another exigent search that nobody ratified within the window: lapsed (its candidates locked).
    _, lapsed = _search(env, "MET/T/6", "SHOP", EXIGENT, env.people[names[4]][1])
    with transaction(rt.session_factory) as session:
        row = session.get(CaseSearch, lapsed)
        assert row is not None
        row.ratify_by = utcnow() - timedelta(minutes=5)
    _prior_authorisations(env)
    # A lead that is never released: no outcome can be recorded for it.
    _, held = _search(env, "MET/T/4", "ROB", CI, env.people[names[3]][1])
    adj.adjudicate(rt, env.analyst, held, 1, "possible_lead", "Similar")
    for rank in (2, 3):
        adj.adjudicate(rt, env.analyst, held, rank, "inconclusive", "Poor angle")
    (unreleased,) = adj.submit_adjudication(rt, env.analyst, held)

    # --- outcomes: signed off by an investigator, audited; refused for anything else
    signed = outcomes.record_outcome(rt, env.investigator, lead_a, "corroborated", "Phone records place him there")
    assert signed.outcome is not None and signed.outcome.signed_off_by == env.investigator.username
    later = outcomes.record_outcome(rt, env.investigator, lead_a, "charged", "Charged with robbery on 2026-02-01")
    assert [h.outcome for h in later.history] == ["corroborated", "charged"] and later.outcome.outcome == "charged"
    with pytest.raises(PermissionDenied, match="record outcome"):
        outcomes.record_outcome(rt, env.analyst, lead_b, "eliminated", "Alibi confirmed by CCTV")
    with pytest.raises(ValidationError, match="only a released lead has an outcome"):
        outcomes.record_outcome(rt, env.investigator, unreleased.id, "eliminated", "Alibi confirmed by CCTV")
    with pytest.raises(ValidationError, match="bad outcome"):
        outcomes.record_outcome(rt, env.investigator, lead_b, "identified", "This is not an identification")
    with pytest.raises(ValidationError, match="at least 10 characters"):
        outcomes.record_outcome(rt, env.investigator, lead_b, "eliminated", "alibi")
    awaiting = outcomes.released_leads(rt, env.investigator, awaiting_only=True)
    assert [x.lead_id for x in awaiting] == [lead_b]
    with rt.session_factory() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "lead_outcome")
                                  .order_by(AuditEntry.seq)).all()  # fmt: skip
        by_role = session.scalars(select(AuditEntry).where(AuditEntry.action == "record_outcome")
                                  .order_by(AuditEntry.seq)).all()  # fmt: skip
    assert [(e.outcome, e.details.get("outcome")) for e in entries if e.outcome == "ok"] == [
        ("ok", "corroborated"), ("ok", "charged")]  # fmt: skip
    assert [e.username for e in entries if e.outcome == "denied"] == [env.investigator.username]  # unreleased
    assert [(e.username, e.outcome) for e in by_role] == [(env.analyst.username, "denied")]  # no such role

    # --- a destruction request, denied with its written reason
    with rt.session_factory() as session:
        subject_id = session.scalars(select(Subject.id).order_by(Subject.id)).first()
    assert subject_id is not None
    req = destruction.request_destruction(rt, env.records, subject_id, requester="the subject's solicitor",
                                          grounds="Acquitted at trial on 2026-01-12")  # fmt: skip
    destruction.decide(rt, env.supervisor, req.id, approve=False, reason="Retrial ordered on 2026-02-01")

    _measure(env, tmp_path, monkeypatch)

    # --- the report, with every count published (threshold 1) to check the figures
    exact_rt = GalleryRuntime(rt.settings.model_copy(update={"transparency_min_count": 1}), face_engine=rt.face_engine)
    exact = transparency_report(exact_rt, env.supervisor, _today() - timedelta(days=1), _today())
    assert exact.csv is not None and exact.pdf is not None
    got = _csv(exact.csv)
    expected = {
        ("searches", "by_regime", "investigative"): "3", ("searches", "by_regime", "exigent"): "2",
        ("searches", "by_regime", "total"): "5", ("searches", "by_purpose", CI): "3",
        ("searches", "by_purpose", EXIGENT): "2", ("searches", "by_offence_category", "serious"): "3",
        ("searches", "by_offence_category", "minor"): "2",
        ("searches", "prior_authorisations", "granted"): "1", ("searches", "prior_authorisations", "refused"): "1",
        ("casework", "candidates_reviewed", "total"): "12", ("casework", "candidates_reviewed", "possible_lead"): "3",
        ("casework", "candidates_reviewed", "excluded"): "7", ("casework", "candidates_reviewed", "inconclusive"): "2",
        ("casework", "leads", "proposed"): "3", ("casework", "leads", "verified"): "2",
        ("casework", "leads", "released"): "2",
        ("outcomes", "of_leads_released", "charged"): "1", ("outcomes", "of_leads_released", "corroborated"): "0",
        ("outcomes", "of_leads_released", "awaiting_outcome"): "1", ("outcomes", "of_leads_released", "total"): "2",
        ("exigent", "searches_by_ratification", "ratified"): "1",
        ("exigent", "searches_by_ratification", "lapsed"): "1",
        ("exigent", "searches_by_ratification", "ratified_late"): "0",
        ("exigent", "searches_by_ratification", "refused"): "0",
        ("exigent", "searches_by_ratification", "pending"): "0",
        ("exigent", "searches_by_ratification", "total"): "2",
        ("destruction", "requests", "received"): "1", ("destruction", "requests", "denied"): "1",
        ("destruction", "requests", "approved"): "0", ("destruction", "requests", "executed"): "0",
        ("gallery", "bookings_now", "held_under_a_listed_authority"): str(len(env.subjects)),
        ("live", "deployments", "deployments"): "0",
        ("gallery", "legal_authority", "PACE-64A"): "Police and Criminal Evidence Act 1984 s.64A",
        ("report", "agency", ""): "MET",
    }  # fmt: skip
    assert {k: got.get(k) for k in expected} == expected
    assert got[("refusals", "by_action", "total")] == "2"  # the two audited outcome refusals above
    assert got[("refusals", "by_action", "lead_outcome")] == "1"
    assert got[("refusals", "by_action", "record_outcome")] == "1"
    # The last measured accuracy and the demographic differentials, from the stored measurements.
    assert got[("accuracy_verify", "measurement", "dataset")] == "labels-small.csv"
    assert float(got[("accuracy_verify", "overall", "eer")]) >= 0
    assert ("accuracy_verify", "differentials", "fmr_ratio") in got
    assert {k[1] for k in got if k[0] == "accuracy_verify" and k[1].startswith("group ")} == {"group F", "group M"}
    assert ("accuracy_identify", "rank", "1") in got and ("accuracy_identify", "differentials", "fnir_ratio") in got
    assert got[("accuracy", "calibration", "target_fmr")] == "0.01"
    exact_rt.close()

    # --- as published: small counts suppressed; the PDF says the same
    public = transparency_report(rt, _auditor(env), _today() - timedelta(days=1), _today())
    assert public.csv is not None and public.pdf is not None
    shown = _csv(public.csv)
    assert shown[("searches", "by_regime", "total")] == "5"
    assert shown[("searches", "by_regime", "exigent")] == "<5" and shown[("exigent", "searches_by_ratification",
                                                                         "total")] == "<5"  # fmt: skip
    assert shown[("casework", "candidates_reviewed", "total")] == "12"
    assert shown[("casework", "candidates_reviewed", "excluded")] == "7"
    assert shown[("casework", "candidates_reviewed", "possible_lead")] == "<5"
    assert shown[("casework", "candidates_reviewed", "inconclusive")] == "<5"
    assert shown[("report", "suppression", "")].startswith("counts from 1 to 4 are shown as <5")
    text = _pdf_text(public.pdf)
    for needle in ("Transparency report", "MET", "no personal or biometric data", "Searches", "Outcomes of released",
                   "Exigent searches and their ratification", "Destruction of booking records",
                   "Live watch-list deployments", "demographic differentials", "<5"):  # fmt: skip
        assert needle in text, needle

    # --- nothing personal or biometric in either rendering
    with rt.session_factory() as session:
        # "system" is the system itself, not a person (and a word the report's explanations use).
        personal = {u for u in session.scalars(select(AuditEntry.username)) if u and u != "system"}
        personal |= set(session.scalars(select(Subject.subject_number)))
        personal |= set(session.scalars(select(Encounter.booking_number)))
    personal |= {"MET/T/1", "MET/T/2", "MET/T/3", "MET/T/4", "MET/T/5", "MET/T/6", "Smith", "solicitor", "Retrial",
                 "Phone records", "duty inspector"}
    for blob in (public.csv, text, exact.csv, _pdf_text(exact.pdf)):
        leaked = [p for p in personal if p and p in blob]
        assert leaked == [], leaked
    with rt.session_factory() as session:
        produced = session.scalars(select(AuditEntry).where(AuditEntry.action == "transparency_report",
                                                            AuditEntry.outcome == "ok")
                                   .order_by(AuditEntry.seq)).all()  # fmt: skip
    assert produced and produced[-1].details["formats"] == "csv,pdf"


def test_who_may_produce_the_report(env: Env) -> None:
    period = (_today() - timedelta(days=30), _today())
    for who in (env.analyst, env.investigator, env.records, env.admin):
        with pytest.raises(PermissionDenied, match="transparency report"):
            transparency_report(env.rt, who, *period, formats=("json",))
    other = _auditor(env, "NYPD")
    with pytest.raises(PermissionDenied, match="own agency only"):
        transparency_report(env.rt, other, *period, agency_code="MET", formats=("json",))
    assert transparency_report(env.rt, other, *period, formats=("json",)).report.agency == "NYPD"
    with pytest.raises(NotFound, match="unknown agency 'NOPE'"):
        transparency_report(env.rt, env.supervisor, *period, agency_code="NOPE")
    with pytest.raises(ValidationError, match=r"ends .* before it starts"):
        transparency_report(env.rt, env.supervisor, _today(), _today() - timedelta(days=1))
    with env.rt.session_factory() as session:
        denied = session.scalars(select(AuditEntry).where(AuditEntry.action == "transparency_report",
                                                          AuditEntry.outcome == "denied")).all()  # fmt: skip
    assert len(denied) == 5


def test_gather_counts_only_the_period_and_the_agency(env: Env) -> None:
    """Events before the period, or of another agency, are not counted."""
    with env.rt.session_factory() as session:
        agency_id = session.scalars(select(Agency.id).where(Agency.code == "MET")).one()
        past = gather(env.rt, env.supervisor, session, {agency_id: "MET"}, datetime(2001, 1, 1, tzinfo=UTC),
                      datetime(2001, 2, 1, tzinfo=UTC))  # fmt: skip
    counts: dict[tuple[str, str, str], Any] = {(r.section, r.measure, r.breakdown): r.value for r in past}
    assert counts[("searches", "by_regime", "total")] == 0 and counts[("refusals", "by_action", "total")] == 0
    assert counts[("destruction", "requests", "received")] == 0
    assert counts[("exigent", "searches_by_ratification", "total")] == 0


def test_exigent_figures_read_the_ratification_records_as_of_the_end_of_the_period(env: Env) -> None:
    """A decision taken after the end of the period is not counted: a report of a past period reads the same
    whenever it is produced. A ratification after the search's window counts as late."""
    rt = env.rt
    regimes.set_purpose_regime(rt, env.admin, EXIGENT, "exigent")
    _, cs = _search(env, "MET/T/7", "SHOP", EXIGENT, env.people[list(env.people)[5]][1])
    with rt.session_factory() as session:
        row = session.get(CaseSearch, cs)
        assert row is not None and row.ratify_by is not None and row.regime == "exigent"
        searched = row.created_at.replace(tzinfo=UTC)
        agency_id = session.scalars(select(Agency.id).where(Agency.code == "MET")).one()
    window = (searched, searched + timedelta(seconds=1))  # this search only

    def figures(as_of: datetime) -> dict[str, int]:
        with rt.session_factory() as session:
            got = exigent_figures(session, [agency_id], *window, as_of)
        return {k: v for k, v in got.items() if v}

    assert figures(utcnow()) == {"pending": 1}
    assert figures(searched + timedelta(days=30)) == {"lapsed": 1}  # as it will stand if nobody ratifies
    regimes.ratify_search(rt, env.supervisor, cs, "Threat to life confirmed by the duty inspector")
    decided = utcnow()
    assert figures(decided + timedelta(seconds=1)) == {"ratified": 1}
    assert figures(searched + timedelta(microseconds=1)) == {"pending": 1}  # before the decision
    with transaction(rt.session_factory) as session:  # the window had closed before the supervisor ratified
        row = session.get(CaseSearch, cs)
        assert row is not None
        row.ratify_by = searched
    assert figures(decided + timedelta(seconds=1)) == {"ratified_late": 1}


def test_oversight_reports_on_any_agency_and_on_every_agency_at_once(env: Env) -> None:
    """Oversight (another agency's user) produces MET's report, and with no agency named every agency's figures
    summed; an auditor without an agency named gets their own agency's, never the aggregate."""
    rt = env.rt
    oversight = _auditor(env, "OVS", Role.OVERSIGHT)
    period = (_today() - timedelta(days=1), _today())
    met = transparency_report(rt, oversight, *period, agency_code="MET", formats=("json",)).report
    assert met.agency == "MET"
    every = transparency_report(rt, oversight, *period, formats=("csv", "pdf"))
    assert every.report.agency == ALL_AGENCIES and {"MET", "OVS"} <= set(every.report.agency_name.split(": ")[1]
                                                                           .rstrip(")").split(", "))  # fmt: skip
    assert every.csv is not None and "report,agency,,ALL\n" in every.csv
    assert every.pdf is not None and "every agency" in _pdf_text(every.pdf)
    with rt.session_factory() as session:
        agencies = {a.id: a.code for a in session.scalars(select(Agency))}
        met_id = next(i for i, code in agencies.items() if code == "MET")
        start, end = datetime.combine(period[0], datetime.min.time(), UTC), utcnow() + timedelta(seconds=1)
        one = {(r.section, r.measure, r.breakdown): r.value for r in gather(rt, oversight, session, {met_id: "MET"},
                                                                            start, end)}  # fmt: skip
        rows = gather(rt, oversight, session, agencies, start, end)
    summed = {(r.section, r.measure, r.breakdown): r.value for r in rows}
    # Only MET has casework here: the sums equal MET's own figures; the authorities are named with their agency.
    for key in (("searches", "by_regime", "total"), ("exigent", "searches_by_ratification", "total"),
                ("casework", "leads", "released"), ("gallery", "bookings_now", "total")):
        assert summed[key] == one[key], key
    assert ("gallery", "legal_authority", "MET/PACE-64A") in summed
    assert summed[("accuracy", "measurement", "")] == "per agency: see each agency's own report"
    assert transparency_report(rt, _auditor(env), *period, formats=("json",)).report.agency == "MET"
    with rt.session_factory() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "transparency_report",
                                                         AuditEntry.object_ref == "transparency_report:ALL")).one()
    assert entry.outcome == "ok" and entry.username == oversight.username and entry.details["agencies"] >= 2


def test_cli_writes_csv_and_pdf(env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceleads.cli.main import app

    monkeypatch.setattr(context, "_runtime", env.rt)
    out_csv, out_pdf = tmp_path / "t.csv", tmp_path / "t.pdf"
    result = CliRunner().invoke(app, ["report", "transparency", "--agency", "MET", "--from",
                                      (_today() - timedelta(days=7)).isoformat(), "--to", _today().isoformat(), "--csv",
                                      str(out_csv), "--pdf", str(out_pdf)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out_csv.read_text().startswith("section,measure,breakdown,value\nreport,agency,,MET\n")
    assert "Transparency report" in _pdf_text(out_pdf.read_bytes())
    bad = CliRunner().invoke(app, ["report", "transparency", "--from", "2026-13-01", "--to", "2026-12-31",
                                   "--agency", "MET"])  # fmt: skip
    assert bad.exit_code == 2 and "--from must be a date YYYY-MM-DD" in " ".join(bad.output.split())
