"""Engine breakers shared by every process of the service.

``engine_breakers`` holds one row per engine whose circuit breaker a process opened
(an API with its local executor, a Celery worker process), until the breaker
half-opens: the other processes refuse work needing that engine in the meantime, and
report it in ``/health``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "engine_breakers",
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("opened_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("engine", name="pk_engine_breakers"),
    )


def downgrade() -> None:
    op.drop_table("engine_breakers")
