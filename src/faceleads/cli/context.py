"""Who the command line acts as, and the shared runtime it works with.

:func:`cli_actor` is the single place where a CLI command obtains its :class:`Actor`. Until CLI sign-in sessions
are wired in, it returns a dev-mode system actor for ``--agency CODE`` (default ``FACELEADS_AGENCY``) holding the
roles the gallery commands need, and refuses outside dev mode.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from faceleads import identifiers
from faceleads.config import Settings, get_settings
from faceleads.core.actor import Actor, Role
from faceleads.core.uow import transaction
from faceleads.db import Agency
from faceleads.errors import PermissionDenied
from faceleads.gallery.runtime import GalleryRuntime

DEV_ROLES: frozenset[Role] = frozenset({Role.RECORDS_OFFICER, Role.ANALYST, Role.ADMINISTRATOR, Role.SUPERVISOR})

_runtime: GalleryRuntime | None = None


def runtime(settings: Settings | None = None) -> GalleryRuntime:
    """The process-wide gallery runtime (created on first use)."""
    global _runtime
    if _runtime is None:
        _runtime = GalleryRuntime(settings or get_settings())
    return _runtime


def cli_actor(rt: GalleryRuntime, agency_code: str | None = None, roles: Iterable[Role] | None = None) -> Actor:
    """The actor a CLI command runs as.

    A signed-in user (``faceleads login``) acts as themselves. Without a sign-in, and only in dev mode, the
    command acts as a system actor of agency ``agency_code`` (default ``Settings.agency``, created on first use)
    with ``roles`` (default :data:`DEV_ROLES`). Outside dev mode an unsigned command is refused.
    """
    from faceleads.cli.security_cmds import current_actor, stored_token

    if stored_token(rt.settings) or not rt.settings.is_dev:
        actor = current_actor(rt.settings)
        if agency_code and identifiers.agency_code(agency_code) != actor.agency_code.upper():
            raise PermissionDenied(
                f"you are signed in for agency {actor.agency_code}; --agency {agency_code} is not yours"
            )
        return actor
    code = identifiers.agency_code(agency_code or rt.settings.agency)
    with transaction(rt.session_factory) as session:
        agency = session.scalars(select(Agency).where(Agency.code == code)).first()
        if agency is None:
            agency = Agency(code=code, name=code)
            session.add(agency)
            session.flush()
        agency_id = agency.id
    return Actor(
        username=f"dev-system@{code}",
        agency_id=agency_id,
        roles=frozenset(roles) if roles is not None else DEV_ROLES,
        user_id=None,
        agency_code=code,
    )
