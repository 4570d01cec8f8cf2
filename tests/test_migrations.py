"""The Alembic migrations are the schema: they build exactly the tables the models declare, with the audit triggers."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from faceleads.db import create_schema, make_engine
from faceleads.models import Base


def test_migrations_match_the_models_and_are_idempotent(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    create_schema(engine)
    create_schema(engine)  # a second upgrade is a no-op
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True})
        differences = compare_metadata(context, Base.metadata)
        assert differences == [], f"models and migrations differ: {differences}"
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "regimes_1"
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_audit_log_is_append_only_in_the_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    create_schema(engine)
    with engine.connect() as connection:
        triggers = {row[0] for row in connection.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'"))}
    assert {"audit_log_no_update", "audit_log_no_delete"} <= triggers
    from faceleads.core.audit import record
    from faceleads.core.uow import transaction
    from faceleads.db import make_session_factory

    with transaction(make_session_factory(engine)) as session:
        record(session, None, "setting_change", "setting:test")
    for statement in ("DELETE FROM audit_log", "UPDATE audit_log SET outcome = 'forged'"):
        with engine.begin() as connection, pytest.raises(Exception, match="append-only"):
            connection.execute(text(statement))
