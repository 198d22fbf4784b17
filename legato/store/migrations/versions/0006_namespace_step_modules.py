"""the step modules a namespace may call, the namespaces a worker serves

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _json_list(name: str) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        server_default=sa.text("'[]'"),
        nullable=False,
    )


def upgrade() -> None:
    with op.batch_alter_table("namespaces", schema=None) as batch_op:
        batch_op.add_column(_json_list("step_modules"))
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(_json_list("namespaces"))


def downgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("namespaces")
    with op.batch_alter_table("namespaces", schema=None) as batch_op:
        batch_op.drop_column("step_modules")
