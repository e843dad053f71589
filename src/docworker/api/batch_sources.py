"""The sources of a batch's multipart body: its ``file`` parts, the entries of its
``archive`` parts, and its ``urls`` and ``uris`` lists, as one stream of
:class:`~docworker.api.batch_intake.SourceFile` in the body's order.

- ``file``: each part is a child, under its filename.
- ``archive``: each part is copied to a working folder and walked by the project's
  archive reader (:func:`~docworker.formats.archives.walk_archive`, under the
  ``archives.*`` limits, nested archives unpacked in turn as ``unpack`` does): each
  file entry is a child named by its path in the archive, stored and deleted before
  the next entry is read. An entry refused on its own (a path out of the archive, a
  link, a device, a file past ``archives.max_entry_bytes``) or that cannot be read (a
  password missing or wrong, damaged data) is a child recorded ``failed`` with that
  error. A limit of the archive as a whole (its entries, its total bytes, its nesting
  depth, a compression ratio) or a bomb (entries sharing their data, an archive holding
  itself) refuses the batch: the archive is hostile or too large, not one of its files.
- ``urls`` and ``uris``: text fields, a JSON array of strings or one per line, read
  once the body is (they may come anywhere in it); each is fetched (``urls``, through
  the URL policy) or copied (``uris``, under ``storage.read_roots``) into the blob
  store at intake, as a single job's ``url`` and ``uri`` are; one that cannot be is a
  child recorded ``failed`` with its error.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterator
from pathlib import Path
from typing import IO

import anyio.to_thread

from docworker.api.batch_intake import FILE_FIELD, SourceFile, too_many_files
from docworker.api.deps import Services
from docworker.api.sources import MAX_REFERENCE_LENGTH, store_uri, store_url, url_file_name
from docworker.api.streamed_form import FilePart, StreamedForm
from docworker.api.uploads import store_input
from docworker.errors import (
    ArchiveBomb,
    DocworkerError,
    HostileInput,
    InputError,
    InvalidParameter,
    LimitExceeded,
    PayloadTooLarge,
)
from docworker.formats.archives import Entry, EntryStatus, walk_archive
from docworker.jobs.queue import JobInput
from docworker.storage import StoredBlob
from docworker.url_policy import shown_url

ARCHIVE_FIELD = "archive"
PASSWORD_FIELD = "password"  # noqa: S105 - a field's name, not a password
URLS_FIELD = "urls"
URIS_FIELD = "uris"
#: Fields a client may mean for another: refused naming the one a batch takes.
_MISNAMED = {
    "archives": ARCHIVE_FIELD,
    "url": URLS_FIELD,
    "uri": URIS_FIELD,
    "input_uri": URIS_FIELD,
    "input_uris": URIS_FIELD,
}
#: The archive limits that judge an archive as a whole, and their settings: past one,
#: the batch is refused rather than a child failed.
WHOLE_ARCHIVE_LIMITS = {
    "entries": "archives.max_entries",
    "unpacked bytes": "archives.max_total_bytes",
    "archive depth": "archives.max_depth",
    "compression ratio": "archives.max_ratio",
    "compression ratio (declared)": "archives.max_ratio",
}


class BatchForm:
    """A batch's multipart body as a source of files (see the module)."""

    def __init__(
        self,
        form: StreamedForm,
        services: Services,
        *,
        early_fields: Callable[[], None] | None = None,
    ) -> None:
        self.form = form
        self.services = services
        #: Checks the fields read so far before an archive is copied and walked.
        self.early_fields = early_fields
        #: Files given so far (children to be, failed ones too).
        self.count = 0
        self._archives = 0

    def check_field(self, field: str, is_file: bool) -> None:
        """:func:`check_form_field`, knowing whether an archive part came before."""
        check_form_field(field, is_file, after_archive=bool(self._archives))

    async def files(self) -> AsyncGenerator[SourceFile]:
        """Every file of the body in its order, the lists' after the parts."""
        async with contextlib.aclosing(self.form.files()) as parts:
            async for part in parts:
                if part.field != ARCHIVE_FIELD:
                    self.count += 1
                    yield SourceFile(part.filename, part.stream)
                    continue
                self._archives += 1
                # Closed when this is: its working folder goes at once.
                async with contextlib.aclosing(self._archive(part)) as entries:
                    async for entry in entries:
                        self.count += 1
                        yield entry
        urls = reference_list(self.form.fields, URLS_FIELD)
        uris = reference_list(self.form.fields, URIS_FIELD)
        max_files = self.services.settings.batches.max_files
        if self.count + len(urls) + len(uris) > max_files:
            raise too_many_files(self.count + len(urls) + len(uris), max_files)
        for url in urls:
            yield self._url(url)
        for uri in uris:
            yield self._uri(uri)

    async def _archive(self, part: FilePart) -> AsyncGenerator[SourceFile]:
        """The children of one archive part, an entry at a time (see the module)."""
        if self.early_fields is not None:
            self.early_fields()
        name = part.filename or "archive"
        folder = Path(await anyio.to_thread.run_sync(tempfile.mkdtemp, None, "docworker-batch-"))
        try:
            path = folder / "archive"
            await anyio.to_thread.run_sync(_copy, part.stream, path)
            settings = self.services.settings.archives
            password = self.form.fields.get(PASSWORD_FIELD) or None

            def walk() -> Iterator[Entry]:
                return walk_archive(
                    path, name=name, limits=settings, workdir=folder, password=password
                )

            try:
                entries = await anyio.to_thread.run_sync(walk)
            except InputError as exc:  # no archive read here
                raise _archive_refused(name, exc) from None
            try:
                while (entry := await self._next(name, entries)) is not None:
                    if entry.status is not EntryStatus.OK and entry.file is not None:
                        # A nested archive that could not be read: its bytes are no child.
                        await anyio.to_thread.run_sync(entry.file.unlink)
                        entry.file = None
                    item = self._entry(name, entry)
                    if item is not None:
                        yield item
            finally:
                # Its readers closed, its nested archives' files deleted (off the loop).
                if isinstance(entries, Generator):
                    await anyio.to_thread.run_sync(entries.close)
        finally:
            await anyio.to_thread.run_sync(shutil.rmtree, folder, True)

    async def _next(self, archive: str, entries: Iterator[Entry]) -> Entry | None:
        """The next entry of the walk (off the event loop), None after the last. The
        archive is opened at the first: one that cannot be (damaged, its names
        encrypted, a decoder asking for too much memory) refuses the batch."""
        try:
            return await anyio.to_thread.run_sync(next, entries, None)
        except InputError as exc:
            raise _archive_refused(archive, exc) from None

    def _entry(self, archive: str, entry: Entry) -> SourceFile | None:
        """The child of one entry of the walk: its file stored, or its error; None for an
        archive unpacked in turn (its files are the children). Raises the refusal of the
        batch for an entry that says the archive as a whole is at fault."""
        if entry.status is EntryStatus.OK and entry.file is None:
            return None  # an archive whose entries follow, or one like an earlier one
        if entry.status is EntryStatus.OK:
            assert entry.file is not None
            return SourceFile(entry.path, store=self._entry_store(entry.file))
        error = entry.error or HostileInput(entry.reason or "the entry was refused")
        if _whole(error):
            raise _archive_refused(archive, error, entry.path)
        error.fields.setdefault("path", entry.path)
        return SourceFile(entry.path if entry.path != "." else archive, error=error)

    def _entry_store(self, file: Path) -> Callable[[], Awaitable[JobInput]]:
        services = self.services
        limit = services.settings.server.largest_upload

        async def store() -> JobInput:
            def put() -> StoredBlob:
                with file.open("rb") as stream:
                    return services.blobs.put_stream(stream, max_bytes=limit)

            try:
                return JobInput(blob=await anyio.to_thread.run_sync(store_input, put))
            finally:
                await anyio.to_thread.run_sync(lambda: file.unlink(missing_ok=True))

        return store

    def _url(self, url: str) -> SourceFile:
        limit = self.services.settings.server.largest_upload
        return SourceFile(
            url_file_name(url),
            store=lambda: store_url(self.services, url, limit),
            origin={"url": shown_url(url)},
            remote=True,
        )

    def _uri(self, uri: str) -> SourceFile:
        limit = self.services.settings.server.largest_upload
        return SourceFile(
            url_file_name(uri),
            store=lambda: store_uri(self.services, uri, limit),
            origin={"uri": uri[:MAX_REFERENCE_LENGTH]},
            remote=True,
        )


