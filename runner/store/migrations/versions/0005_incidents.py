"""Incidents: the alerts of one Alertmanager group (or one fingerprint), with an owner from the start.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def _bigint() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    """Create incidents and their timeline; tie alerts and runs to them."""
    op.create_table(
        "incidents",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("runbook", sa.Text, nullable=True),
        sa.Column("owner_team", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Text, nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
    )
    op.create_index("ix_incidents_key_status", "incidents", ["key", "status"])
    op.create_index("ix_incidents_opened_at", "incidents", ["opened_at"])
    op.create_table(
        "incident_timeline",
        sa.Column("id", _bigint(), primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Text, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_incident_timeline_incident_id_id", "incident_timeline", ["incident_id", "id"])
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("incident_id", sa.Text, nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("incident_id", sa.Text, nullable=True))
    op.create_index("ix_alerts_incident_id", "alerts", ["incident_id"])
    op.create_index("ix_runs_incident_id", "runs", ["incident_id"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_runs_incident_id", table_name="runs")
    op.drop_index("ix_alerts_incident_id", table_name="alerts")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("incident_id")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("incident_id")
    op.drop_index("ix_incident_timeline_incident_id_id", table_name="incident_timeline")
    op.drop_table("incident_timeline")
    op.drop_index("ix_incidents_opened_at", table_name="incidents")
    op.drop_index("ix_incidents_key_status", table_name="incidents")
    op.drop_table("incidents")
