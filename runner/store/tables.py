"""The tables of the run store, as SQLAlchemy Core metadata.

The migrations under ``migrations/versions`` create these tables; this module
describes the head revision for the queries of the store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both sides, whatever the database keeps."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC (without tzinfo on SQLite, which cannot keep it)."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return UTC: SQLite gives naive datetimes (stored as UTC), PostgreSQL the session zone."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_type() -> sa.types.TypeEngine[Any]:
    """JSON, stored as JSONB on PostgreSQL; Python None is SQL NULL."""
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("runbook", sa.Text, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("trigger_kind", sa.String(32), nullable=False),
    sa.Column("trigger_actor", sa.Text, nullable=False),
    sa.Column("trigger_alert", json_type(), nullable=True),
    sa.Column("git_commit", sa.Text, nullable=True),
    sa.Column("git_dirty", sa.Boolean, nullable=False),
    sa.Column("params", json_type(), nullable=False),
    sa.Column("hosts", json_type(), nullable=False),
    sa.Column("verdict", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("reason_kind", sa.String(32), nullable=True),  # runner.records.ReasonKind (0009)
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("environment", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("target", sa.Text, nullable=True),
    sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True),
    sa.Column("fingerprint", sa.Text, nullable=True),
    sa.Column("inputs", json_type(), nullable=True),
    sa.Column("claimed_by", sa.Text, nullable=True),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("decided_by", sa.Text, nullable=True),
    sa.Column("incident_id", sa.Text, nullable=True),
    sa.Index("ix_runs_runbook_created_at", "runbook", "created_at"),
    sa.Index("ix_runs_status", "status"),
    sa.Index("ix_runs_status_created_at", "status", "created_at"),
    sa.Index("ix_runs_runbook_target_status", "runbook", "target", "status"),
    sa.Index("ix_runs_fingerprint", "fingerprint"),
    sa.Index("ix_runs_incident_id", "incident_id"),
)

run_steps = sa.Table(
    "run_steps",
    metadata,
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("changed", sa.Boolean, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("rc", sa.Integer, nullable=True),
    sa.Column("stdout", sa.Text, nullable=False),
    sa.Column("stderr", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("retries", sa.Integer, nullable=False),
    sa.UniqueConstraint("run_id", "idx", "host", name="uq_run_steps_run_id_idx_host"),
)

run_timeline = sa.Table(
    "run_timeline",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("ix_run_timeline_run_id_id", "run_id", "id"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("group_key", sa.Text, nullable=True),
    sa.Column("alertname", sa.Text, nullable=False),
    sa.Column("labels", json_type(), nullable=False),
    sa.Column("annotations", json_type(), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=True),
    sa.Column("ends_at", UTCDateTime, nullable=True),
    sa.Column("generator_url", sa.Text, nullable=True),
    sa.Column("repeat_of", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True),
    sa.Column("raw", json_type(), nullable=False),
    sa.Column("incident_id", sa.Text, nullable=True),
    sa.Index("ix_alerts_fingerprint_id", "fingerprint", "id"),
    sa.Index("ix_alerts_received_at", "received_at"),
    sa.Index("ix_alerts_incident_id", "incident_id"),
)

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("runbook", sa.Text, nullable=True),
    sa.Column("owner_team", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.Text, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("resolution", sa.Text, nullable=True),
    sa.Column("policy", json_type(), nullable=True),  # the owner team's escalation policy, as it was
    sa.Index("ix_incidents_key_status", "key", "status"),
    sa.Index("ix_incidents_opened_at", "opened_at"),
)

incident_timeline = sa.Table(
    "incident_timeline",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Text, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=True),  # what escalation_started was triggered by (0008)
    sa.Index("ix_incident_timeline_incident_id_id", "incident_id", "id"),
)

escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("incident_id", sa.Text, sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # active | stopped | done
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("level", sa.Integer, nullable=False),  # the next level to fire, 0-based
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("next_at", UTCDateTime, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("context", json_type(), nullable=False),
    sa.Index("ix_escalations_state_next_at", "state", "next_at"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),  # a channel of owners.yaml, or person:NAME
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("message", json_type(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | dead | skipped
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Index("ix_outbox_status_channel_id", "status", "channel", "id"),
    sa.Index("ix_outbox_incident_id", "incident_id"),
)

schema_compat = sa.Table(  # one row: the oldest code revision that may use this schema (migration 0007)
    "schema_compat",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("min_revision", sa.Text, nullable=False),
)
