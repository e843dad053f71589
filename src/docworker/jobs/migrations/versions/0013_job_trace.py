"""The trace context of a job.

``jobs.trace`` keeps what a job carries of the request that submitted it: the W3C
trace context (``traceparent``, ``tracestate``) of the request's span when tracing is
on, and the request's id, so that every process that runs the job, its parts and its
retries continues the request's trace and logs its request id
(:mod:`docworker.tracing`). Null for jobs submitted before, or outside any request.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("trace", json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("trace")
