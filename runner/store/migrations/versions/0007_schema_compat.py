"""The oldest runbook-runner that may use this schema, so older processes can run on a newer one.

A rolling upgrade migrates the database while processes of the previous version still run.
Migrations only add (tests/integration/test_migrations.py checks it), so an older process can
keep working; it reads ``schema_compat.min_revision`` to know: a revision it knows means yes.
A migration that does remove or change something sets ``min_revision`` to its own revision,
and older processes then refuse to start, saying why.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """One row: the oldest revision whose code can use this schema."""
    table = op.create_table(
        "schema_compat",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("min_revision", sa.Text, nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "min_revision": "0007"}])


def downgrade() -> None:
    """Drop it."""
    op.drop_table("schema_compat")
