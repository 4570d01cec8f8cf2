"""legal regimes, separation of duties, oversight (branch regimes)

- ``access_approvals``: changes that give access to biometric content, waiting for a second person;
  ``users.created_by``.
- ``agency_regime_settings``, ``purpose_regimes``: per-agency legal regimes; ``case_requests.regime``;
  ``case_searches.regime/ratify_by/ratification/ratification_id`` (exigent ratification);
  ``case_authorisations.case_search_id/expires_at/gallery_ids`` (scope and expiry of authorisations).
- ``partner_accesses``: reads of an agency's records by partner agencies.

- One notion of "exigent": the ``purposes.exigent`` flag (revision ui_1: "its requests are threat-to-life
  priority") is replaced by the per-agency regime. Every purpose flagged exigent is put in the exigent regime for
  every agency that exists now (``purpose_regimes``, updated_by ``migration regimes_1``), then the column is dropped.
  Requests already opened keep their regime (investigative) and their stored priority; a new search on such a
  request is refused with a message saying that the purpose moved to the exigent regime (open a new request), as
  after any regime change. The downgrade restores the flag from the exigent regime rows.

On SQLite, columns with a foreign key are added with ``ALTER TABLE ... ADD COLUMN ... REFERENCES`` rather than by
rebuilding the table, and ``purposes.exigent`` is dropped with ``ALTER TABLE ... DROP COLUMN``: rebuilding ``users``
or ``purposes`` would drop them, and with foreign keys on that reaches every table referring to them. Purpose
authorisations recorded before expiries existed get one (their time plus 7 days), so that none authorises
open-endedly.

Revision ID: regimes_1
Revises: ui_1
Create Date: 2026-12-01 15:05:48.491004
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

LEGACY_AUTHORISATION_DAYS = 7

revision = "regimes_1"
down_revision = "accuracy_1"
branch_labels = None
depends_on = None


def _add_fk_column(table: str, column: str, target: str, name: str) -> None:
    """Add a nullable integer column referencing ``target.id`` without rebuilding ``table`` on SQLite."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER CONSTRAINT {name} REFERENCES {target} (id)")
        return
    op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
    op.create_foreign_key(name, table, target, [column], ["id"])


