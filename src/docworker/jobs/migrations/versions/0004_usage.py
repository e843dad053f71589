"""Usage: what each job cost, what each key spent per day, and the audit trail's indexes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("cpu_seconds", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("pages", sa.Integer(), nullable=True))
    op.create_table(
        "usage_counters",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("pages", sa.BigInteger(), nullable=False),
        sa.Column("cpu_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "day", name="pk_usage_counters"),
    )
    op.create_index("ix_audit_events_key_id", "audit_events", ["key_id", "at"])
    op.create_index("ix_audit_events_kind", "audit_events", ["kind", "at"])
    op.create_index("ix_audit_events_job_id", "audit_events", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_job_id", table_name="audit_events")
    op.drop_index("ix_audit_events_kind", table_name="audit_events")
    op.drop_index("ix_audit_events_key_id", table_name="audit_events")
    op.drop_table("usage_counters")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("pages")
        batch.drop_column("cpu_seconds")
