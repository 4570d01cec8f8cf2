"""Browser test: an analyst prepares a deployment in the web app (seeing the expected false alert rate), a
supervisor authorises it, the analyst starts it (its camera plays the street video as a live source), and the
named officer, whose review page is already open, sees the alert arrive live (server-sent events), with the
captured face beside the watch-list photo, and records a decision.

axe-core is injected into every page (as in tests/web/test_browser.py, whose ``check`` this uses): every live page
is checked here, with no serious or critical violation, and the last test checks from the app's route table that
none was missed (tests/web/test_browser.py leaves the live pages to this module).

Skipped when /usr/bin/chromium or the playwright package is missing (``make test`` installs chromium).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from faceleads.web.app import create_app
from tests.live.conftest import LiveEnv
from tests.security.identity_helpers import PASSWORD
from tests.web.test_browser import (
    ACTION_TIMEOUT_MS,
    ARGS,
    AXE,
    CHECKED,
    CHROMIUM,
    check,
    confirm,
    flash,
    html_pages,
    is_live_page,
    serve_in_thread,
    shot,
    submit,
    wait_images,
)

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def live_app(live_env: LiveEnv) -> Any:
    return create_app(live_env.settings, runtime=live_env.rt)


@pytest.fixture(scope="module")
def live_server(live_env: LiveEnv, live_app: Any) -> Iterator[str]:
    assert AXE.is_file(), f"axe-core is missing at {AXE}: run bash scripts/install-web-tests.sh (make test does)"
    server, thread, url = serve_in_thread(live_app)
    yield url
    server.should_exit = True
    thread.join(15)


def sign_in(browser: Any, url: str, user: str) -> Any:
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # (The app has no favicon; the browser's own request for it is not an error of the page.)
    page.on("console", lambda msg: errors.append(f"{msg.text} {msg.location}")
            if msg.type == "error" and "favicon.ico" not in str(msg.location) else None)  # fmt: skip
    page.errors = errors
    page.goto(url + "/sign-in")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_url(url + "/")
    return page


def test_alert_arrives_live_and_is_reviewed(live_env: LiveEnv, live_server: str) -> None:
    url = live_server
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            # The analyst prepares the deployment.
            analyst = sign_in(browser, url, "analyst")
            analyst.click("nav >> text=Live")
            analyst.wait_for_url(url + "/live")
            check(analyst)
            analyst.goto(f"{url}/live/watchlists/{live_env.watchlist_id}")
            assert analyst.locator("#entries tbody tr").count() == len(live_env.listed)
            check(analyst)
            analyst.goto(url + "/live")
            analyst.click("#new-deployment")
            analyst.wait_for_url(url + "/live/deployments/new")
            analyst.select_option("#watchlist-choice", str(live_env.watchlist_id))
            analyst.fill("#threshold-input", "0.4")
            deadline = time.monotonic() + 60
            while "per 1,000 faces" not in analyst.locator("#expected-rate").inner_text():
                assert time.monotonic() < deadline, "the expected false alert rate did not show"
                time.sleep(0.2)
            now = datetime.now(UTC)
            form = "#deployment-form"
            analyst.fill(f"{form} input[name=location]", "Station forecourt")
            analyst.fill(f"{form} textarea[name=legal_basis]", "Force LFR policy v3, authorised operation 12")
            analyst.fill(f"{form} textarea[name=purpose]", "Locate people wanted on warrant")
            analyst.fill(f"{form} input[name=start_at]", (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"))
            analyst.fill(f"{form} input[name=end_at]", (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
            analyst.fill(f"{form} textarea[name=cameras]", f"forecourt={live_env.video}")
            analyst.check(f"{form} input[name=officers][value=officer]")
            analyst.check(f"{form} input[name=signage_confirmed]")
            analyst.fill(f"{form} input[name=signage_note]", "Signs at the station entrances")
            check(analyst, "live-01-prepare")
            # Forms are submitted by the page script: the browser goes to the answer's redirect.
            submit(analyst, lambda: analyst.click(f"{form} button[type=submit]"))
            analyst.wait_for_url(re.compile(r".*/live/deployments/\d+$"))
            deployment_url = analyst.url
            assert "prepared" in flash(analyst)
            assert "Expected false alert rate" in analyst.locator("#expected-rate").inner_text()
            assert analyst.locator("#authorise-form").count() == 0  # an analyst cannot authorise
            check(analyst)

            # A supervisor authorises it, after a confirmation saying what they answer for.
            supervisor = sign_in(browser, url, "sup1")
            supervisor.goto(deployment_url)
            check(supervisor)
            supervisor.fill("#authorise-form input[name=note]", "Necessary and proportionate")
            supervisor.click("#authorise-form button[type=submit]")
            assert "proportionality" in supervisor.locator("#confirm-text").inner_text()
            confirm(supervisor)
            assert "authorised" in flash(supervisor)
            assert "authorised by sup1" in supervisor.locator("table.kv").inner_text()
            shot(supervisor, "live-02-authorised")

            # The officer opens the review page before anything happens.
            officer = sign_in(browser, url, "officer")
            officer.goto(deployment_url + "/alerts")
            assert officer.locator("#no-alerts").is_visible()
            check(officer)

            # The analyst starts it; the camera runs on the server, alerts reach the officer's open page.
            analyst.goto(deployment_url)
            submit(analyst, lambda: analyst.click("#start-form button[type=submit]"))
            # The answer redirects to the same address: the page script sets it again and reloads, and Playwright
            # counts the history change as the navigation, so wait for the reloaded page rather than read at once.
            sync_api.expect(analyst.locator("#deployment-status")).to_contain_text("running", timeout=60_000)
            check(analyst)
            deadline = time.monotonic() + 300  # a spawned process loads the models, then reads the video
            while officer.locator(".alert-card").count() == 0:
                assert time.monotonic() < deadline, "no alert arrived on the open review page"
                time.sleep(0.3)
            card = officer.locator(".alert-card").first
            assert card.locator(".alert-subject").inner_text() in set(live_env.listed.values())
            assert "score" in card.locator(".alert-score").inner_text()
            wait_images(officer)
            check(officer, "live-03-alert-arrived")
            card.locator("select[name=decision]").select_option("confirmed")
            card.locator("input[name=note]").fill("Stopped and identified; ref 2026/77")
            card.locator("button[type=submit]").click()
            deadline = time.monotonic() + 60
            while "Decision: confirmed by officer" not in card.locator(".alert-decided").inner_text():
                assert time.monotonic() < deadline, "the decision was not recorded"
                time.sleep(0.2)
            shot(officer, "live-04-decided")
            # Reopened, the page shows the alerts as the server renders them (the decision recorded once).
            officer.reload()
            decided = officer.locator(".alert-card", has_text="Decision: confirmed by officer")
            assert decided.count() == 1
            check(officer)
            assert not officer.errors, officer.errors
            assert not analyst.errors, analyst.errors

            # The report page counts the decision.
            analyst.goto(deployment_url + "/report")
            assert "confirmed 1" in analyst.locator("#report").inner_text()
            check(analyst)
            analyst.goto(deployment_url)
            if analyst.locator("#stop-form").count():
                analyst.click("#stop-form button[type=submit]")
                confirm(analyst)
                assert "stopped" in flash(analyst)
            check(analyst)
            assert not supervisor.errors, supervisor.errors
        finally:
            browser.close()


def test_every_live_page_was_checked_for_accessibility(live_app: Any) -> None:
    """The axe check above ran on every live page of the app (from the app's route table)."""
    pages = {p for p in html_pages(live_app) if is_live_page(p)}
    assert len(pages) >= 6, pages
    missing = sorted(pages - set(CHECKED))
    assert not missing, f"live pages never checked by axe: {missing}"
