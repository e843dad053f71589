"""Fixtures of the integration tests: a job store on each database the service runs on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from docworker.jobs.store import JobStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        # A folder that does not exist yet: migrate() creates it.
        return f"sqlite:///{tmp_path / 'data' / 'jobs.db'}"
    url: str = request.getfixturevalue("postgres_db_url")
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[JobStore]:
    job_store = JobStore(database_url)
    job_store.migrate()
    yield job_store
    job_store.close()
