"""After a deployment: its report (web, PDF, JSON), and per-agency statistics for the transparency report.

The report holds counts and decisions only (no face): duration, frames processed and dropped, faces detected, faces
passing (tracks), faces compared, alerts and the officers' decisions, the false alert rate per 1,000 faces passing
(alerts recorded as false, per 1,000 tracks), the frozen watch list's size and digest, the authorisation, and the
expected false alert rate the authorising officer was shown.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import func, select

from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.live.common import as_utc, close_if_due
from faceleads.live.deployments import build_info
from faceleads.live.models import AlertDecision, Deployment, DeploymentStatus, FrozenEntry, LiveAlert

NOTICE = ("Live facial recognition alerts are possible matches for an officer to review, never identifications; "
          "faces that matched nobody were discarded at once and are not in this report.")  # fmt: skip


def _rate_per_1000(count: int, base: int) -> float | None:
    return round(1000.0 * count / base, 4) if base else None


def report_data(rt: GalleryRuntime, actor: Actor, deployment_id: int) -> dict[str, Any]:
    """The report of one deployment of the actor's agency (it may still be running: figures so far)."""
    ref = f"live_deployment:{deployment_id}"
    enforce(rt.session_factory, actor, Action.LIVE_VIEW, ref, actor.agency_id)
    now = utcnow()
    with transaction(rt.session_factory) as session:
        dep = session.get(Deployment, deployment_id)
        if dep is None or dep.agency_id != actor.agency_id:
            from faceleads.errors import NotFound

            raise NotFound(f"no live deployment {deployment_id}")
        close_if_due(session, dep, now)
        info = build_info(session, dep, now)
        decisions = Counter(
            dict(
                session.execute(
                    select(LiveAlert.decision, func.count(LiveAlert.id))
                    .where(LiveAlert.deployment_id == dep.id)
                    .group_by(LiveAlert.decision)
                ).all()
            )
        )
        dropped = session.scalar(
            select(func.count(FrozenEntry.id)).where(FrozenEntry.deployment_id == dep.id,
                                                     FrozenEntry.dropped_at.is_not(None))
        )  # fmt: skip
        started = info.started_at
        ended = info.stopped_at or (min(now, info.end_at) if started else None)
        duration = (ended - started).total_seconds() if started and ended else 0.0
        cams = info.cameras
        totals = {k: sum(getattr(c, k) for c in cams) for k in
                  ("frames_read", "frames_processed", "frames_dropped", "faces", "faces_compared", "tracks",
                   "alerts")}  # fmt: skip
        alerts = sum(decisions.values())
        false_alerts = decisions.get(AlertDecision.FALSE_ALERT.value, 0)
        data: dict[str, Any] = {
            "deployment": info.to_json(),
            "generated_at": now.isoformat(),
            "generated_by": actor.username,
            "duration_s": round(duration, 1),
            "frames": totals["frames_processed"],
            "frames_read": totals["frames_read"],
            "frames_dropped": totals["frames_dropped"],
            "faces_detected": totals["faces"],
            "faces_passing": totals["tracks"],
            "faces_compared": totals["faces_compared"],
            "tracks": totals["tracks"],
            "alerts": alerts,
            "decisions": {d.value: decisions.get(d.value, 0) for d in AlertDecision},
            "false_alert_rate_per_1000_faces": _rate_per_1000(false_alerts, totals["tracks"]),
            "alert_rate_per_1000_faces": _rate_per_1000(alerts, totals["tracks"]),
            "expected_false_alerts_per_1000": info.expected_false_alerts_per_1000,
            "watchlist_frozen_size": info.frozen_size,
            "watchlist_frozen_sha256": info.frozen_sha256,
            "watchlist_entries_dropped": int(dropped or 0),
            "notice": NOTICE,
        }
        audit.record(session, actor, "live_report", ref, audit.Outcome.OK,
                     details={"alert_count": alerts, "status": info.status})  # fmt: skip
        return data


