"""The capacity history: hourly sums of the jobs the retention sweep deletes.

``capacity_hours`` holds per operation, family and UTC hour the jobs, Σ S, Σ S², the
waits and their sums, the retried and split jobs; ``capacity_buckets`` the log-spaced
histograms of the service time and of the wait of the same jobs. They are kept for
``capacity.history_retention`` (see docs/capacity.md). Nothing is written for the jobs
already deleted: the history starts with the first sweep after this migration.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "capacity_hours",
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("hour", sa.String(13), nullable=False),
        sa.Column("jobs", sa.BigInteger(), nullable=False),
        sa.Column("submitted", sa.BigInteger(), nullable=False),
        sa.Column("busy", sa.Float(), nullable=False),
        sa.Column("busy_sq", sa.Float(), nullable=False),
        sa.Column("waited", sa.BigInteger(), nullable=False),
        sa.Column("wait", sa.Float(), nullable=False),
        sa.Column("wait_sq", sa.Float(), nullable=False),
        sa.Column("retried", sa.BigInteger(), nullable=False),
        sa.Column("split", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("operation", "family", "hour", name="pk_capacity_hours"),
    )
    op.create_index("ix_capacity_hours_hour", "capacity_hours", ["hour"])
    op.create_table(
        "capacity_buckets",
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("hour", sa.String(13), nullable=False),
        sa.Column("measure", sa.String(1), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("jobs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "operation", "family", "hour", "measure", "bucket", name="pk_capacity_buckets"
        ),
    )
    op.create_index("ix_capacity_buckets_hour", "capacity_buckets", ["hour"])


def downgrade() -> None:
    op.drop_index("ix_capacity_buckets_hour", table_name="capacity_buckets")
    op.drop_table("capacity_buckets")
    op.drop_index("ix_capacity_hours_hour", table_name="capacity_hours")
    op.drop_table("capacity_hours")
