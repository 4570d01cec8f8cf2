"""face templates: per-model member templates of fused templates, and the detection path that found the face

Revision ID: accuracy_1
Revises: hardening_1
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "accuracy_1"
down_revision = "ui_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("face_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("member_templates", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(
            sa.Column("found_by", sa.String(length=16), nullable=False, server_default=sa.text("'detector'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("face_templates", schema=None) as batch_op:
        batch_op.drop_column("found_by")
        batch_op.drop_column("member_templates")
