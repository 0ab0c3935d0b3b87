"""The run queue: what workers claim, and what history limits count.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

``target`` is the run's hosts as one key (limits per target compare it); ``alert_id`` and
``fingerprint`` tie a run to the alert that caused it (a resolved alert cancels its queued
run); ``inputs`` holds the params a worker needs, secrets included, only until the run ends;
``claimed_by``/``lease_until`` say which worker holds a running run and until when;
``cancel_requested`` asks that worker to stop; ``attempts`` counts claims; ``decided_by``
is who approved or rejected.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _columns() -> tuple[sa.Column[Any], ...]:
    return (
        sa.Column("target", sa.Text, nullable=True),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True),
        sa.Column("fingerprint", sa.Text, nullable=True),
        sa.Column("inputs", _json(), nullable=True),
        sa.Column("claimed_by", sa.Text, nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("decided_by", sa.Text, nullable=True),
    )


def upgrade() -> None:
    """Add the queue columns to runs, and the indexes claims and limits use."""
    with op.batch_alter_table("runs") as batch:
        for column in _columns():
            batch.add_column(column)
    op.create_index("ix_runs_status_created_at", "runs", ["status", "created_at"])
    op.create_index("ix_runs_runbook_target_status", "runs", ["runbook", "target", "status"])
    op.create_index("ix_runs_fingerprint", "runs", ["fingerprint"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_runs_fingerprint", table_name="runs")
    op.drop_index("ix_runs_runbook_target_status", table_name="runs")
    op.drop_index("ix_runs_status_created_at", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        for column in reversed(_columns()):
            batch.drop_column(column.name)
