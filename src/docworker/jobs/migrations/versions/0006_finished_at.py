"""The jobs that ended lately, by when they ended.

Admission measures how fast each family's queue drains by counting the jobs that
reached a final state in the last minute (``JobStore.ended_by_operation``); the
retention sweep looks for those that ended before its cutoff. Both walk a range of
this index instead of the whole table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_finished_at", "jobs", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_finished_at", table_name="jobs")
