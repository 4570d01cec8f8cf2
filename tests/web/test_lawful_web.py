"""The lawful gallery and transparency through the web pages and the REST API (the refusals are in
tests/test_refusals.py): administering the list, the review of records awaiting it, dispositions scheduling
destruction, the agency's checklist on the destruction page, outcomes, and the transparency report (HTML, CSV, PDF,
JSON)."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from pypdf import PdfReader
from sqlalchemy import update

from faceleads.gallery.models import Encounter
from tests.web.conftest import WebEnv
from tests.web.test_security import browser_sign_in, csrf_of, page_client

TODAY = date.today()
PERIOD = {"from": (TODAY - timedelta(days=2)).isoformat(), "to": TODAY.isoformat()}


def _page(web: WebEnv, user: str):  # type: ignore[no-untyped-def]
    client = page_client(web)
    browser_sign_in(client, user)
    return client


def test_lawful_page_list_review_dispositions_and_criteria(web: WebEnv) -> None:
    admin = _page(web, "admin")
    page = admin.get("/lawful")
    assert page.status_code == 200 and "PACE-64A" in page.text and 'action="/lawful/authorities"' in page.text
    token = csrf_of(page.text)
    added = admin.post("/lawful/authorities", data={"csrf": token, "code": "IMM-1", "title": "Immigration Act s.141",
                                                    "description": "photographs of detained persons"})  # fmt: skip
    assert added.status_code == 200 and "Added IMM-1" in added.text and "Immigration Act s.141" in added.text
    crit = admin.post("/lawful/criteria", data={"csrf": token, "code": "under_18", "text": "Under 18 at every booking",
                                                "check": "max_age_at_booking", "parameter": "18"})  # fmt: skip
    assert "Added criterion under_18" in crit.text
    policy = admin.post("/lawful/policy", data={"csrf": token, "kind": "dismissed", "action": "destroy",
                                                "waiting_days": "30"})  # fmt: skip
    assert "dismissed: destroy after 30 day(s)" in policy.text

    # A record from before the list (its text on no entry) shows for review; the records officer re-attributes it.
    with web.rt.session_factory() as session:
        session.execute(update(Encounter).where(Encounter.booking_number == "AGA-004")
                        .values(authority_id=None, legal_authority="old custody form"))  # fmt: skip
        session.commit()
    records = _page(web, "records")
    page = records.get("/lawful")
    assert "old custody form" in page.text and "booking AGA-004" in page.text
    assert 'action="/lawful/authorities"' not in page.text  # records officers do not administer the list
    token = csrf_of(page.text)
    done = records.post("/lawful/review", data={"csrf": token, "to": "PACE-64A", "from_text": "old custody form",
                                                "reason": "custody record checked: PACE s.64A"})  # fmt: skip
    assert "1 booking(s) now held under PACE-64A" in done.text and "booking AGA-004" not in done.text
    # A disposition recorded on the page opens the destruction request under the default policy.
    done = records.post("/lawful/dispositions", data={"csrf": token, "booking_number": "AGA-003",
                                                      "kind": "acquitted", "occurred_on": "2025-02-03",
                                                      "reference": "Crown Court T2025/9"})  # fmt: skip
    assert "acquitted recorded; subject request_open" in done.text
    destruction = records.get("/destruction")
    assert "agency disposition policy" in destruction.text and "Under 18 at every booking" in destruction.text
    # The auditor reads the lists and the schedule, changes nothing.
    auditor = _page(web, "auditor").get("/lawful")
    main = auditor.text.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    assert auditor.status_code == 200 and "Crown Court T2025/9" in main and "<form" not in main


def test_lawful_api(web: WebEnv) -> None:
    listed = web.client.get("/api/v1/authorities", headers=web.headers("records"))
    assert listed.status_code == 200 and {"PACE-64A", "PACE"} <= {a["code"] for a in listed.json()}
    compliance = web.client.get("/api/v1/authorities/compliance", params={"details": "true"},
                                headers=web.headers("records"))  # fmt: skip
    assert compliance.status_code == 200 and compliance.json()["agency"] == "AGA"
    policy = web.client.put("/api/v1/dispositions/policy/pardoned", json={"action": "retain"},
                            headers=web.headers("admin"))  # fmt: skip
    assert policy.status_code == 200 and policy.json()["action"] == "retain"
    recorded = web.client.post("/api/v1/dispositions", json={"booking_number": "AGA-002", "kind": "pardoned",
                                                             "occurred_on": "2025-01-01", "reference": "P-1"},
                               headers=web.headers("records"))  # fmt: skip
    assert recorded.status_code == 201 and recorded.json()["schedule"]["state"] == "retained"
    run = web.client.post("/api/v1/dispositions/run", json={"dry_run": True}, headers=web.headers("records"))
    assert run.status_code == 200 and run.json()["dry_run"] is True
    bad = web.client.post("/api/v1/dispositions", json={"booking_number": "AGA-002", "kind": "convicted",
                                                        "occurred_on": "2025-01-01", "reference": "P-1"},
                          headers=web.headers("records"))  # fmt: skip
    assert bad.status_code == 422 and "bad disposition 'convicted'" in bad.json()["detail"]
    criteria = web.client.get("/api/v1/destruction-criteria", headers=web.headers("auditor"))
    assert criteria.status_code == 200 and criteria.json()[0]["code"] == "requester_identity_verified"


def test_transparency_page_and_api(web: WebEnv) -> None:
    supervisor = _page(web, "supervisor")
    form = supervisor.get("/transparency")
    assert form.status_code == 200 and 'id="transparency-form"' in form.text and "Download CSV" not in form.text
    page = supervisor.get("/transparency", params=PERIOD)
    assert page.status_code == 200 and "Download PDF" in page.text and 'id="section-searches"' in page.text
    csv_page = supervisor.get("/transparency/report.csv", params=PERIOD)
    assert csv_page.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_page.text)))
    assert rows[0] == {"section": "report", "measure": "agency", "breakdown": "", "value": "AGA"}
    pdf = supervisor.get("/transparency/report.pdf", params=PERIOD)
    assert pdf.headers["content-type"] == "application/pdf"
    assert "Transparency report" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    api = web.client.get("/api/v1/reports/transparency", params={**PERIOD, "format": "json"},
                         headers=web.headers("auditor"))  # fmt: skip
    assert api.status_code == 200 and api.json()["agency"] == "AGA" and api.json()["min_count"] == 5
    assert all(set(r) == {"section", "measure", "breakdown", "value"} for r in api.json()["rows"])
    api_pdf = web.client.get("/api/v1/reports/transparency", params={**PERIOD, "format": "pdf"},
                             headers=web.headers("auditor"))  # fmt: skip
    assert api_pdf.status_code == 200 and api_pdf.content.startswith(b"%PDF")
    reversed_period = web.client.get("/api/v1/reports/transparency", params={"from": PERIOD["to"],
                                                                             "to": PERIOD["from"]},
                                     headers=web.headers("auditor"))  # fmt: skip
    assert reversed_period.status_code == 422 and "before it starts" in reversed_period.json()["detail"]


def test_oversight_produces_any_agencys_report_and_every_agencys(web: WebEnv) -> None:
    """The oversight role: another agency's report, and with no agency named every agency's figures summed; the
    page offers the choice. (That it never reaches an image is tests/web/test_oversight.py.)"""
    o = web.headers("oversight")
    every = web.client.get("/api/v1/reports/transparency", params={**PERIOD, "format": "json"}, headers=o)
    assert every.status_code == 200 and every.json()["agency"] == "ALL"
    assert {"AGA", "AGB"} <= set(every.json()["agency_name"].split(": ")[1].rstrip(")").split(", "))
    agb = web.client.get("/api/v1/reports/transparency", params={**PERIOD, "agency": "AGB", "format": "csv"},
                         headers=o)  # fmt: skip
    assert agb.status_code == 200 and "report,agency,,AGB" in agb.text
    oversight = _page(web, "oversight")
    form = oversight.get("/transparency")
    assert form.status_code == 200 and 'id="agency-hint"' in form.text and 'name="agency" value=""' in form.text
    page = oversight.get("/transparency", params=PERIOD)
    assert page.status_code == 200 and "every agency" in page.text and 'id="section-exigent"' in page.text
    assert "Transparency" in page.text.split('<nav', 1)[1].split("</nav>", 1)[0]  # in the oversight's menu


def test_outcomes_page_lists_released_leads(web: WebEnv) -> None:
    investigator = _page(web, "investigator")
    page = investigator.get("/outcomes")
    assert page.status_code == 200 and 'id="released-leads"' in page.text and "No released lead." in page.text
    refused = investigator.post("/outcomes/99999", data={"csrf": csrf_of(page.text), "outcome": "charged",
                                                         "notes": "charged with robbery"})  # fmt: skip
    assert refused.status_code == 404 and "No lead 99999" in refused.text
    api = web.client.get("/api/v1/released-leads", headers=web.headers("investigator"))
    assert api.status_code == 200 and api.json() == []
