"""schedules and their fires; delayed starts and the schedule of a run on runs

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("start_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("held_until", sa.Float(), nullable=True))
        batch.add_column(sa.Column("schedule_id", _ID, nullable=True))
        batch.add_column(sa.Column("fire_time", sa.Float(), nullable=True))
    op.create_index("ix_runs_schedule_created", "runs", ["schedule_id", "created_at", "id"])
    op.create_index(
        "ix_runs_held",
        "runs",
        ["held_until"],
        postgresql_where=sa.text("held_until IS NOT NULL"),
        sqlite_where=sa.text("held_until IS NOT NULL"),
    )
    op.create_table(
        "schedules",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("namespace_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("workflow", sa.String(length=100), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=True),
        sa.Column("spec", _JSON, nullable=False),
        sa.Column("inputs", _JSON, nullable=False),
        sa.Column("labels", _JSON, nullable=False),
        sa.Column("owner_workflow", sa.String(length=100), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("next_fire_at", sa.Float(), nullable=True),
        sa.Column("due_at", sa.Float(), nullable=True),
        sa.Column("last_fire_at", sa.Float(), nullable=True),
        sa.Column("last_run_id", _ID, nullable=True),
        sa.Column("buffered_fire_at", sa.Float(), nullable=True),
        sa.Column("fired_count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("skipped_count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("missed_count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("failed_count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["namespaces.id"],
            name=op.f("fk_schedules_namespace_id_namespaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("namespace_id", "name", name=op.f("uq_schedules_namespace_id_name")),
    )
    op.create_index(
        "ix_schedules_due",
        "schedules",
        ["due_at"],
        postgresql_where=sa.text("due_at IS NOT NULL"),
        sqlite_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_index(
        "ix_schedules_buffered",
        "schedules",
        ["last_run_id"],
        postgresql_where=sa.text("buffered_fire_at IS NOT NULL"),
        sqlite_where=sa.text("buffered_fire_at IS NOT NULL"),
    )
    op.create_table(
        "schedule_fires",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("schedule_id", _ID, nullable=False),
        sa.Column("namespace_id", _ID, nullable=False),
        sa.Column("fire_time", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("run_id", _ID, nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_fires_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_fires")),
        sa.UniqueConstraint(
            "schedule_id", "fire_time", name=op.f("uq_schedule_fires_schedule_id_fire_time")
        ),
    )


def downgrade() -> None:
    op.drop_table("schedule_fires")
    op.drop_index("ix_schedules_buffered", table_name="schedules")
    op.drop_index("ix_schedules_due", table_name="schedules")
    op.drop_table("schedules")
    op.drop_index("ix_runs_held", table_name="runs")
    op.drop_index("ix_runs_schedule_created", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("fire_time")
        batch.drop_column("schedule_id")
        batch.drop_column("held_until")
        batch.drop_column("start_at")
