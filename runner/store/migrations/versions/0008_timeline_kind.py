"""A kind beside the text of an incident's timeline entry: why an escalation started, as data.

``runbook report`` counts escalations by why they started; the reason is prose for people, and
a report that parsed it back out of the prose put every wording it did not know under "other".
The kind (the escalation's trigger: failed, rejected, fix_did_not_hold ...) is now written
beside the text. Nullable: an older process still writes entries without it, and the report
reads those from the text as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """incident_timeline.kind, nullable (only adds: older processes keep inserting without it)."""
    op.add_column("incident_timeline", sa.Column("kind", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("incident_timeline") as batch:
        batch.drop_column("kind")
