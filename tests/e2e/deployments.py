"""The service deployed in each of the configurations it runs in: the local executor or
the celery one (an API-only ``docworker serve --executor celery`` and a ``docworker
worker`` fleet on Redis), on SQLite or PostgreSQL. tests/e2e/conftest.py has a session
fixture of each: modules of the same configuration share it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.celery_worker import Worker, delete_queues, queue_prefix
from tests.conftest import new_postgres_database
from tests.e2e.server import Server

#: executor-database, as the parameters of the modules that run on each of them.
CONFIGURATIONS = [
    pytest.param("local-sqlite", id="local-sqlite"),
    pytest.param("local-postgres", id="local-postgres", marks=pytest.mark.postgres),
    pytest.param("celery-sqlite", id="celery-sqlite", marks=pytest.mark.redis),
    pytest.param(
        "celery-postgres", id="celery-postgres", marks=[pytest.mark.redis, pytest.mark.postgres]
    ),
]

#: The settings of the shared deployments (a module with other needs starts its own).
COMMON_ENV = {"DOCWORKER_SERVER__MAX_UPLOAD_BYTES": str(8 * 1024 * 1024)}


@dataclass
class Deployment:
    """The API's server and, under the celery executor, the worker fleet beside it."""

    configuration: str
    server: Server
    worker: Worker | None = None

    def tail(self) -> str:
        """The end of the logs, for an assertion's message."""
        logs = [self.server.log.read_text(errors="replace")[-3000:]]
        if self.worker is not None:
            logs.append(self.worker.tail())
        return "\n".join(logs)


def deploy(
    configuration: str,
    data_dir: Path,
    closing: contextlib.ExitStack,
    *,
    postgres_url: str | None = None,
    redis_url: str | None = None,
) -> Deployment:
    """Start the service in ``configuration`` over ``data_dir``; ``closing`` stops it.
    ``postgres_url`` and ``redis_url``: the servers it needs, if it does."""
    executor, _, database = configuration.partition("-")
    env = dict(COMMON_ENV)
    if database == "postgres":
        assert postgres_url is not None
        env["DOCWORKER_DATABASE__URL"] = closing.enter_context(new_postgres_database(postgres_url))
    if executor == "local":
        server = Server(data_dir, **env)
        closing.callback(server.stop)
        return Deployment(configuration, server.start())
    assert redis_url is not None
    env |= {
        "DOCWORKER_EXECUTOR__KIND": "celery",
        "DOCWORKER_CELERY__BROKER_URL": redis_url,
        "DOCWORKER_CELERY__QUEUE_PREFIX": queue_prefix(),
        # The API's waiters hear of the workers' changes at once.
        "DOCWORKER_EVENTS__REDIS_URL": redis_url,
    }
    server = Server(data_dir, **env)
    closing.callback(delete_queues, server.env)
    closing.callback(server.stop)
    worker = Worker(data_dir, dict(server.env), concurrency=2)
    closing.callback(worker.stop)
    # Both start at once: the worker takes the longer.
    worker.start()
    server.start()
    worker.wait_ready()
    return Deployment(configuration, server, worker)
