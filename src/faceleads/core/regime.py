"""The legal regimes a use of facial recognition falls under, and the one rule every authorisation obeys.

- ``investigative`` (the default): a registered case, an offence from the agency's approved list and a
  justification; a purpose marked as needing it also needs a supervisor's prior authorisation.
- ``exigent`` (threat to life, victim identification): an analyst may search at once with a declared reason; a
  supervisor must ratify the search within the agency's window (default 48 h), or it is flagged and its candidates
  are locked.
- ``live_deployment``: live watch-list deployments, each authorised for a place, a watch list and a few hours
  (``faceleads.live``). The live watch-list purpose (:data:`LIVE_PURPOSE`, the purpose galleries list for their
  subjects to go on a watch list) is in this regime for every agency, whatever was administered: it never serves a
  retrospective search.

Which purposes belong to which regime is administered per agency (``faceleads.casework.regimes``); other domains
(e.g. live deployments) use the same vocabulary and :func:`in_force`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum


class Regime(StrEnum):
    """A legal regime (see the module docstring)."""

    INVESTIGATIVE = "investigative"
    EXIGENT = "exigent"
    LIVE_DEPLOYMENT = "live_deployment"


DEFAULT_REGIME = Regime.INVESTIGATIVE

#: The purpose of live watch-list deployments (galleries and sharing agreements list it for their subjects to be put
#: on a watch list). Its regime is fixed: :func:`fixed_regime`.
LIVE_PURPOSE = "live-watchlist"


def fixed_regime(purpose_code: str) -> Regime | None:
    """The regime a purpose has by definition, for every agency (None: the agency administers it)."""
    return Regime.LIVE_DEPLOYMENT if purpose_code == LIVE_PURPOSE else None


def parse_regime(value: object) -> Regime:
    """A regime from its name; ValueError naming the choices otherwise."""
    text = value.strip().lower().replace("-", "_") if isinstance(value, str) else ""
    try:
        return Regime(text)
    except ValueError:
        raise ValueError(f"unknown regime {value!r}: choose from {', '.join(r.value for r in Regime)}") from None


def in_force(expires_at: datetime | None, now: datetime) -> bool:
    """Whether an authorisation expiring at ``expires_at`` still works at ``now`` (checked at use, never by a job).

    An authorisation without an expiry (recorded before expiries existed) is treated as expired: nothing is
    authorised open-endedly.
    """
    if expires_at is None:
        return False
    if expires_at.tzinfo is None:  # SQLite hands back naive UTC datetimes
        expires_at = expires_at.replace(tzinfo=UTC)
    return now < expires_at
