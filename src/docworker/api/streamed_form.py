"""A multipart body read part by part, for requests that carry many files.

Starlette's form parser reads the whole body before the route sees any of it, each
file part spooled to a temporary file of its own (in memory up to a megabyte) and all
of them kept until the form is closed: ten thousand small files are ten thousand
spools at once. :class:`StreamedForm` feeds python-multipart's streaming parser one
chunk of the body at a time and hands each file part to its reader as soon as the part
ends, as ``(field, filename, stream)``; the body is not read further until the reader
asks for the next part, so one file part is held at a time (spooled, in memory up to
:data:`SPOOL_BYTES`), whatever the count. Text fields are kept (each bounded) and read
once the files are.

Everything that blocks is done in worker threads: writing to a spool that went to
disk, and whatever the reader does with each part.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from tempfile import SpooledTemporaryFile
from typing import IO, Any

import anyio.to_thread
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from docworker.errors import InvalidParameter

#: Bytes of one file part held in memory before its spool goes to a temporary file.
SPOOL_BYTES = 1024 * 1024
#: Longest header block of one part.
MAX_HEADER_BYTES = 16 * 1024
#: Most text fields a body may have.
MAX_FIELDS = 100


@dataclass
class FilePart:
    """One file part of the body, whole, rewound; closed when the reader asks for the next."""

    field: str
    #: As the client sent it (a path, perhaps); None when empty.
    filename: str | None
    content_type: str | None
    stream: IO[bytes]


@dataclass
class _Part:
    field: str
    filename: str | None
    content_type: str | None
    #: A text field's bytes, or a file part's spool.
    data: bytearray | None
    spool: Any


class StreamedForm:
    """The multipart body of ``request``, read as its file parts are asked for
    (:meth:`files`); its text fields are in :attr:`fields` as they are read (all of
    them once :meth:`files` has ended). Each text field is at most ``max_field_bytes``;
    a malformed body, a part without a name, a text field given twice or too long is a
    422 (:class:`InvalidParameter`). ``check_field`` sees each part's field name (and
    whether it is a file) as soon as its headers are read, to refuse it early."""

    def __init__(
        self,
        request: Request,
        *,
        max_field_bytes: int,
        check_field: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.request = request
        self.max_field_bytes = max_field_bytes
        self.check_field = check_field
        self.fields: dict[str, str] = {}
        _, options = parse_options_header(request.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        if not boundary:
            raise InvalidParameter("content-type", "a multipart body needs a boundary")
        self._boundary = boundary
        charset = options.get(b"charset", b"utf-8")
        try:
            self._charset = codecs.lookup(charset.decode("latin-1")).name
        except LookupError:
            self._charset = "utf-8"

    async def files(self) -> AsyncGenerator[FilePart]:
        """The file parts in the body's order; the body is read as they are asked for."""
        events = _Events()
        parser = MultipartParser(self._boundary, events.callbacks())
        part: _Part | None = None
        try:
            async for chunk in self.request.stream():
                _feed(parser, chunk)
                if events.header_bytes > MAX_HEADER_BYTES:
                    raise InvalidParameter("body", "a part's headers are too long")
                for kind, value in events.taken():
                    if kind == "headers":
                        part = self._begin(value)
                    elif kind == "data" and part is not None:
                        await self._take(part, value)
                    elif kind == "end" and part is not None:
                        finished, part = part, None
                        if finished.spool is None:
                            self._keep_field(finished)
                            continue
                        finished.spool.seek(0)
                        with finished.spool:
                            yield FilePart(
                                finished.field,
                                finished.filename,
                                finished.content_type,
                                finished.spool,
                            )
            _feed(parser, None)
            if part is not None:
                raise _malformed()
        finally:
            if part is not None and part.spool is not None:
                part.spool.close()

    def _begin(self, headers: list[tuple[bytes, bytes]]) -> _Part:
        found = dict(headers)
        _, options = parse_options_header(found.get(b"content-disposition", b""))
        if b"name" not in options:
            raise InvalidParameter("body", "every part needs a Content-Disposition with a name")
        field = self._decode(options[b"name"], "body")
        is_file = b"filename" in options
        if self.check_field is not None:
            self.check_field(field, is_file)
        if not is_file:
            if field in self.fields:
                raise InvalidParameter(field, "is given twice")
            if len(self.fields) >= MAX_FIELDS:
                raise InvalidParameter("body", f"more than {MAX_FIELDS} text fields")
            return _Part(field, None, None, bytearray(), None)
        filename = self._decode(options[b"filename"], field) or None
        content_type = found.get(b"content-type")
        return _Part(
            field,
            filename,
            content_type.decode("latin-1") if content_type else None,
            None,
            SpooledTemporaryFile(max_size=SPOOL_BYTES),
        )

    async def _take(self, part: _Part, data: bytes) -> None:
        if part.data is not None:
            if len(part.data) + len(data) > self.max_field_bytes:
                raise InvalidParameter(part.field, f"is longer than {self.max_field_bytes:,} bytes")
            part.data.extend(data)
        elif getattr(part.spool, "_rolled", True):  # on disk: the write may block
            await anyio.to_thread.run_sync(part.spool.write, data)
        else:
            part.spool.write(data)

    def _keep_field(self, part: _Part) -> None:
        assert part.data is not None
        try:
            self.fields[part.field] = part.data.decode(self._charset)
        except UnicodeDecodeError:
            raise InvalidParameter(part.field, f"is not {self._charset} text") from None

    def _decode(self, raw: bytes, name: str) -> str:
        try:
            return raw.decode(self._charset)
        except UnicodeDecodeError:
            raise InvalidParameter(name, f"a part's name is not {self._charset} text") from None


class _Events:
    """What the parser reported while it read a chunk: ``("headers", [(name, value)])``,
    ``("data", bytes)`` and ``("end", None)`` per part, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.header_bytes = 0
        self._name = b""
        self._value = b""
        self._headers: list[tuple[bytes, bytes]] = []

    def callbacks(self) -> Any:
        return {
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": lambda: self.events.append(("end", None)),
        }

    def taken(self) -> list[tuple[str, Any]]:
        events, self.events = self.events, []
        return events

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_bytes += end - start
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_bytes += end - start
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._name.lower(), self._value))
        self._name = self._value = b""

    def _headers_finished(self) -> None:
        self.events.append(("headers", self._headers))
        self._headers = []
        self.header_bytes = 0

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(("data", data[start:end]))


def _feed(parser: MultipartParser, chunk: bytes | None) -> None:
    """Give the parser the next chunk of the body (None: the body has ended)."""
    try:
        if chunk is None:
            parser.finalize()
        else:
            parser.write(chunk)
    except FormParserError:
        raise _malformed() from None


def _malformed() -> InvalidParameter:
    return InvalidParameter("body", "is not a well-formed multipart/form-data body")
