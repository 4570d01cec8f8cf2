"""The audit log (filters, export, chain verification) and the statistics pages."""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from faceleads.core.policy import Action
from faceleads.governance.audit_log import regime_totals
from faceleads.web.api.audit_routes import audit_page, export, statistics, verify
from faceleads.web.deps import PageScope
from faceleads.web.pages.common import page_router
from faceleads.web.render import render

router = page_router()


@router.get("/audit", response_class=HTMLResponse)
def audit_log_page(
    request: Request,
    scope: PageScope,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    username: Annotated[str | None, Query(max_length=150)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=32)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """The audit log of the agency with filters and a verify button."""
    page = audit_page(scope, since=since, until=until, username=username, action=action,
                      outcome=outcome, limit=100, offset=offset)  # fmt: skip
    filters = {"since": since or "", "until": until or "", "username": username or "", "action": action or "",
               "outcome": outcome or ""}  # fmt: skip
    return render(request, "audit.html", {"page": page, "filters": filters, "offset": offset, "verified": None,
                                          "can_verify": scope.may(Action.AUDIT_VERIFY)})  # fmt: skip


@router.post("/audit/verify", response_class=HTMLResponse)
def audit_verify_page(request: Request, scope: PageScope) -> Response:
    """Verify the hash chain and show the result."""
    result = verify(scope)
    page = audit_page(scope, limit=100) if scope.may(Action.AUDIT_READ, scope.actor.agency_id) else None
    return render(request, "audit.html", {"page": page, "filters": {}, "offset": 0, "verified": result,
                                          "can_verify": True})  # fmt: skip


@router.get("/api-export/audit.csv")
def audit_export_page(
    scope: PageScope,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    username: Annotated[str | None, Query(max_length=150)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The audit export (CSV) for the page's filters; the export is audited."""
    return export(scope, "csv", since or None, until or None, username or None, action or None)


def bar_chart(rows: list[dict[str, Any]], key: str, label: str) -> str:
    """A small server-side SVG bar chart of ``key`` per month (no script, no external library)."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["month"]] = totals.get(row["month"], 0) + int(row[key])
    months = sorted(totals)[-12:]
    width, height, pad = 560, 180, 28
    peak = max([totals[m] for m in months] + [1])
    bar = (width - 2 * pad) / max(len(months), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(label)}">',
             f'<text x="{pad}" y="14" class="chart-title">{html.escape(label)}</text>']  # fmt: skip
    for i, month in enumerate(months):
        value = totals[month]
        h = (height - 2 * pad - 10) * value / peak
        x = pad + i * bar + 4
        y = height - pad - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar - 8, 2):.1f}" height="{h:.1f}" class="bar">'
                     f"<title>{html.escape(month)}: {value}</title></rect>")  # fmt: skip
        parts.append(f'<text x="{x + (bar - 8) / 2:.1f}" y="{height - pad + 14}" class="axis" text-anchor="middle">'
                     f"{html.escape(month[2:])}</text>")  # fmt: skip
        parts.append(f'<text x="{x + (bar - 8) / 2:.1f}" y="{y - 3:.1f}" class="value" text-anchor="middle">{value}'
                     "</text>")  # fmt: skip
    if not months:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="axis">no data yet</text>')
    parts.append("</svg>")
    return "".join(parts)


@router.get("/statistics", response_class=HTMLResponse)
def statistics_page(
    request: Request,
    scope: PageScope,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Searches, leads and outcomes by agency, legal regime, offence and month, with charts and totals by regime."""
    rows = statistics(scope, since, until)
    # bar_chart escapes every text it writes, so its SVG is safe to insert as markup.
    charts = [Markup(bar_chart(rows, "searches", "Searches per month")),
              Markup(bar_chart(rows, "leads", "Possible leads per month")),
              Markup(bar_chart(rows, "verified_leads", "Verified leads per month"))]  # fmt: skip
    return render(request, "statistics.html", {"rows": rows, "charts": charts, "since": since or "",
                                               "until": until or "", "by_regime": regime_totals(rows)})  # fmt: skip
