"""search-index change feed: index_changes (written by triggers) and index_followers

Revision ID: platform_1
Revises: transparency_1
Create Date: 2026-12-01 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "platform_1"
down_revision = "transparency_1"
branch_labels = None
depends_on = None

# The feed is written by triggers inside the writing transaction, so every writer (enrolment, reindex, destruction,
# restore, direct SQL) feeds it and a rolled-back transaction leaves nothing. SQL is frozen here on purpose: a
# migration must keep doing what it did when it was written.
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER index_feed_template_insert AFTER INSERT ON face_templates BEGIN "
    "INSERT INTO index_changes (kind, ref_id) VALUES ('template_insert', NEW.id); END",
    "CREATE TRIGGER index_feed_template_update AFTER UPDATE OF embedding, subject_id, gallery_id, model_version "
    "ON face_templates BEGIN INSERT INTO index_changes (kind, ref_id) VALUES ('template_update', NEW.id); END",
    "CREATE TRIGGER index_feed_template_delete AFTER DELETE ON face_templates BEGIN "
    "INSERT INTO index_changes (kind, ref_id) VALUES ('template_delete', OLD.id); END",
    "CREATE TRIGGER index_feed_subject_status AFTER UPDATE OF status ON subjects "
    "WHEN OLD.status IS NOT NEW.status BEGIN "
    "INSERT INTO index_changes (kind, ref_id) VALUES ('subject', NEW.id); END",
)
_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS index_feed_template_insert",
    "DROP TRIGGER IF EXISTS index_feed_template_update",
    "DROP TRIGGER IF EXISTS index_feed_template_delete",
    "DROP TRIGGER IF EXISTS index_feed_subject_status",
)
# pg_notify is delivered at commit (and only then), waking the processes that LISTEN on the channel.
_POSTGRES_TRIGGERS = (
    """CREATE OR REPLACE FUNCTION index_feed_template() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO index_changes (kind, ref_id) VALUES ('template_insert', NEW.id);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO index_changes (kind, ref_id) VALUES ('template_update', NEW.id);
    ELSE
        INSERT INTO index_changes (kind, ref_id) VALUES ('template_delete', OLD.id);
    END IF;
    PERFORM pg_notify('faceleads_index', '');
    RETURN NULL;
END $$""",
    "CREATE TRIGGER index_feed_template AFTER INSERT OR DELETE OR UPDATE OF embedding, subject_id, gallery_id, "
    "model_version ON face_templates FOR EACH ROW EXECUTE FUNCTION index_feed_template()",
    """CREATE OR REPLACE FUNCTION index_feed_subject() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO index_changes (kind, ref_id) VALUES ('subject', NEW.id);
        PERFORM pg_notify('faceleads_index', '');
    END IF;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER index_feed_subject AFTER UPDATE OF status ON subjects "
    "FOR EACH ROW EXECUTE FUNCTION index_feed_subject()",
)
_POSTGRES_DROP = (
    "DROP TRIGGER IF EXISTS index_feed_template ON face_templates",
    "DROP TRIGGER IF EXISTS index_feed_subject ON subjects",
    "DROP FUNCTION IF EXISTS index_feed_template()",
    "DROP FUNCTION IF EXISTS index_feed_subject()",
)


def _statements(sqlite: tuple[str, ...], postgres: tuple[str, ...]) -> tuple[str, ...]:
    dialect = op.get_bind().dialect.name
    return sqlite if dialect == "sqlite" else postgres if dialect == "postgresql" else ()


def upgrade() -> None:
    op.create_table(
        "index_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_changes")),
        sa.UniqueConstraint("seq", name=op.f("uq_index_changes_seq")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_index_changes_unsequenced",
        "index_changes",
        ["id"],
        unique=False,
        sqlite_where=sa.text("seq IS NULL"),
        postgresql_where=sa.text("seq IS NULL"),
    )
    op.create_table(
        "index_followers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_followers")),
    )
    op.create_index(op.f("ix_index_followers_heartbeat_at"), "index_followers", ["heartbeat_at"], unique=False)
    for statement in _statements(_SQLITE_TRIGGERS, _POSTGRES_TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(_SQLITE_DROP, _POSTGRES_DROP):
        op.execute(statement)
    op.drop_index(op.f("ix_index_followers_heartbeat_at"), table_name="index_followers")
    op.drop_table("index_followers")
    op.drop_index("ix_index_changes_unsequenced", table_name="index_changes")
    op.drop_table("index_changes")
