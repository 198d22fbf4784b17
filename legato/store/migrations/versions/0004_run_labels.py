"""run labels as rows, for indexed label filters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 02:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BACKFILL = {
    "sqlite": """
        INSERT INTO run_labels (run_id, key, value, namespace_id, created_at)
        SELECT runs.id, j.key, j.value, runs.namespace_id, runs.created_at
          FROM runs, json_each(runs.labels) AS j""",
    "postgresql": """
        INSERT INTO run_labels (run_id, key, value, namespace_id, created_at)
        SELECT runs.id, j.key, j.value, runs.namespace_id, runs.created_at
          FROM runs, jsonb_each_text(runs.labels) AS j""",
}


def upgrade() -> None:
    op.create_table(
        "run_labels",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column(
            "namespace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_labels_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_run_labels")),
    )
    op.create_index(
        "ix_run_labels_lookup",
        "run_labels",
        ["namespace_id", "key", "value", "created_at", "run_id"],
        unique=False,
    )
    op.execute(_BACKFILL[op.get_bind().dialect.name])


def downgrade() -> None:
    op.drop_index("ix_run_labels_lookup", table_name="run_labels")
    op.drop_table("run_labels")
