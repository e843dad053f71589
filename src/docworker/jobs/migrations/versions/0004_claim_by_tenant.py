"""Claiming fairly across tenants: each tenant's queued jobs in claim order.

The claim looks at each tenant with queued jobs in turn (a skip scan over this index),
takes the tenant's next job and its count of running jobs from it, and gives the free
worker to the tenant that runs the fewest: a few index seeks per tenant, however long
the queue is.

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
    op.create_index(
        "ix_jobs_claim_tenant",
        "jobs",
        ["status", "tenant", sa.literal_column("priority DESC"), "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_claim_tenant", table_name="jobs")
