"""``POST /api/v2/unpack``: upload an archive, get the tree of its entries; each file
unpacked is an artifact of the job, downloaded from ``/api/v2/jobs/{id}/artifacts/{name}``.

Like every synchronous endpoint it submits a job (operation ``unpack``) and waits up
to ``wait`` seconds for it: the tree comes back in the response, or ``202`` with the
job. An archive with entries refused or failed answers its tree all the same, with
``X-Job-Status: partial`` and the entries' errors listed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.responses import Response

from docworker.api.answers import answer_files
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.routing import feeds
from docworker.api.submitting import JobClientDep
from docworker.api.uploads import ONE_FILE_PER_FIELD, store_upload

router = APIRouter(prefix="/api/v2", tags=["unpack"], dependencies=[ONE_FILE_PER_FIELD])

UNPACK_EXAMPLE = {
    "job_id": "0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10",
    "entries": [
        {
            "path": "reports/q1.pdf",
            "depth": 1,
            "status": "ok",
            "size": 34824,
            "sha256": "9f2c…",
            "mime": "application/pdf",
            "artifact": "1-q1.pdf",
        },
        {
            "path": "old.zip",
            "depth": 1,
            "status": "ok",
            "size": 163,
            "sha256": "51ab…",
            "mime": "application/zip",
            "archive": "zip",
        },
        {
            "path": "old.zip/notes.txt",
            "depth": 2,
            "status": "ok",
            "size": 59,
            "sha256": "0c1d…",
            "mime": "text/plain",
            "artifact": "3-notes.txt",
        },
        {
            "path": "../../etc/passwd",
            "depth": 1,
            "status": "refused",
            "size": 20,
            "sha256": None,
            "mime": None,
            "code": "hostile-input",
            "reason": "the entry's path '../../etc/passwd' climbs out of the archive (..)",
        },
    ],
    "counts": {"ok": 3, "refused": 1, "failed": 0},
    "artifacts": [
        {"name": "1-q1.pdf", "mime": "application/pdf", "size": 34824},
        {"name": "3-notes.txt", "mime": "text/plain", "size": 59},
    ],
}


@router.post(
    "/unpack",
    operation_id="unpack",
    openapi_extra=feeds("unpack"),
    summary="Unpack an archive: the tree of its entries, each file an artifact",
    responses={
        200: {
            "description": "The entries (``X-Job-Status`` says ``partial`` when some were "
            "refused or failed)",
            "content": {"application/json": {"example": UNPACK_EXAMPLE}},
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(404, 409, 413, 415, 422, 429, 503),
    },
)
async def unpack(
    services: ServicesDep,
    client: JobClientDep,
    file: Annotated[
        UploadFile,
        File(
            description="The archive: zip (plain, ZipCrypto, AES), tar, tar.gz/.bz2/.xz/.zst, "
            "7z, or a single .gz/.bz2/.xz/.zst/.lzma stream."
        ),
    ],
    password: Annotated[
        str | None,
        Form(
            description="Password of an encrypted archive (zip, 7z).",
            json_schema_extra={"format": "password"},
        ),
    ] = None,
    wait: Annotated[float | None, Query(ge=0, description="Seconds to wait for the result")] = None,
    priority: Annotated[int, Form(ge=-100, le=100)] = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Upload the archive as the multipart ``file`` part. Every entry at every depth is
    listed (``path`` inside the archive, nested archives' entries under theirs,
    ``depth``, ``size``, ``sha256``, detected ``mime``, ``status`` ``ok``, ``refused``
    or ``failed`` with a ``code`` and ``reason``). Limits (``archives.*`` settings,
    docs/archives.md) cut an entry or the walk with ``limit-exceeded``. Not an archive:
    ``415``; an archive that cannot be opened at all: ``422``."""
    params: dict[str, Any] = {}
    if password:
        params["password"] = password
    job_input = await store_upload(services, file)
    return await answer_files(
        services, client, "unpack", params, job_input, wait, priority, accept, as_json=True
    )
