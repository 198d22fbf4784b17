"""runs listed by requestor: an index for the filter

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 01:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_ns_requestor_created",
        "runs",
        ["namespace_id", "requestor", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_runs_ns_requestor_created", table_name="runs")
