"""Alerts as received: every accepted alert is stored before the sender gets its 2xx.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    """Create alerts."""
    op.create_table(
        "alerts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("group_key", sa.Text, nullable=True),
        sa.Column("alertname", sa.Text, nullable=False),
        sa.Column("labels", _json(), nullable=False),
        sa.Column("annotations", _json(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("generator_url", sa.Text, nullable=True),
        sa.Column("repeat_of", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=True),
        sa.Column("raw", _json(), nullable=False),
    )
    op.create_index("ix_alerts_fingerprint_id", "alerts", ["fingerprint", "id"])
    op.create_index("ix_alerts_received_at", "alerts", ["received_at"])


def downgrade() -> None:
    """Drop alerts."""
    op.drop_index("ix_alerts_received_at", table_name="alerts")
    op.drop_index("ix_alerts_fingerprint_id", table_name="alerts")
    op.drop_table("alerts")