def check_form_field(field: str, is_file: bool, *, after_archive: bool = False) -> None:
    """Refuse a part of a batch's body that it does not take (422), as soon as its
    headers are read: a misnamed input field, a text field where a file is wanted or the
    other way round, a password after the archives it would open."""
    if field in _MISNAMED:
        raise InvalidParameter(
            field, f"a batch does not take '{field}': send '{_MISNAMED[field]}' instead"
        )
    files = (FILE_FIELD, ARCHIVE_FIELD)
    if not is_file and field in files:
        raise InvalidParameter(field, "must be a file part (with a filename), not a text field")
    if is_file and field not in files:
        raise InvalidParameter(
            field, f"a batch's files are multipart parts named '{FILE_FIELD}' or '{ARCHIVE_FIELD}'"
        )
    if field == PASSWORD_FIELD and after_archive:
        raise InvalidParameter(
            field, "must come before the 'archive' parts it opens (they are read as they come)"
        )


def reference_list(fields: dict[str, str], field: str) -> list[str]:
    """The URLs or URIs of the text field ``field``: a JSON array of strings, or one per
    line (blank lines skipped); ``[]`` when it is absent. A malformed list, an empty or
    too long item: 422 naming the field."""
    raw = fields.get(field)
    if raw is None:
        return []
    text = raw.strip()
    if text.startswith(("[", "{")):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise InvalidParameter(field, f"is not a JSON array of strings: {exc}") from None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise InvalidParameter(field, "is not a JSON array of strings")
        items = [item.strip() for item in items]
    else:
        items = [line.strip() for line in text.splitlines() if line.strip()]
    for index, item in enumerate(items):
        if not item:
            raise InvalidParameter(f"{field}[{index}]", "is empty")
        if len(item) > MAX_REFERENCE_LENGTH:
            raise InvalidParameter(
                f"{field}[{index}]", f"is longer than {MAX_REFERENCE_LENGTH} characters"
            )
    return items


