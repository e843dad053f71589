"""Each job's attempts: when each started and ended, on which worker, how it ended and why.

A JSON list on the job's row (``history``), appended to in the transaction that ends
an attempt; the running attempt is the job's own ``started_at`` and ``worker``. Jobs
that ended before this revision have no history.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("history", json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("history")
