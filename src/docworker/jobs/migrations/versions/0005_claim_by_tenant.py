"""Claiming fairly across tenants: each tenant's jobs by status in claim order, and by
when they started.

The claim looks at each tenant with queued jobs in turn (a skip scan over the first
index), takes the tenant's next job and its count of running jobs from it, and when its
last job started from the second, and gives the free worker to the tenant that runs the
fewest and was served least recently: a few index seeks per tenant, however long the
queue is.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_claim_tenant",
        "jobs",
        ["status", "tenant", sa.literal_column("priority DESC"), "created_at"],
    )
    op.create_index("ix_jobs_tenant_started", "jobs", ["tenant", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_tenant_started", table_name="jobs")
    op.drop_index("ix_jobs_claim_tenant", table_name="jobs")
