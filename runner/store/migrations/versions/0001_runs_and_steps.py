"""Runs and their steps.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    """Create runs and run_steps."""
    op.create_table(
        "runs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("runbook", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("trigger_kind", sa.String(32), nullable=False),
        sa.Column("trigger_actor", sa.Text, nullable=False),
        sa.Column("trigger_alert", _json(), nullable=True),
        sa.Column("git_commit", sa.Text, nullable=True),
        sa.Column("git_dirty", sa.Boolean, nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("hosts", _json(), nullable=False),
        sa.Column("verdict", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("environment", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_runs_runbook_created_at", "runs", ["runbook", "created_at"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "run_steps",
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("changed", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rc", sa.Integer, nullable=True),
        sa.Column("stdout", sa.Text, nullable=False),
        sa.Column("stderr", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.UniqueConstraint("run_id", "idx", "host", name="uq_run_steps_run_id_idx_host"),
    )


def downgrade() -> None:
    """Drop run_steps and runs."""
    op.drop_table("run_steps")
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_index("ix_runs_runbook_created_at", table_name="runs")
    op.drop_table("runs")
