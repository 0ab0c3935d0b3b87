"""A kind beside the text of a run's reason: which limit or rule decided it, as data.

Metrics, the report and the dashboard counted rejections by parsing the reason's prose back out
("max_runs: ...", "... exceed max_hosts ..."), so a new limit or a new wording landed under
"other". The kind (runner.records.ReasonKind: environment, target, max_hosts, params,
forbidden, max_runs, concurrency, cooldown, approval ...) is now written beside the text.
Nullable: runs recorded before keep none, and an older process still writes runs without it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """runs.reason_kind, nullable (only adds: older processes keep inserting without it)."""
    op.add_column("runs", sa.Column("reason_kind", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("reason_kind")
