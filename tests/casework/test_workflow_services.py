"""The services behind the examiners' screens: work queues with priority and due times, case overviews, the
chain-of-custody timeline, examiner QA, and lead reports that are kept, downloaded, checked and say which face,
where the evidence came from and who handled it."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader

from faceleads.casework import adjudication as adj
from faceleads.casework import admin, cases, custody, dashboard, probes, qa, reporting, searching
from faceleads.errors import NotFound, PermissionDenied
from tests.casework.conftest import CI, Env

OBTAINED = datetime(2026, 1, 5, 22, 10, tzinfo=UTC)


def test_queues_custody_qa_and_reports(env: Env) -> None:
    rt = env.rt
    target = next(iter(env.people))
    case_id = env.fresh_case("WORK-1")
    request = cases.open_request(rt, env.investigator, case_id, CI, "identify the suspect", priority="urgent")
    assert request.priority == "urgent"
    probe = probes.add_photo(rt, env.investigator, case_id, env.people[target][2].read_bytes(),
                             source="CCTV camera 3, Mile End", obtained_by="PC 1234 Smith", obtained_at=OBTAINED,
                             legal_basis="PACE s.19 seizure")  # fmt: skip

    def kinds(actor: object, **kw: object) -> dict[str, dashboard.WorkItem]:
        return {i.kind: i for i in dashboard.work_items(rt, actor, **kw) if i.case_id == case_id}  # type: ignore

    prepare = kinds(env.analyst)["prepare"]
    assert prepare.ref_id == probe.id and prepare.priority == "urgent" and prepare.case_occurrence == "WORK-1"
    assert "prepare" not in kinds(env.investigator)
    probes.set_edits(rt, env.analyst, probe.id, [{"op": "gamma", "gamma": 1.1}])
    probes.pick_face(rt, env.analyst, probe.id, 1)
    cs = searching.run_search(rt, env.analyst, request.id, [probe.id], top=4).id
    assert kinds(env.analyst)["adjudicate"].ref_id == cs
    adj.adjudicate(rt, env.analyst, cs, 1, "possible_lead", "same chin and ears", {"ears": "similar",
                                                                                  "chin": "similar"})
    adj.exclude_remaining(rt, env.analyst, cs, "features_differ")
    (lead,) = adj.submit_adjudication(rt, env.analyst, cs)

    # The reviewer: a blind task in the queue, and the sealed search neither listed nor counted.
    assert kinds(env.reviewer)["verify"].ref_id == lead.id
    (overview,) = [o for o in dashboard.case_overviews(rt, env.reviewer) if o.id == case_id]
    assert overview.sealed_searches == 1 and overview.searches == {} and overview.leads == {}
    assert overview.priority == "urgent" and overview.evidence == 1 and overview.waiting == 1
    (overview,) = [o for o in dashboard.case_overviews(rt, env.analyst, mine=True) if o.id == case_id]
    assert overview.searches == {"submitted": 1} and overview.leads == {"awaiting_verification": 1}

    # Chain of custody: handling, never findings; the sealed search is hidden from the reviewer.
    events, total = custody.case_timeline(rt, env.investigator, case_id)
    actions = [e.action for e in events]
    assert total == len(events) and actions[0] == "case_open"
    for action in ("evidence_add", "probe_edit", "probe_face", "case_search", "request_open"):
        assert action in actions, action
    assert not {"adjudicate", "conclusion", "verification", "view_candidates"} & set(actions)
    assert all("conclusion" not in e.details for e in events)
    assert "case_search" not in [e.action for e in custody.case_timeline(rt, env.reviewer, case_id)[0]]

    adj.verification_task(rt, env.reviewer, lead.id)
    adj.verify_lead(rt, env.reviewer, lead.id, "possible_lead", "agree: chin and ears",
                    {"ears": "similar", "chin": "dissimilar"})
    release = kinds(env.analyst)["release"]
    assert not release.overdue and release.due_at is not None
    assert kinds(env.analyst, now=release.since + timedelta(hours=13))["release"].overdue  # urgent: 12 h

    # Examiner QA: the analyst's lead was agreed with; half the shared checklist features agree.
    report = qa.examiner_qa(rt, env.supervisor)
    people = {e.username: e for e in report.examiners}
    analyst, reviewer = people[env.analyst.username], people[env.reviewer.username]
    assert analyst.proposed_agreed >= 1 and analyst.searches >= 1 and analyst.seconds_per_candidate is not None
    assert reviewer.verifications >= 1 and reviewer.seconds_per_verification is not None
    assert reviewer.features_compared >= 2 and reviewer.features_agreed >= 1
    assert report.agencies and report.agencies[0].username == ""
    with pytest.raises(PermissionDenied):
        qa.examiner_qa(rt, env.analyst)

    # The lead report: kept, downloadable with the same hash, checkable; an investigator only once released.
    export = reporting.export_report(rt, env.analyst, cs)
    record = reporting.report_record(rt, env.analyst, export.report_id)
    assert record.sha256 == export.sha256 and record.stored and export.reference == record.reference
    pdf, _ = reporting.report_pdf(rt, env.analyst, export.report_id)
    assert pdf == export.pdf
    assert record.sha256_file() == f"{export.sha256}  lead-report-{record.reference}.pdf\n"
    with pytest.raises(NotFound):
        reporting.report_pdf(rt, env.investigator, export.report_id)
    adj.release_lead(rt, env.analyst, lead.id)
    assert reporting.report_pdf(rt, env.investigator, export.report_id)[0] == export.pdf
    assert reporting.check_report(rt, env.investigator, export.pdf)[1] is not None
    assert reporting.check_report(rt, env.investigator, export.pdf + b" ")[1] is None
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(export.pdf)).pages)
    for needle in ("CCTV camera 3, Mile End", "PC 1234 Smith", "PACE s.19 seizure", "Edit history",
                   "gamma(gamma=1.1)", "Chain of custody", "boxed in the image", "Probe face (as searched)",
                   "Checking this report", f"lead-report-{record.reference}.pdf.sha256", "Evidence received"):
        assert needle in text, needle
    assert [r["id"] for r in reporting.list_reports(rt, env.investigator, case_id)] == [export.report_id]

    # A purpose in the exigent regime makes its requests threat-to-life priority, whatever was asked.
    admin.add_purpose(rt, env.admin, "exigent-missing-person", "Missing person at risk", regime="exigent")
    urgent = cases.open_request(rt, env.investigator, case_id, "exigent-missing-person", "child missing",
                                priority="routine")  # fmt: skip
    assert urgent.priority == "threat_to_life" and urgent.regime == "exigent" and urgent.status == "ready"
