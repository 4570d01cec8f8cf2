"""encrypted template geometry: face_templates.geometry; box and landmarks become nullable legacy columns

The clear-text box and landmarks of existing rows are sealed into ``geometry`` (AES-GCM under the subject's key)
and erased at the first start after this upgrade by ``faceleads.gallery.geometry.seal_legacy_geometry``: a
migration has no access to the keystore.

Revision ID: hardening_1
Revises: live_1
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "hardening_1"
down_revision = "live_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("face_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("geometry", sa.LargeBinary(), nullable=True))
        batch_op.alter_column("box", existing_type=sa.JSON(), nullable=True)
        batch_op.alter_column("landmarks", existing_type=sa.JSON(), nullable=True)
        batch_op.create_index(
            "ix_face_templates_clear_geometry",
            ["id"],
            unique=False,
            sqlite_where=sa.text("box IS NOT NULL OR landmarks IS NOT NULL"),
            postgresql_where=sa.text("box IS NOT NULL OR landmarks IS NOT NULL"),
        )


def downgrade() -> None:
    # Sealed geometry cannot be decrypted here (no keys): a downgrade needs the rows re-filled first.
    with op.batch_alter_table("face_templates", schema=None) as batch_op:
        batch_op.drop_index("ix_face_templates_clear_geometry")
        batch_op.alter_column("landmarks", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("box", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("geometry")
