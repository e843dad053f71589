"""``POST /api/v1/markdown/batch``: every document under a server folder, as Markdown.

A batch is a plan (:meth:`BatchRequest.plan`: the folders checked against the
configured root, the files found) and one ``extract`` job per file, all queued
at once so they run on every worker; each job's Markdown is written to the output
folder, mirroring the input's layout, and reported as v1's ``ConversionResult``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, Field

from docworker.api.deps import Services
from docworker.api.submitting import JobClient
from docworker.api.uploads import store_input
from docworker.api.v1.errors import V1Error
from docworker.api.v1.markdown_text import PARAMS, kind_of, markdown_of
from docworker.errors import DocworkerError
from docworker.formats.detect import detect
from docworker.jobs.queue import JobInput
from docworker.jobs.store import JobRecord

FAILURE = "Batch conversion failed"


class BatchOptions(BaseModel):
    preserve_images: bool = True
    table_style: bool = True
    columns: int = 80


class BatchRequest(BaseModel):
    input_directory: str = Field("", description="Folder to convert, recursively.")
    output_directory: str = Field(
        "", description="Where the .md files go; default '<input_directory>_markdown'."
    )
    options: BatchOptions | None = Field(
        None, description="Accepted for v1 clients; the Markdown does not depend on them."
    )

    def plan(self, root: Path, max_files: int) -> BatchPlan:
        """The folders, checked to lie under ``root``, and the files to convert (at most
        ``max_files``); blocking."""
        base = root.resolve()
        source = Path(self.input_directory)
        source = (source if source.is_absolute() else base / source).resolve()
        if not source.is_relative_to(base):
            raise V1Error(500, FAILURE, f"input directory is outside the batch folder: {source}")
        if not source.is_dir():
            raise V1Error(500, FAILURE, f"input directory not found: {self.input_directory}")
        target = (
            Path(self.output_directory) if self.output_directory else Path(f"{source}_markdown")
        )
        target = (target if target.is_absolute() else base / target).resolve()
        if not target.is_relative_to(base):
            raise V1Error(500, FAILURE, f"output directory is outside the batch folder: {target}")
        files: list[tuple[Path, str]] = []
        for folder, _dirs, names in os.walk(source):
            for name in sorted(names):
                path = Path(folder) / name
                if path.resolve().is_relative_to(base) and path.is_file():
                    kind = _kind(path)
                    if kind is not None:
                        files.append((path, kind))
                if len(files) > max_files:
                    raise V1Error(500, FAILURE, f"more than {max_files} files to convert")
        return BatchPlan(source, target, files)


def _kind(path: Path) -> str | None:
    try:
        return kind_of(detect(path).mime)
    except OSError:
        return None


@dataclass(frozen=True)
class BatchPlan:
    source: Path
    target: Path
    files: list[tuple[Path, str]]


def _failed(path: Path, error: str) -> dict[str, Any]:
    return {
        "success": False,
        "input_path": str(path),
        "output_path": "",
        "conversion_type": "",
        "duration": 0.0,
        "file_size": 0,
        "word_count": 0,
        "char_count": 0,
        "metadata": None,
        "error": error,
    }


async def _collect(
    services: Services,
    plan: BatchPlan,
    jobs: list[tuple[Path, str, str | None, str]],
    started: float,
) -> list[dict[str, Any]]:
    """Each file's result, in order, as its job ends: its Markdown written, or why not."""
    results = []
    for path, kind, job_id, error in jobs:
        if job_id is None:
            results.append(_failed(path, error))
            continue
        record = await services.queue.wait(job_id, services.settings.server.max_wait)
        took = (
            (record.finished_at - record.started_at).total_seconds()
            if record.finished_at and record.started_at
            else time.monotonic() - started
        )
        # Loaded whole to make v1's Markdown, so within the API's bound, a turn at a time.
        write = partial(_load_and_write, services, record, plan, path, kind, took)
        try:
            results.append(await anyio.to_thread.run_sync(write, limiter=services.result_slots))
        except (DocworkerError, OSError) as exc:
            results.append(_failed(path, getattr(exc, "detail", None) or str(exc)))
    return results


def _write(
    plan: BatchPlan, path: Path, kind: str, payload: dict[str, Any], *, took: float
) -> dict[str, Any]:
    text = markdown_of(payload)
    target = (plan.target / path.relative_to(plan.source)).with_suffix(".md")
    target.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    target.write_bytes(data)
    pages = int((payload.get("metadata") or {}).get("page_count") or 0)
    result: dict[str, Any] = {
        "success": True,
        "input_path": str(path),
        "output_path": str(target),
        "conversion_type": f"{kind}_to_markdown",
    }
    if kind == "pdf" and pages:
        result["pages_processed"] = pages
    # v1's labels of its two converters, kept as the extraction routes keep v1's
    # ``extractor`` labels: clients tell the conversions apart by them.
    if kind == "pdf":
        metadata: dict[str, Any] = {"generator": "pymupdf", "source_pages": pages}
    else:
        metadata = {"generator": "pandoc", "source_format": path.suffix.lower()}
    return result | {
        "duration": round(took, 6),
        "file_size": len(data),
        "word_count": len(text.split()),
        "char_count": len(text),
        "metadata": metadata,
    }


def _load_and_write(
    services: Services, record: JobRecord, plan: BatchPlan, path: Path, kind: str, took: float
) -> dict[str, Any]:
    """Load the job's result (within ``server.max_loaded_result_bytes``) and write its
    Markdown; blocking."""
    payload = services.queue.result(record, services.settings.server.max_loaded_result_bytes)
    return _write(plan, path, kind, payload, took=took)


async def run_batch(services: Services, client: JobClient, plan: BatchPlan) -> dict[str, Any]:
    """Queue a job per file, wait for them all, write the Markdown; v1's batch answer.
    Each file's job is keyed by the client's idempotency key and the file's path, so a
    retried batch finds the jobs it made; a client that leaves without a key has the
    jobs cancelled (see :mod:`docworker.api.submitting`)."""
    started = time.monotonic()
    jobs: list[tuple[Path, str, str | None, str]] = []
    for path, kind in plan.files:
        try:
            limit = services.settings.server.max_upload_bytes
            blob = await anyio.to_thread.run_sync(
                store_input, partial(services.blobs.put_file, path, max_bytes=limit)
            )
            job_input = JobInput(blob=blob, name=path.name)
            part = path.relative_to(plan.source).as_posix()
            record = await client.submit(services.queue, "extract", PARAMS, job_input, part=part)
            jobs.append((path, kind, record.id, ""))
        except (DocworkerError, OSError) as exc:
            jobs.append((path, kind, None, getattr(exc, "detail", None) or str(exc)))
    queued = [job_id for _, _, job_id, _ in jobs if job_id is not None]
    results = await client.attend(
        services.queue, queued, lambda: _collect(services, plan, jobs, started)
    )
    succeeded = sum(1 for r in results if r["success"])
    return {
        "success": True,
        "summary": {
            "total": len(results),
            "succeeded": succeeded,
            "failed": len(results) - succeeded,
        },
        "results": results,
    }