def _whole(error: DocworkerError) -> bool:
    """Whether an entry's error says the archive as a whole is at fault."""
    if isinstance(error, ArchiveBomb):
        return True
    return isinstance(error, LimitExceeded) and error.fields.get("limit") in WHOLE_ARCHIVE_LIMITS


def _archive_refused(
    archive: str, error: DocworkerError, path: str | None = None
) -> DocworkerError:
    """The refusal of a batch for its archive ``archive``: the error of the archive (it
    is no archive, it cannot be opened), or of its entry ``path`` that judges it whole,
    said of the archive (a limit's 413 or 422 naming the limit and its setting)."""
    where = {"field": ARCHIVE_FIELD, "archive": archive[:200]}
    if path is not None:
        where["path"] = path[:1024]
    at = f" at '{path[:200]}'" if path else ""
    detail = f"the archive '{archive[:200]}' is refused{at}: {error.detail}"
    if isinstance(error, LimitExceeded) and (limit := str(error.fields.get("limit"))):
        detail += f" ({WHOLE_ARCHIVE_LIMITS[limit]})"
        value, maximum = error.fields.get("value", 0), error.fields.get("maximum", 0)
        kind = PayloadTooLarge if limit in ("entries", "unpacked bytes") else LimitExceeded
        refused: DocworkerError = kind(limit, value, maximum, detail)
    elif isinstance(error, ArchiveBomb):
        refused = ArchiveBomb(detail)
    else:
        refused = error
    refused.fields.update(where)
    return refused


def _copy(stream: IO[bytes], path: Path) -> None:
    """The archive part's spool into a file of its own (the readers seek in it)."""
    stream.seek(0)
    with path.open("xb") as out:
        shutil.copyfileobj(stream, out, 256 * 1024)
