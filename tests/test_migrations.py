"""The Alembic migrations are the schema: they build exactly the tables the models declare, with the audit triggers,
on SQLite and on PostgreSQL, and several processes starting at once migrate one at a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from faceleads.db import create_schema, make_engine
from faceleads.migrations import MIGRATIONS_DIR, alembic_config
from faceleads.models import Base
from tests import dbs


def _empty_database(tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or a new PostgreSQL database without any table."""
    return dbs.new_database("empty", migrated=False) if dbs.ON_POSTGRES else f"sqlite:///{tmp_path / 'm.db'}"


def _head() -> str:
    """The newest revision of the migration scripts (one head: the chain has no branches)."""
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"the migrations must form one chain, heads: {heads}"
    return str(heads[0])


def test_the_migrations_form_one_chain() -> None:
    """Every branch's migration is re-chained after the previous head when merged: one line, base to head."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    chain = [revision.revision for revision in script.walk_revisions()][::-1]
    assert chain == ["0001", "live_1", "hardening_1", "ui_1", "accuracy_1", "regimes_1", "transparency_1",
                     "platform_1", "platform_2"]
    assert _head() == "platform_2"


def test_migrations_match_the_models_and_are_idempotent(tmp_path: Path) -> None:
    engine = make_engine(_empty_database(tmp_path))
    create_schema(engine)
    create_schema(engine)  # a second upgrade is a no-op
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True})
        differences = compare_metadata(context, Base.metadata)
        assert differences == [], f"models and migrations differ: {differences}"
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_one_chain_of_migrations() -> None:
    """One head, one base: migrations from different branches were re-chained, not left as parallel heads."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert len(script.get_heads()) == 1 and len(script.get_bases()) == 1


def test_audit_log_is_append_only_in_the_database(tmp_path: Path) -> None:
    engine = make_engine(_empty_database(tmp_path))
    create_schema(engine)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            query = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"
            expected = {"audit_log_no_change"}
        else:
            query = "SELECT name FROM sqlite_master WHERE type='trigger'"
            expected = {"audit_log_no_update", "audit_log_no_delete"}
        triggers = {row[0] for row in connection.execute(text(query))}
    assert expected <= triggers
    from faceleads.core.audit import record
    from faceleads.core.uow import transaction
    from faceleads.db import make_session_factory

    with transaction(make_session_factory(engine)) as session:
        record(session, None, "setting_change", "setting:test")
    for statement in ("DELETE FROM audit_log", "UPDATE audit_log SET outcome = 'forged'"):
        with engine.begin() as connection, pytest.raises(Exception, match="append-only"):
            connection.execute(text(statement))
    engine.dispose()


_MIGRATOR = """
import sys
from faceleads.db import create_schema, make_engine
engine = make_engine(sys.argv[1])
create_schema(engine)
engine.dispose()
"""


def test_servers_starting_together_migrate_one_at_a_time(tmp_path: Path) -> None:
    """Four processes upgrade one empty database at the same moment: one migrates, the others wait for it and
    then find the schema at head (without the lock they fail on tables that already exist)."""
    url = _empty_database(tmp_path)
    procs = [
        subprocess.Popen([sys.executable, "-c", _MIGRATOR, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    results = [(p.wait(timeout=300), p.stderr.read().decode() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0, 0, 0, 0], [err[-1500:] for _, err in results]
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [_head()]
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


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
