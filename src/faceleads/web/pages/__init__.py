"""Server-rendered web pages (Jinja2), one module per area.

| module | pages |
|---|---|
| ``home`` | sign-in, sign-out, the home dashboard (work awaiting the user, their cases) |
| ``account`` | the user's own account: password, authenticator app (TOTP), recovery codes |
| ``cases`` | cases, requests, evidence intake, the case page |
| ``probes`` | the probe page: edits with live preview, face choice, drawn box, quality override, search |
| ``searches`` | quick search, the candidate grid, the comparison view and conclusions, lead reports |
| ``verification`` | blind verification, supervisor decisions and disputes, release |
| ``qa`` | examiner QA for supervisors |
| ``gallery`` | gallery subjects and photos |
| ``enrolment`` | single and bulk enrolment |
| ``audit`` | audit log, statistics |
| ``administration`` | users, roles (biometric ones requested), certifications, lists, galleries, sharing |
| ``approvals`` | separation of duties: requests waiting for a second person, certifications recorded |
| ``regimes`` | legal regimes per agency, exigent searches and their ratification |
| ``agencies`` | the system operator's agencies and system roles; partner accesses to the agency's records |
| ``destruction`` | destruction requests, certificates (JSON and PDF) |
| ``lawful`` | the lawful gallery: legal authorities, records awaiting review, dispositions, policy, criteria |
| ``transparency`` | outcomes of released leads; the public transparency report (page, CSV, PDF) |
| ``live`` | live watch-list deployments: watch lists, preparation, authorisation, cameras, alert review, report |
| ``compare`` | (no routes) the data of the comparison view, shared by analysts, verifiers and supervisors |

Every page authenticates with the session cookie and calls the same domain services as the REST API and the CLI:
authorisation, validation and audit are the services'. CSRF is checked for every state-changing page route by a
router-level dependency (:func:`faceleads.web.security.csrf_protect`) that :func:`faceleads.web.app.create_app`
attaches when it includes these routers, so no route can forget it.
"""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """The page routers of every area (imported here: they import the app's dependencies)."""
    from faceleads.web.pages import (
        account,
        administration,
        agencies,
        approvals,
        audit,
        cases,
        destruction,
        enrolment,
        gallery,
        home,
        lawful,
        live,
        probes,
        qa,
        regimes,
        searches,
        transparency,
        verification,
    )

    return [home.router, account.router, cases.router, probes.router, searches.router, verification.router,
            gallery.router, enrolment.router, audit.router, qa.router, administration.router, approvals.router,
            regimes.router, agencies.router, destruction.router, lawful.router, transparency.router,
            live.router]  # fmt: skip
