"""Documents a request names instead of uploading them: a storage ``uri`` or a web ``url``.

Either is copied into the blob store as an upload is: streamed a chunk at a time,
content-addressed, in a worker thread (never on the event loop), held for the
request and swept when no job names it (:func:`~docworker.api.uploads.store_input`),
bounded by the route's upload limit (``server.upload_limits``, else
``server.max_upload_bytes``), and at most ``server.remote_inputs_at_once`` at a time
(each holds a thread while it copies: a slow server must not hold them all).

- ``uri``: a storage URL under one of ``storage.read_roots``
  (:class:`~docworker.storage.ReadRoots`); anything else is refused with ``403
  uri-refused``. The file's size is checked before any byte is copied.
- ``url``: an http(s) URL fetched through :class:`~docworker.url_policy.UrlPolicy`
  (``fetch.allow``; private, loopback and link-local addresses refused unless
  ``fetch.private_allow`` names their network; every redirect checked again), the
  whole download bounded by ``fetch.input_timeout``. A body past the limit is cut
  with ``422 limit-exceeded`` and nothing of it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import unquote, urlsplit

import anyio.to_thread
from fastapi import Depends, Form, Request
from starlette.datastructures import UploadFile

from docworker.api.deps import Services
from docworker.api.uploads import store_input, store_upload
from docworker.errors import InvalidParameter
from docworker.jobs.queue import JobInput
from docworker.storage import ReadRoots, StoredBlob
from docworker.url_policy import UrlPolicy

#: The longest ``uri`` or ``url`` taken.
MAX_REFERENCE_LENGTH = 2048

URI_DESCRIPTION = (
    "Instead of a file: a storage URL the service reads (under storage.read_roots), "
    "e.g. s3://incoming/report.pdf."
)
URL_DESCRIPTION = (
    "Instead of a file: an http(s) URL the service fetches (allow-listed in fetch.allow)."
)

UriForm = Annotated[str | None, Form(max_length=MAX_REFERENCE_LENGTH, description=URI_DESCRIPTION)]
UrlForm = Annotated[str | None, Form(max_length=MAX_REFERENCE_LENGTH, description=URL_DESCRIPTION)]


@dataclass(frozen=True)
class InputReference:
    """The ``uri`` or ``url`` a request gave for its document (either may be None), and
    the upload limit of its route."""

    uri: str | None
    url: str | None
    limit: int


async def input_reference(
    request: Request, uri: UriForm = None, url: UrlForm = None
) -> InputReference:
    """The route's :class:`InputReference` (a FastAPI dependency: it documents the
    ``uri`` and ``url`` form fields)."""
    services: Services = request.app.state.services
    limit = services.settings.server.upload_limit(request.url.path)
    return InputReference(uri or None, url or None, limit)


InputReferenceDep = Annotated[InputReference, Depends(input_reference)]


async def store_document(
    services: Services, upload: UploadFile | None, reference: InputReference
) -> JobInput:
    """The request's document in the blob store: the uploaded ``file`` part, or the
    file its ``uri`` or ``url`` names; exactly one of them."""
    given = [
        name
        for name, value in (("file", upload), ("uri", reference.uri), ("url", reference.url))
        if value is not None
    ]
    if len(given) > 1:
        raise InvalidParameter(
            given[1], f"the document is given one way only, not as {' and '.join(given)}"
        )
    if reference.uri is not None:
        return await store_uri(services, reference.uri, reference.limit)
    if reference.url is not None:
        return await store_url(services, reference.url, reference.limit)
    if upload is None:
        raise InvalidParameter(
            "file",
            "the document is required: a multipart part named 'file', or a 'uri' or 'url' field",
        )
    return await store_upload(services, upload)


async def store_uri(services: Services, uri: str, limit: int) -> JobInput:
    """Copy the file at the storage URL ``uri`` (under ``storage.read_roots``) into the
    blob store, streamed, in a worker thread."""
    storage = services.settings.storage
    roots = ReadRoots(storage.read_roots, storage)
    names: list[str] = []

    def put() -> StoredBlob:
        blob, name = roots.copy_into(services.blobs, uri, limit)
        names.append(name)
        return blob

    blob = await anyio.to_thread.run_sync(store_input, put, limiter=services.fetch_slots)
    return JobInput(blob=blob, name=names[-1] or None)


async def store_url(services: Services, url: str, limit: int) -> JobInput:
    """Fetch ``url`` through the URL policy into the blob store, streamed, in a worker
    thread: bounded by ``limit`` bytes and ``fetch.input_timeout`` seconds."""
    fetch = services.settings.fetch
    policy = UrlPolicy.of(fetch)
    found: list[tuple[str | None, str | None]] = []

    def put() -> StoredBlob:
        with policy.stream(url, max_bytes=limit, deadline=fetch.input_timeout) as fetched:
            blob = services.blobs.put_chunks(fetched.chunks, max_bytes=limit)
            found.append((url_file_name(fetched.url), fetched.mime))
        return blob

    blob = await anyio.to_thread.run_sync(store_input, put, limiter=services.fetch_slots)
    name, mime = found[-1]
    return JobInput(blob=blob, name=name, mime=mime)


def url_file_name(url: str) -> str | None:
    """The file name the URL's path ends with, if any."""
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    return name[:255] or None
