"""Fixtures of the end-to-end tests: real servers, shared where the tests allow.

The service in each configuration it runs in (tests/e2e/deployments.py) is a session
fixture, started on first use: ``local_sqlite``, ``local_postgres``, ``celery_sqlite``
and ``celery_postgres``. ``server`` is the first one's server, shared by every module
that needs no settings of its own (one with other needs defines its own ``server``);
``deployment`` runs a module on each configuration (its ``client`` then reaches the
deployment's API)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.deployments import CONFIGURATIONS, Deployment, deploy
from tests.e2e.server import Server


@contextlib.contextmanager
def _deployed(
    configuration: str, folders: pytest.TempPathFactory, **servers: str
) -> Iterator[Deployment]:
    with contextlib.ExitStack() as closing:
        yield deploy(configuration, folders.mktemp(configuration), closing, **servers)


@pytest.fixture(scope="session")
def local_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with _deployed("local-sqlite", tmp_path_factory) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def local_postgres(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> Iterator[Deployment]:
    with _deployed("local-postgres", tmp_path_factory, postgres_url=postgres_url) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def celery_sqlite(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Deployment]:
    with _deployed("celery-sqlite", tmp_path_factory, redis_url=redis_url) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def celery_postgres(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Deployment]:
    with _deployed(
        "celery-postgres", tmp_path_factory, postgres_url=postgres_url, redis_url=redis_url
    ) as deployment:
        yield deployment


@pytest.fixture(scope="module", params=CONFIGURATIONS)
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """The module's tests run once on each configuration."""
    deployed: Deployment = request.getfixturevalue(request.param.replace("-", "_"))
    return deployed


@pytest.fixture(scope="session")
def server(local_sqlite: Deployment) -> Server:
    return local_sqlite.server


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
