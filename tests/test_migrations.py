"""The Alembic migrations are the schema: they build exactly the tables the models declare, with the audit triggers."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from faceleads.db import create_schema, make_engine
from faceleads.migrations import alembic_config
from faceleads.models import Base


def _head() -> str:
    """The newest revision of the migration scripts (one head: the chain has no branches)."""
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"the migrations must form one chain, heads: {heads}"
    return str(heads[0])


def test_the_migrations_form_one_chain() -> None:
    """Every branch's migration is re-chained after the previous head when merged: one line, base to head."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    chain = [revision.revision for revision in script.walk_revisions()][::-1]
    assert chain == ["0001", "live_1", "hardening_1", "ui_1", "accuracy_1", "regimes_1", "transparency_1"]
    assert _head() == "transparency_1"


def test_migrations_match_the_models_and_are_idempotent(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    create_schema(engine)
    create_schema(engine)  # a second upgrade is a no-op
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True})
        differences = compare_metadata(context, Base.metadata)
        assert differences == [], f"models and migrations differ: {differences}"
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
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


def test_the_regimes_migration_turns_exigent_purposes_into_the_exigent_regime(tmp_path: Path) -> None:
    """One notion of exigent: a database just before regimes_1 with a purpose flagged exigent comes out of
    regimes_1 with that purpose in the exigent regime for every agency, the flag column gone, the other data kept."""
    from faceleads.migrations import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "accuracy_1")
    with engine.begin() as connection:
        for code in ("AGA", "AGB"):
            connection.execute(text("INSERT INTO agencies (code, name, created_at) VALUES (:c, :c, '2026-01-01')"),
                               {"c": code})  # fmt: skip
        for code, exigent in (("criminal-investigation", False), ("threat-to-life", True)):
            connection.execute(text(
                "INSERT INTO purposes (code, title, requires_authorisation, exigent, active, created_at) "
                "VALUES (:c, :c, 0, :e, 1, '2026-01-01')"), {"c": code, "e": exigent})  # fmt: skip
    upgrade(engine)
    with engine.connect() as connection:
        assert "exigent" not in {c["name"] for c in inspect(connection).get_columns("purposes")}
        rows = connection.execute(text(
            "SELECT a.code, p.code, r.regime FROM purpose_regimes r JOIN agencies a ON a.id = r.agency_id "
            "JOIN purposes p ON p.id = r.purpose_id ORDER BY a.code")).all()  # fmt: skip
        assert [tuple(r) for r in rows] == [("AGA", "threat-to-life", "exigent"), ("AGB", "threat-to-life", "exigent")]
        assert connection.execute(text("SELECT count(*) FROM purposes")).scalar() == 2
