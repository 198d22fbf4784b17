"""The schema, as SQLAlchemy Core tables. Times are epoch seconds (double precision) on both
stores: one representation, cheap comparisons in the hot path, no time-zone drift."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["metadata"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only gives AUTOINCREMENT-style rowids to INTEGER PRIMARY KEY, hence the variant.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column[int]:
    return Column("id", Id, primary_key=True, autoincrement=True)


namespaces = Table(
    "namespaces",
    metadata,
    _id(),
    Column("name", String(100), nullable=False, unique=True),
    Column("max_queued_runs", Integer),
    Column("max_concurrent_runs", Integer),
    Column("retention_days", Integer),
    Column("settings", Json, nullable=False, server_default=text("'{}'")),
    Column("created_at", Float, nullable=False),
    # module prefixes this namespace's python steps may call, besides the installation's
    Column("step_modules", Json, nullable=False, server_default=text("'[]'")),
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(),
    Column("namespace_id", Id, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("secret_hash", String(128), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("revoked_at", Float),
    Column("prefix", String(16)),  # the secret's first characters, to recognise it by
)

workflows = Table(
    "workflows",
    metadata,
    _id(),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("namespace_id", Id, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("operation_type", String(200)),
    Column("definition", Json, nullable=False),
    Column("source", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("namespace_id", "name", "version"),
)

runs = Table(
    "runs",
    metadata,
    _id(),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("namespace_id", Id, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("workflow_id", Id, ForeignKey("workflows.id"), nullable=False),
    Column("workflow_name", String(100), nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_message", Text, nullable=False, server_default=""),
    Column("inputs", Json, nullable=False),
    Column("vars", Json, nullable=False),
    Column("outputs", Json),
    Column("error", Json),
    Column("labels", Json, nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("operation_type", String(200), nullable=False),
    Column("requestor", String(200)),
    Column("external_id", String(200)),
    Column("idempotency_key", String(200)),
    Column("notify_url", Text),
    Column("parent_run_id", Id, ForeignKey("runs.id", ondelete="CASCADE")),
    Column("parent_step_id", Id),
    Column("total_steps", Integer, nullable=False, server_default="0"),
    Column("finished_steps", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("updated_at", Float, nullable=False),
    Column("deadline_at", Float),
    Column("change_seq", BigInteger, nullable=False, server_default="0"),
    # a delayed start: the time asked for, and (until then) when the held run is released
    Column("start_at", Float),
    Column("held_until", Float),
    # a run a schedule started (no foreign key: its runs outlive a deleted schedule)
    Column("schedule_id", Id),
    Column("fire_time", Float),
    UniqueConstraint("namespace_id", "idempotency_key"),
    UniqueConstraint("namespace_id", "external_id"),
    Index("ix_runs_ns_created", "namespace_id", "created_at", "id"),
    Index("ix_runs_ns_status_created", "namespace_id", "status", "created_at", "id"),
    Index("ix_runs_ns_workflow_created", "namespace_id", "workflow_name", "created_at", "id"),
    Index("ix_runs_ns_requestor_created", "namespace_id", "requestor", "created_at", "id"),
    Index("ix_runs_parent", "parent_run_id"),
    Index("ix_runs_schedule_created", "schedule_id", "created_at", "id"),
    Index(
        "ix_runs_held",
        "held_until",
        postgresql_where=text("held_until IS NOT NULL"),
        sqlite_where=text("held_until IS NOT NULL"),
    ),
    Index(
        "ix_runs_deadline",
        "deadline_at",
        postgresql_where=text("deadline_at IS NOT NULL AND finished_at IS NULL"),
        sqlite_where=text("deadline_at IS NOT NULL AND finished_at IS NULL"),
    ),
)

steps = Table(
    "steps",
    metadata,
    _id(),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("parent_step_id", Id),
    Column("key", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("type_label", String(200)),
    Column("rank", Integer, nullable=False),
    Column("needs", Json, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_message", Text, nullable=False, server_default=""),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False, server_default="1"),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("not_before", Float, nullable=False, server_default="0"),
    Column("lease_owner", String(100)),
    Column("lease_expires_at", Float),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    Column("args", Json),
    Column("outputs", Json),
    Column("error", Json),
    Column("progress", Float),
    Column("child_run_id", Id),
    Column("timeout_s", Float),
    Column("item", Json),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    # times the step's worker was lost (lease lapsed) and another took the step over
    Column("lease_losses", Integer, nullable=False, server_default="0"),
    Index("ix_steps_run_rank", "run_id", "rank"),
    # The claim query walks this partial index: only claimable rows, in claim order.
    Index(
        "ix_steps_claim",
        text("priority DESC"),
        "id",
        postgresql_where=text("status = 'READY'"),
        sqlite_where=text("status = 'READY'"),
    ),
    Index(
        "ix_steps_lease",
        "lease_expires_at",
        postgresql_where=text("status = 'RUNNING' AND lease_owner IS NOT NULL"),
        sqlite_where=text("status = 'RUNNING' AND lease_owner IS NOT NULL"),
    ),
    Index(
        "ix_steps_owner",
        "lease_owner",
        postgresql_where=text("lease_owner IS NOT NULL"),
        sqlite_where=text("lease_owner IS NOT NULL"),
    ),
)

run_values = Table(
    "run_values",
    metadata,
    _id(),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_id", Id),
    Column("scope", String(16), nullable=False),  # input | var | output | run_output
    Column("name", String(200), nullable=False),
    Column("type", String(16), nullable=False),
    Column("value", Json),
    Column("created_at", Float, nullable=False),
    Index("ix_run_values_run", "run_id", "scope"),
    Index("ix_run_values_step", "step_id"),
)

events = Table(
    "events",
    metadata,
    _id(),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_id", Id),
    Column("step_key", String(200)),
    Column("type", String(40), nullable=False),
    Column("status", String(16)),
    Column("message", Text, nullable=False, server_default=""),
    Column("data", Json),
    Column("time", Float, nullable=False),
    Index("ix_events_run", "run_id", "id"),
)

logs = Table(
    "logs",
    metadata,
    _id(),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_id", Id),
    Column("step_key", String(200)),
    Column("attempt", Integer),
    Column("level", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Column("time", Float, nullable=False),
    Index("ix_logs_run", "run_id", "id"),
)

resources = Table(
    "resources",
    metadata,
    _id(),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_id", Id),
    Column("type", String(100), nullable=False),
    Column("resource_id", String(500), nullable=False),
    Column("action_result", String(50), nullable=False),
    Column("metadata", Json),
    Column("time", Float, nullable=False),
    Index("ix_resources_run", "run_id"),
)

run_errors = Table(
    "run_errors",
    metadata,
    _id(),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_id", Id),
    Column("step_key", String(200)),
    Column("code", String(100), nullable=False),
    Column("message", Text, nullable=False),
    Column("time", Float, nullable=False),
    Index("ix_run_errors_run", "run_id"),
)

outbox = Table(
    "outbox",
    metadata,
    _id(),
    Column("namespace_id", Id, nullable=False),
    Column("run_id", Id),
    Column("url", Text, nullable=False),
    Column("payload", Json, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("webhook_id", Id),  # None: the run's notify_url
    Column("event_type", String(40)),
    Column("secret", String(200)),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float),
    Index(
        "ix_outbox_due",
        "next_attempt_at",
        postgresql_where=text("status = 'PENDING'"),
        sqlite_where=text("status = 'PENDING'"),
    ),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    # the namespaces whose steps it runs (empty: all)
    Column("namespaces", Json, nullable=False, server_default=text("'[]'")),
)

step_stats = Table(
    "step_stats",
    metadata,
    Column("namespace_id", Id, primary_key=True),
    Column("workflow_name", String(100), primary_key=True),
    Column("step_key", String(200), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("mean_s", Float, nullable=False),
    # the latest successful durations (seconds), newest last: p50/p95 baselines
    Column("samples", Json, nullable=False, server_default=text("'[]'")),
    Column("updated_at", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    _id(),
    Column("namespace_id", Id, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("username", String(200), nullable=False),
    Column("password_hash", String(300), nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("disabled_at", Float),
    UniqueConstraint("namespace_id", "username"),
)

jwks = Table(
    "jwks",
    metadata,
    _id(),
    Column("namespace_id", Id, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("identifier", String(100), nullable=False, unique=True),  # the GUID clients send
    Column("keys", Json, nullable=False),
    Column("issuer", String(500)),
    Column("audience", String(500)),
    Column("required_scope", String(200)),
    Column("role", String(20), nullable=False),
    Column("created_at", Float, nullable=False),
)

webhooks = Table(
    "webhooks",
    metadata,
    _id(),
    Column("namespace_id", Id, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    # Kept as is: it signs payloads, so it must be readable (unlike credentials, hashed).
    Column("secret", String(200), nullable=False),
    Column("event_types", Json, nullable=False),
    Column("workflows", Json, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", Float, nullable=False),
    Index("ix_webhooks_namespace", "namespace_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(),
    Column("outbox_id", Id, ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    Column("time", Float, nullable=False),
    Index("ix_webhook_deliveries_outbox", "outbox_id"),
)

progress_points = Table(
    "progress_points",
    metadata,
    _id(),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_id", Id, nullable=False),
    Column("fraction", Float, nullable=False),
    Column("message", Text),
    Column("time", Float, nullable=False),
    Index("ix_progress_points_step", "step_id", "id"),
    Index("ix_progress_points_run", "run_id"),
)

# One row per label of a run: label filters walk this index instead of every run's JSON.
run_labels = Table(
    "run_labels",
    metadata,
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("namespace_id", Id, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_run_labels_lookup", "namespace_id", "key", "value", "created_at", "run_id"),
)

# Failed logins per user name ("user:<name>") and per client address ("addr:<ip>"), shared by
# every API process: what login throttling counts and locks.
login_failures = Table(
    "login_failures",
    metadata,
    Column("subject", String(300), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", Float, nullable=False),
    Column("locked_until", Float),
)

# Schedules: a workflow started on a clock. ``due_at`` is the next fire time plus its jitter
# (None while paused or when none is left): the scheduler sleeps until the earliest of them.
schedules = Table(
    "schedules",
    metadata,
    _id(),
    Column("namespace_id", Id, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("workflow", String(100), nullable=False),
    Column("workflow_version", Integer),
    Column("spec", Json, nullable=False),  # cron or interval, zone, window, policies
    Column("inputs", Json, nullable=False),
    Column("labels", Json, nullable=False),
    Column("owner_workflow", String(100)),  # declared in that workflow's definition
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("note", Text),
    Column("next_fire_at", Float),
    Column("due_at", Float),
    Column("last_fire_at", Float),
    Column("last_run_id", Id),
    Column("buffered_fire_at", Float),  # a fire held back until the last run has ended
    Column("fired_count", BigInteger, nullable=False, server_default="0"),
    Column("skipped_count", BigInteger, nullable=False, server_default="0"),
    Column("missed_count", BigInteger, nullable=False, server_default="0"),
    Column("failed_count", BigInteger, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("namespace_id", "name"),
    Index(
        "ix_schedules_due",
        "due_at",
        postgresql_where=text("due_at IS NOT NULL"),
        sqlite_where=text("due_at IS NOT NULL"),
    ),
    Index(
        "ix_schedules_buffered",
        "last_run_id",
        postgresql_where=text("buffered_fire_at IS NOT NULL"),
        sqlite_where=text("buffered_fire_at IS NOT NULL"),
    ),
)

# One row per fire time of a schedule, whatever came of it. The unique key is what makes a
# fire time start at most one run, however many processes fire schedules: the row and the run
# it started commit in one transaction.
schedule_fires = Table(
    "schedule_fires",
    metadata,
    _id(),
    Column("schedule_id", Id, ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False),
    Column("namespace_id", Id, nullable=False),
    Column("fire_time", Float, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("run_id", Id),
    Column("message", Text),
    Column("manual", Boolean, nullable=False, server_default=text("false")),
    Column("recorded_at", Float, nullable=False),
    UniqueConstraint("schedule_id", "fire_time"),
)
