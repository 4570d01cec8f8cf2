"""examiner workflow: request priority, exigent purposes, reason codes, the verifier's own conclusion and checklist,
verification start time, stored lead report PDFs

Revision ID: ui_1
Revises: hardening_1
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ui_1"
down_revision = "hardening_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exigent", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("case_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.String(length=16), server_default="routine", nullable=False))
    with op.batch_alter_table("adjudications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason_code", sa.String(length=32), nullable=True))
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verifier_conclusion", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("verification_checklist", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("verification_started_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("lead_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("store_address", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lead_reports", schema=None) as batch_op:
        batch_op.drop_column("store_address")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("verification_started_at")
        batch_op.drop_column("verification_checklist")
        batch_op.drop_column("verifier_conclusion")
    with op.batch_alter_table("adjudications", schema=None) as batch_op:
        batch_op.drop_column("reason_code")
    with op.batch_alter_table("case_requests", schema=None) as batch_op:
        batch_op.drop_column("priority")
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.drop_column("exigent")