def render_pdf(data: dict[str, Any]) -> bytes:
    """The deployment report as PDF (reportlab), the notice on every page."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    dep = data["deployment"]
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(15 * mm, 10 * mm, NOTICE[:150])
        canvas.drawRightString(195 * mm, 10 * mm, f"deployment {dep['id']} - page {doc.page}")
        canvas.restoreState()

    def p(text: Any) -> Paragraph:
        return Paragraph(escape("" if text is None else str(text)), styles["BodyText"])

    def table(rows: list[tuple[str, Any]]) -> Table:
        t = Table([[p(k), p(v)] for k, v in rows], colWidths=[60 * mm, 110 * mm])
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke)]))  # fmt: skip
        return t

    d = data["decisions"]
    story = [
        Paragraph(f"Live deployment report - deployment {dep['id']} ({escape(dep['agency'])})", styles["Title"]),
        Paragraph(escape(NOTICE), styles["Italic"]),
        Spacer(1, 4 * mm),
        Paragraph("Authorisation", styles["Heading2"]),
        table(
            [
                ("Regime", dep["regime"]),
                ("Location", dep["location"]),
                ("Legal basis", dep["legal_basis"]),
                ("Purpose", dep["purpose"]),
                ("Authorised window", f"{dep['start_at']} to {dep['end_at']}"),
                ("Prepared by", dep["created_by"]),
                ("Authorised by", f"{dep['authorised_by']} at {dep['authorised_at']}"),
                ("Scope", dep["scope"]),
                ("Signage", f"confirmed: {dep['signage_confirmed']}. {dep['signage_note']}"),
                ("Alert threshold", dep["threshold"]),
                (
                    "Expected false alerts / 1,000 faces (shown at authorisation)",
                    data["expected_false_alerts_per_1000"],
                ),
                ("Calibration", dep["calibration_id"]),
                ("Alert officers", ", ".join(dep["officers"])),
            ]
        ),
        Paragraph("Watch list", styles["Heading2"]),
        table(
            [
                ("Watch list", f"{dep['watchlist_name']} (#{dep['watchlist_id']})"),
                ("Entries frozen at start", data["watchlist_frozen_size"]),
                ("SHA-256 of the frozen list", data["watchlist_frozen_sha256"]),
                ("Entries dropped during the deployment", data["watchlist_entries_dropped"]),
            ]
        ),
        Paragraph("Operation", styles["Heading2"]),
        table(
            [
                ("Status", dep["status"]),
                ("Started", f"{dep['started_at']} by {dep['started_by']}"),
                ("Stopped", f"{dep['stopped_at']} ({dep['stop_reason']}) by {dep['stopped_by']}"),
                ("Duration (s)", data["duration_s"]),
                ("Frames processed", data["frames"]),
                ("Frames dropped (processing behind)", data["frames_dropped"]),
                ("Faces detected (all frames)", data["faces_detected"]),
                ("Faces passing (tracks)", data["faces_passing"]),
                ("Faces compared (best shots)", data["faces_compared"]),
                ("Alerts", data["alerts"]),
                (
                    "Decisions",
                    f"confirmed {d['confirmed']}, false alert {d['false_alert']}, "
                    f"not actioned {d['not_actioned']}, pending {d['pending']}",
                ),
                ("False alert rate per 1,000 faces passing", data["false_alert_rate_per_1000_faces"]),
            ]
        ),
        Paragraph("Cameras", styles["Heading2"]),
        table(
            [
                (
                    f"{c['position']}. {c['name']}",
                    f"{c['source']} - {c['status']} {c['error']} - frames "
                    f"{c['frames_processed']}, dropped {c['frames_dropped']}, faces {c['faces']}, "
                    f"tracks {c['tracks']}, alerts {c['alerts']}",
                )
                for c in dep["cameras"]
            ]
        ),
        Spacer(1, 4 * mm),
        p(f"Generated {data['generated_at']} by {data['generated_by']}."),
    ]
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Live deployment {dep['id']}",
        author="faceleads",
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


@dataclass(frozen=True)
class AgencyLiveStats:
    """One agency's live deployments over a period (for the transparency report)."""

    agency: str
    deployments: int
    hours: float
    watchlist_entries: int  # summed over deployments (frozen size)
    frames: int
    faces_passing: int
    alerts: int
    confirmed: int
    false_alerts: int
    not_actioned: int
    pending: int

    def to_json(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["false_alert_rate_per_1000_faces"] = _rate_per_1000(self.false_alerts, self.faces_passing)
        return data


def deployment_statistics(
    rt: GalleryRuntime, actor: Actor, since: datetime, until: datetime, *, agency_code: str | None = None
) -> list[AgencyLiveStats]:
    """Per-agency statistics of deployments that started in ``[since, until)`` (auditors, supervisors, oversight).

    Counts only: nothing here identifies anyone seen or listed.
    """
    enforce(rt.session_factory, actor, Action.VIEW_STATISTICS, "live_statistics", None)
    from faceleads.live.models import DeploymentCamera

    start, end = as_utc(since), as_utc(until)
    now = utcnow()
    out: list[AgencyLiveStats] = []
    with transaction(rt.session_factory) as session:
        agencies = {a.id: a.code for a in session.scalars(select(Agency))}
        query = select(Deployment).where(Deployment.started_at.is_not(None), Deployment.started_at >= start,
                                         Deployment.started_at < end).order_by(Deployment.id)  # fmt: skip
        per: dict[int, list[Deployment]] = {}
        for dep in session.scalars(query):
            close_if_due(session, dep, now)
            per.setdefault(dep.agency_id, []).append(dep)
        for agency_id, deps in sorted(per.items(), key=lambda kv: agencies.get(kv[0], "")):
            code = agencies.get(agency_id, str(agency_id))
            if agency_code and code != agency_code.upper():
                continue
            ids = [d.id for d in deps]
            hours = 0.0
            for d in deps:
                assert d.started_at is not None
                stop = d.stopped_at or min(now, as_utc(d.end_at))
                hours += max(0.0, (as_utc(stop) - as_utc(d.started_at)).total_seconds() / 3600)
            frames, tracks = session.execute(
                select(func.coalesce(func.sum(DeploymentCamera.frames_processed), 0),
                       func.coalesce(func.sum(DeploymentCamera.tracks), 0))
                .where(DeploymentCamera.deployment_id.in_(ids))
            ).one()  # fmt: skip
            decisions = Counter(
                dict(
                    session.execute(
                        select(LiveAlert.decision, func.count(LiveAlert.id))
                        .where(LiveAlert.deployment_id.in_(ids))
                        .group_by(LiveAlert.decision)
                    ).all()
                )
            )
            out.append(AgencyLiveStats(
                agency=code, deployments=len(deps), hours=round(hours, 3),
                watchlist_entries=sum(d.frozen_size or 0 for d in deps), frames=int(frames), faces_passing=int(tracks),
                alerts=sum(decisions.values()), confirmed=decisions.get(AlertDecision.CONFIRMED.value, 0),
                false_alerts=decisions.get(AlertDecision.FALSE_ALERT.value, 0),
                not_actioned=decisions.get(AlertDecision.NOT_ACTIONED.value, 0),
                pending=decisions.get(AlertDecision.PENDING.value, 0),
            ))  # fmt: skip
        audit.record(session, actor, "live_statistics", "live_statistics", audit.Outcome.OK,
                     details={"since": start.isoformat(), "until": end.isoformat(),
                              "agency_count": len(out)})  # fmt: skip
    return out


__all__ = ["AgencyLiveStats", "DeploymentStatus", "deployment_statistics", "render_pdf", "report_data"]