def _backfill_authorisation_expiry() -> None:
    """Give every purpose authorisation recorded before expiries existed one: its time plus 7 days."""
    bind = op.get_bind()
    table = sa.table(
        "case_authorisations",
        sa.column("id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    rows = bind.execute(sa.select(table.c.id, table.c.at).where(table.c.kind == "purpose")).all()
    for row_id, at in rows:
        if not isinstance(at, datetime):
            continue
        bind.execute(
            table.update().where(table.c.id == row_id).values(expires_at=at + timedelta(days=LEGACY_AUTHORISATION_DAYS))
        )


def _purposes_table() -> sa.TableClause:
    return sa.table("purposes", sa.column("id", sa.Integer()), sa.column("exigent", sa.Boolean()))


def _purpose_regimes_table() -> sa.TableClause:
    return sa.table(
        "purpose_regimes",
        sa.column("agency_id", sa.Integer()),
        sa.column("purpose_id", sa.Integer()),
        sa.column("regime", sa.String()),
        sa.column("updated_by", sa.String()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )


def _exigent_flags_to_regimes() -> None:
    """Every purpose flagged exigent (ui_1) goes in the exigent regime for every agency; then the flag goes."""
    bind = op.get_bind()
    purposes = _purposes_table()
    flagged = [row[0] for row in bind.execute(sa.select(purposes.c.id).where(purposes.c.exigent == sa.true()))]
    agencies = [row[0] for row in bind.execute(sa.text("SELECT id FROM agencies"))]
    now = datetime.now(UTC)
    rows = [{"agency_id": a, "purpose_id": p, "regime": "exigent", "updated_by": "migration regimes_1",
             "updated_at": now} for p in flagged for a in agencies]  # fmt: skip
    if rows:
        op.bulk_insert(_purpose_regimes_table(), rows)
    if bind.dialect.name == "sqlite":
        op.execute("ALTER TABLE purposes DROP COLUMN exigent")
    else:
        op.drop_column("purposes", "exigent")


def _exigent_regimes_to_flags() -> None:
    """Downgrade: the flag back on every purpose some agency put in the exigent regime."""
    bind = op.get_bind()
    op.add_column("purposes", sa.Column("exigent", sa.Boolean(), server_default=sa.false(), nullable=False))
    regimes = _purpose_regimes_table()
    exigent = {row[0] for row in bind.execute(sa.select(regimes.c.purpose_id).where(regimes.c.regime == "exigent"))}
    purposes = _purposes_table()
    for purpose_id in sorted(exigent):
        bind.execute(purposes.update().where(purposes.c.id == purpose_id).values(exigent=True))


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "partner_accesses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_agency_id", sa.Integer(), nullable=False),
        sa.Column("accessor_agency_id", sa.Integer(), nullable=False),
        sa.Column("accessor_user_id", sa.Integer(), nullable=True),
        sa.Column("accessor_username", sa.String(length=150), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_ref", sa.String(length=300), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=True),
        sa.Column("gallery_id", sa.Integer(), nullable=True),
        sa.Column("case_ref", sa.String(length=100), nullable=True),
        sa.Column("purpose", sa.String(length=100), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_accesses")),
    )
    with op.batch_alter_table("partner_accesses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_accesses_accessor_agency_id"), ["accessor_agency_id"], unique=False
        )
        batch_op.create_index("ix_partner_accesses_owner_at", ["owner_agency_id", "at"], unique=False)

    op.create_table(
        "agency_regime_settings",
        sa.Column("agency_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("exigent_window_hours", sa.Integer(), nullable=False),
        sa.Column("authorisation_hours", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=150), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_agency_regime_settings_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("agency_id", name=op.f("pk_agency_regime_settings")),
    )
    op.create_table(
        "purpose_regimes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("purpose_id", sa.Integer(), nullable=False),
        sa.Column("regime", sa.String(length=32), nullable=False),
        sa.Column("updated_by", sa.String(length=150), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_purpose_regimes_agency_id_agencies")),
        sa.ForeignKeyConstraint(["purpose_id"], ["purposes.id"], name=op.f("fk_purpose_regimes_purpose_id_purposes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purpose_regimes")),
        sa.UniqueConstraint("agency_id", "purpose_id", name="uq_purpose_regimes_agency_purpose"),
    )
    with op.batch_alter_table("purpose_regimes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_purpose_regimes_agency_id"), ["agency_id"], unique=False)

    op.create_table(
        "access_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("target_user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("cert_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cert_reference", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("requested_by_username", sa.String(length=150), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_by_username", sa.String(length=150), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("result_ref", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_access_approvals_agency_id_agencies")),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], name=op.f("fk_access_approvals_decided_by_users")),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"], name=op.f("fk_access_approvals_requested_by_users")),
        sa.ForeignKeyConstraint(
            ["target_user_id"], ["users.id"], name=op.f("fk_access_approvals_target_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_approvals")),
    )
    with op.batch_alter_table("access_approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_approvals_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_approvals_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_approvals_target_user_id"), ["target_user_id"], unique=False)

    _add_fk_column(
        "case_authorisations", "case_search_id", "case_searches", "fk_case_authorisations_case_search_id_case_searches"
    )
    with op.batch_alter_table("case_authorisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("gallery_ids", sa.JSON(), nullable=True))
    _backfill_authorisation_expiry()

    with op.batch_alter_table("case_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("regime", sa.String(length=32), nullable=False, server_default="investigative"))

    with op.batch_alter_table("case_searches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("regime", sa.String(length=32), nullable=False, server_default="investigative"))
        batch_op.add_column(sa.Column("ratify_by", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ratification", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("ratification_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_case_searches_ratification"), ["ratification"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_searches_regime"), ["regime"], unique=False)

    _add_fk_column("users", "created_by", "users", "fk_users_created_by_users")

    # ### end Alembic commands ###
    _exigent_flags_to_regimes()


def downgrade() -> None:
    _exigent_regimes_to_flags()
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_users_created_by_users"), type_="foreignkey")
        batch_op.drop_column("created_by")

    with op.batch_alter_table("case_searches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_searches_regime"))
        batch_op.drop_index(batch_op.f("ix_case_searches_ratification"))
        batch_op.drop_column("ratification_id")
        batch_op.drop_column("ratification")
        batch_op.drop_column("ratify_by")
        batch_op.drop_column("regime")

    with op.batch_alter_table("case_requests", schema=None) as batch_op:
        batch_op.drop_column("regime")

    with op.batch_alter_table("case_authorisations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_case_authorisations_case_search_id_case_searches"), type_="foreignkey")
        batch_op.drop_column("gallery_ids")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("case_search_id")

    with op.batch_alter_table("access_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_approvals_target_user_id"))
        batch_op.drop_index(batch_op.f("ix_access_approvals_status"))
        batch_op.drop_index(batch_op.f("ix_access_approvals_agency_id"))

    op.drop_table("access_approvals")
    with op.batch_alter_table("purpose_regimes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purpose_regimes_agency_id"))

    op.drop_table("purpose_regimes")
    op.drop_table("agency_regime_settings")
    with op.batch_alter_table("partner_accesses", schema=None) as batch_op:
        batch_op.drop_index("ix_partner_accesses_owner_at")
        batch_op.drop_index(batch_op.f("ix_partner_accesses_accessor_agency_id"))

    op.drop_table("partner_accesses")
    # ### end Alembic commands ###
