"""The unit of work: one database transaction per use case, committed on success and rolled back on any error.

A domain service opens one :func:`transaction` for its state change *and* the audit entry that records it, so the
entry commits, or rolls back, with the change (``faceleads.core.audit.record``). Refusals are recorded in their own
short transaction (``record_now``) so that they survive the caller's rollback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error (no half-written records)."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
