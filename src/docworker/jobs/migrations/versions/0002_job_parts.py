"""Jobs split into parts: a parent job, its child jobs, and how many are still to finish.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("part", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("children_total", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("children_pending", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index("ix_jobs_parent_id", "jobs", ["parent_id", "part"])


def downgrade() -> None:
    op.drop_index("ix_jobs_parent_id", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("children_pending")
        batch.drop_column("children_total")
        batch.drop_column("part")
        batch.drop_column("parent_id")
