"""Fixtures of the integration tests: a job store on each database the service runs on,
and a scanned document for the jobs split into parts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pypdfium2
import pytest

from bench.scoring import corpus_root
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


@pytest.fixture(scope="session")
def scanned_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image-only PDF: the first three pages of a corpus article, rendered (a scan)."""
    pdf = pypdfium2.PdfDocument(str(corpus_root() / "pdf" / "multi-page-article.pdf"))
    try:
        pages = [pdf[index].render(scale=150 / 72, grayscale=True).to_pil() for index in range(3)]
    finally:
        pdf.close()
    target = tmp_path_factory.mktemp("scan") / "scanned-article.pdf"
    pages[0].save(target, save_all=True, append_images=pages[1:], resolution=150)
    return target
