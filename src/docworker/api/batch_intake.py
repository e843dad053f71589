"""The inputs of a batch into the blob store, one at a time, from any source of files.

A source is an async generator of :class:`SourceFile`: a name and a readable stream, or
a coroutine that stores the file itself (an archive's entry, a URL fetched), or an
error (a file that cannot be one: the child is recorded failed). The sources of a
multipart body (its ``file`` and ``archive`` parts, its ``urls`` and ``uris`` lists)
are in :mod:`~docworker.api.batch_sources`. :func:`store_files` stores each file
before it asks the source for the next, so a batch of ten thousand files holds one of
them at a time; what it keeps is each file's stored reference (its URI, sha256, size
and name), which the job store needs to make the children, or the error of a child
that failed: a line each in a temporary file
(:class:`~docworker.jobs.models.SpooledInputs`), not in memory.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from docworker.api.deps import Services
from docworker.api.uploads import store_input
from docworker.errors import DocworkerError, InputError, InvalidParameter, PayloadTooLarge
from docworker.jobs.models import SpooledInputs
from docworker.jobs.queue import JobInput
from docworker.storage import StoredBlob

#: The field of a batch's multipart body that carries its files (repeated).
FILE_FIELD = "file"
#: Longest name a child keeps (its path as the client sent it).
MAX_NAME_CHARS = 1024


@dataclass
class SourceFile:
    """One file of a batch as its source gives it: its name (a relative path, maybe)
    and either its bytes (``stream``, read once), or ``store`` (stores it and gives its
    input, whose own name comes first; an input error it raises makes the child
    failed), or ``error`` (the child is recorded failed with it, nothing stored).
    ``origin`` is kept in a failed child's input (the URL or URI it came from)."""

    name: str | None
    stream: IO[bytes] | None = None
    store: Callable[[], Awaitable[JobInput]] | None = None
    error: DocworkerError | None = None
    origin: dict[str, Any] = field(default_factory=dict)
    #: Fetched from elsewhere (a URL, a storage URI): a few are fetched at once.
    remote: bool = False


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


async def store_files(
    services: Services,
    source: AsyncGenerator[SourceFile],
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
        # Closed whatever stops it: a source's working files go with it, not at collection.
        async with contextlib.aclosing(source):
            await _store_each(services, source, inputs, limit, max_files, on_first)
    except BaseException:
        inputs.close()
        raise
    return inputs


def too_many_files(count: int, max_files: int) -> PayloadTooLarge:
    """The refusal of a batch of ``count`` files, past ``max_files``."""
    return PayloadTooLarge(
        "batch files",
        count,
        max_files,
        f"a batch carries at most {max_files:,} files (batches.max_files)",
    )


async def _store_each(
    services: Services,
    source: AsyncGenerator[SourceFile],
    inputs: SpooledInputs,
    limit: int,
    max_files: int,
    on_first: Callable[[], None] | None,
) -> None:
    window = _Window(services, limit)
    try:
        async with anyio.create_task_group() as group:
            async for item in source:
                if not inputs and not window and on_first is not None:
                    on_first()
                if len(inputs) + len(window) >= max_files:
                    raise too_many_files(len(inputs) + len(window) + 1, max_files)
                if item.remote:
                    await window.add(group, item, inputs)
                    continue
                await window.drain(inputs)
                inputs.append(await _stored(services, item, limit))
            await window.drain(inputs)
    except BaseExceptionGroup as group_error:
        # The task group's wrapping undone: the one error is the request's answer.
        if len(group_error.exceptions) == 1:
            raise group_error.exceptions[0] from None
        raise
    if not inputs:
        raise InvalidParameter(
            FILE_FIELD,
            f"a batch needs one file or more: multipart parts named '{FILE_FIELD}', an "
            "'archive' part, or a 'urls' or 'uris' list",
        )


@dataclass
class _Pending:
    item: SourceFile
    done: anyio.Event = field(default_factory=anyio.Event)
    stored: dict[str, Any] | None = None
    failure: BaseException | None = None


class _Window:
    """Remote files (URLs, URIs) fetched a few at a time, taken in their order: half of
    ``server.remote_inputs_at_once`` per batch, so that one batch never holds every
    turn of the API process (single jobs' ``url`` and ``uri`` wait for the same turns).
    A fetch never raises into the task group: its failure is raised when its turn to
    be taken comes, in order."""

    def __init__(self, services: Services, limit: int) -> None:
        self.services = services
        self.limit = limit
        self.size = max(1, services.settings.server.remote_inputs_at_once // 2)
        self.pending: deque[_Pending] = deque()

    def __len__(self) -> int:
        return len(self.pending)

    async def add(self, group: TaskGroup, item: SourceFile, inputs: SpooledInputs) -> None:
        if len(self.pending) >= self.size:
            await self._take(inputs)
        pending = _Pending(item)
        self.pending.append(pending)
        group.start_soon(self._fetch, pending)

    async def drain(self, inputs: SpooledInputs) -> None:
        while self.pending:
            await self._take(inputs)

    async def _take(self, inputs: SpooledInputs) -> None:
        pending = self.pending.popleft()
        await pending.done.wait()
        if pending.failure is not None:
            raise pending.failure
        assert pending.stored is not None
        inputs.append(pending.stored)

    async def _fetch(self, pending: _Pending) -> None:
        try:
            pending.stored = await _stored(self.services, pending.item, self.limit)
        except Exception as exc:  # noqa: BLE001 - raised in order, by _take
            pending.failure = exc
        finally:
            pending.done.set()


async def _stored(services: Services, item: SourceFile, limit: int) -> dict[str, Any]:
    """What the job store keeps of one file: its stored input, or its error."""
    error = item.error
    if error is None and item.store is not None:
        try:
            stored = await item.store()
        except InputError as exc:
            error = exc
        else:
            return stored.as_dict() | {"name": stored.name or child_name(item.name)}
    if error is not None:
        return {"name": child_name(item.name), **item.origin, "error": error.to_dict()}
    stream = item.stream
    assert stream is not None, "a source file has a stream, a store or an error"

    def put() -> StoredBlob:
        stream.seek(0)
        return services.blobs.put_stream(stream, max_bytes=limit)

    blob = await anyio.to_thread.run_sync(store_input, put)
    return JobInput(blob=blob, name=child_name(item.name)).as_dict()
