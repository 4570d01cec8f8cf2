"""Small helpers of the live tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from faceleads.db import utcnow
from faceleads.live import deployments as d
from tests.live.conftest import LiveEnv


def deployment_input(env: LiveEnv, **overrides: Any) -> d.DeploymentInput:
    now = utcnow()
    values: dict[str, Any] = {
        "watchlist_id": env.watchlist_id,
        "location": "High Street, outside the station",
        "legal_basis": "Common law policing powers; force LFR policy v3 s.4",
        "purpose": "Locate people wanted on warrant for violent offences at the hot spot",
        "start_at": now - timedelta(seconds=5),
        "end_at": now + timedelta(hours=1),
        "cameras": [d.CameraInput("north", str(env.video))],
        "officers": ["officer"],
        "threshold": 0.40,
        "signage_confirmed": True,
        "signage_note": "A-frame signs at both ends of the street",
    }
    values.update(overrides)
    return d.DeploymentInput(**values)


def authorised(env: LiveEnv, *, end_in: timedelta | None = None, **overrides: Any) -> d.DeploymentInfo:
    """A deployment prepared by the analyst and authorised by a supervisor."""
    if end_in is not None:
        overrides["end_at"] = utcnow() + end_in
    info = d.create_deployment(env.rt, env.actors["analyst"], deployment_input(env, **overrides))
    return d.authorise_deployment(env.rt, env.actors["sup1"], info.id, "proportionate: see briefing")


def at(moment: datetime) -> str:
    return moment.isoformat()
