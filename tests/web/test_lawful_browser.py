"""Browser tests (Playwright + Debian chromium, the real app over uvicorn): a records officer's enrolment under an
authority that is not on the list is refused on the page; an administrator adds an authority on the lawful gallery
page; an auditor produces the transparency report and downloads its PDF. Screenshots to artifacts/screenshots/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pypdf import PdfReader

from tests.web.conftest import PEOPLE
from tests.web.test_browser import Server, browser, server, shot, sign_in, sync_api  # noqa: F401  (fixtures)

SCRAPED = "scraped from public social media profiles"


def test_records_officer_enrolment_refused_for_an_unlisted_authority(browser: Any, server: Server) -> None:  # noqa: F811
    page = sign_in(browser, server, "records")
    page.goto(server.url + "/enrol")
    page.fill("input[name=subject_number]", "WEB-SCRAPED")
    page.fill("input[name=booking_number]", "WEB-BS")
    page.fill("input[name=booking_date]", "2024-03-01")
    page.fill("input[name=legal_authority]", SCRAPED)
    page.set_input_files("#enrol-form input[name=photos]", str(PEOPLE["Abdullah_Gul"][0]))
    page.click("#enrol-form button[type=submit]")
    body = " ".join(page.locator("main").inner_text().split())
    assert f"'{SCRAPED}' is not on DEV's list of legal authorities" in body
    shot(page, "20-enrol-refused-unlisted-authority")
    page.goto(server.url + "/lawful")
    assert "Records awaiting review" in page.locator("#compliance").inner_text()
    page.context.close()


def test_administrator_adds_an_authority(browser: Any, server: Server) -> None:  # noqa: F811
    page = sign_in(browser, server, "admin")
    page.goto(server.url + "/lawful")
    page.fill("#authority-form input[name=code]", "IMM-141")
    page.fill("#authority-form input[name=title]", "Immigration Act 1999 s.141")
    page.click("#authority-form button[type=submit]")
    sync_api.expect(page.locator("#message")).to_contain_text("added IMM-141")
    assert "Immigration Act 1999 s.141" in page.locator("#authorities").inner_text()
    shot(page, "21-lawful-gallery")
    page.context.close()


def test_auditor_produces_the_transparency_report(browser: Any, server: Server, tmp_path: Path) -> None:  # noqa: F811
    page = sign_in(browser, server, "auditor")
    page.goto(server.url + "/transparency")
    page.fill("#transparency-form input[name=from]", "2020-01-01")
    page.click("#transparency-form button[type=submit]")
    sync_api.expect(page.locator("#section-searches")).to_be_visible()
    assert "counts from 1 to 4 are shown as <5" in page.locator("main").inner_text()
    shot(page, "22-transparency-report")
    with page.expect_download() as download:
        page.click("#downloads a:has-text('Download PDF')")
    path = tmp_path / "report.pdf"
    download.value.save_as(path)
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(str(path)).pages)
    assert "Transparency report" in text and "no personal or biometric data" in text
    assert page.errors == []
    page.context.close()
