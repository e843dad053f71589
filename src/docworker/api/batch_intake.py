"""The inputs of a batch into the blob store, one at a time, from any source of files.

A source is an async iterator of :class:`SourceFile` (a name and a readable stream):
the files of a multipart body (:func:`form_files`) today. :func:`store_files` stores
each file before it asks the source for the next, so a batch of ten thousand files
holds one of them at a time; what it keeps is each file's stored reference (its URI,
sha256, size and name), which the job store needs to make the children: a line each
in a temporary file (:class:`~docworker.jobs.models.SpooledInputs`), not in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

import anyio.to_thread

from docworker.api.deps import Services
from docworker.api.streamed_form import FilePart
from docworker.api.uploads import store_input
from docworker.errors import InvalidParameter, PayloadTooLarge
from docworker.jobs.models import SpooledInputs
from docworker.jobs.queue import JobInput
from docworker.storage import StoredBlob

#: The field of a batch's multipart body that carries its files (repeated).
FILE_FIELD = "file"
#: Fields that name inputs batches do not take yet: archives to unpack and lists of
#: URLs or stored URIs.
NOT_YET_FIELDS = frozenset(
    {"archive", "archives", "password", "url", "urls", "uri", "uris", "input_uri", "input_uris"}
)
#: Longest name a child keeps (its path as the client sent it).
MAX_NAME_CHARS = 1024


@dataclass
class SourceFile:
    """One file of a batch as its source gives it: its name (a relative path, maybe)
    and its bytes, read once."""

    name: str | None
    stream: IO[bytes]


def child_name(raw: str | None) -> str | None:
    """The name a child keeps: the client's relative path, with ``\\`` as ``/``, without
    a drive, a leading ``/``, ``.`` or ``..`` components; None when nothing is left."""
    if not raw:
        return None
    parts = [p for p in PurePosixPath(raw.replace("\\", "/")).parts if p not in ("/", ".", "..")]
    if parts and len(parts[0]) == 2 and parts[0][1] == ":":
        parts = parts[1:]
    name = "/".join(parts)
    return name[-MAX_NAME_CHARS:] or None


def check_form_field(field: str, is_file: bool) -> None:
    """Refuse a part of a batch's body that names inputs batches do not take (422), or a
    file under another field than ``file``."""
    if field in NOT_YET_FIELDS:
        raise InvalidParameter(
            field,
            "batches do not take archives or lists of URLs or URIs yet: send each file as a "
            f"multipart part named '{FILE_FIELD}'",
        )
    if not is_file and field == FILE_FIELD:
        raise InvalidParameter(field, "must be a file part (with a filename), not a text field")
    if is_file and field != FILE_FIELD:
        raise InvalidParameter(
            field, f"a batch's files are multipart parts named '{FILE_FIELD}' (repeated)"
        )


async def form_files(parts: AsyncIterator[FilePart]) -> AsyncIterator[SourceFile]:
    """The files of a batch's multipart body as a source."""
    async for part in parts:
        yield SourceFile(part.filename, part.stream)


async def store_files(
    services: Services,
    source: AsyncIterator[SourceFile],
    *,
    max_files: int,
    on_first: Callable[[], None] | None = None,
) -> SpooledInputs:
    """Store each file of ``source`` in the blob store before the next is read; their
    stored inputs in order (the caller closes them). Past ``max_files`` files:
    :class:`PayloadTooLarge` (413), with what was stored left to the request's sweep.
    ``on_first`` runs before the first file is stored (to check the request's fields as
    early as they are known)."""
    limit = services.settings.server.largest_upload
    inputs = SpooledInputs()
    try:
        await _store_each(services, source, inputs, limit, max_files, on_first)
    except BaseException:
        inputs.close()
        raise
    return inputs


async def _store_each(
    services: Services,
    source: AsyncIterator[SourceFile],
    inputs: SpooledInputs,
    limit: int,
    max_files: int,
    on_first: Callable[[], None] | None,
) -> None:
    async for item in source:
        if not inputs and on_first is not None:
            on_first()
        if len(inputs) >= max_files:
            raise PayloadTooLarge(
                "batch files",
                len(inputs) + 1,
                max_files,
                f"a batch carries at most {max_files:,} files (batches.max_files)",
            )
        stream = item.stream

        def put(stream: IO[bytes] = stream) -> StoredBlob:
            stream.seek(0)
            return services.blobs.put_stream(stream, max_bytes=limit)

        blob = await anyio.to_thread.run_sync(store_input, put)
        inputs.append(JobInput(blob=blob, name=child_name(item.name)).as_dict())
    if not inputs:
        raise InvalidParameter(
            FILE_FIELD, f"a batch needs one multipart part named '{FILE_FIELD}' or more"
        )
