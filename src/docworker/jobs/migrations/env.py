"""Alembic's entry point for the job store's migrations.

Run through :meth:`docworker.jobs.store.JobStore.migrate`, which passes an open
connection (already inside the transaction that holds the migration lock) in
``config.attributes["connection"]``. Without one, a connection is made from the
``sqlalchemy.url`` option, so a developer can run ``alembic revision
--autogenerate`` against a scratch database with a two-line config.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from docworker.jobs.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things: later migrations copy the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    given: Connection | None = context.config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set 'sqlalchemy.url' or pass a connection to run migrations")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


_main()
