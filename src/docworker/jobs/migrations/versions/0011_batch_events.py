"""Batch events and webhooks.

``batch_events`` keeps what happened to each batch (made, a child ended, its end, a
retry), numbered from 1 per batch like ``job_events``: the ids of the batch's event
stream. ``batches.webhook`` is the batch's own webhook (its URL, the events chosen, its
sealed secret). A row of the outbox (``webhook_deliveries``) is either a job's or a
batch's: ``batch_id`` names the batch, and ``job_id`` is then empty.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.JSON:
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "batch_events",
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", _json(), nullable=True),
        sa.PrimaryKeyConstraint("batch_id", "seq", name="pk_batch_events"),
    )
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("webhook", _json(), nullable=True))
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(36), nullable=True))
        batch.alter_column("job_id", existing_type=sa.String(36), nullable=True)
    op.create_index(
        "ix_webhook_deliveries_batch_id", "webhook_deliveries", ["batch_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_batch_id", table_name="webhook_deliveries")
    op.execute("DELETE FROM webhook_deliveries WHERE job_id IS NULL")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("job_id", existing_type=sa.String(36), nullable=False)
        batch.drop_column("batch_id")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("webhook")
    op.drop_table("batch_events")
