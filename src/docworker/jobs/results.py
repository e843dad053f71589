"""A job's result in the blob store: written under the output limit, read back whole
(bounded, by its caller) or streamed a chunk at a time.

What a job leaves under ``results/<job id>/``:

- ``result.json``: the operation's payload as JSON;
- ``.content``: when the payload's ``content`` is text (``extract``'s, ``ocr``'s), that
  text on its own, UTF-8, left out of ``result.json`` (a name no artifact can take:
  artifact names never start with a dot);
- the artifacts, under their names.

The job row keeps the reference :func:`store_result` returns::

    {"uri", "mime", "size",
     "content": {"uri", "size", "output"},       # null when there is no text apart
     "artifacts": [{"name", "mime", "size", "uri"}]}

The text is kept apart so that the API never loads a result to answer it: a client
that takes the text alone (``Accept: text/markdown``) gets the stored bytes as they
are, and a JSON answer is the stored JSON with the text spliced in, escaped a chunk
at a time (:class:`JsonAnswer`). A result stored before the text was kept apart has
no ``content`` entry (its text is inside ``result.json``); every reader here takes
both.

Writing counts every byte against ``limits.max_output_bytes`` as it goes (artifacts
by their size before any is copied); past it the job fails with ``limit-exceeded``
and what it wrote is deleted. The JSON is written a member at a time, so the worker
never holds a second copy of a large payload as one string.
"""

from __future__ import annotations

import codecs
import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from docworker.errors import DependencyDown, LimitExceeded, ProcessingFailed
from docworker.operations.base import Result
from docworker.storage import CHUNK, BlobStore

#: The payload's JSON, and its text stored apart, beside the artifacts.
RESULT_BLOB = "result.json"
CONTENT_BLOB = ".content"
#: Characters of text encoded at a time while the content is written.
_TEXT_SLICE = 256 * 1024
#: How deep the JSON writer splits the payload into members and items before it encodes
#: one whole (the payload, its sections, their lists: a page, a chunk, a block).
_SPLIT_DEPTH = 3
_SEPARATORS = (",", ":")


class OutputMeter:
    """Counts the bytes a job stores against its limit (None: no limit)."""

    def __init__(self, max_bytes: int | None) -> None:
        self.max_bytes = max_bytes
        self.total = 0

    def take(self, size: int) -> None:
        """Count ``size`` more bytes; :class:`LimitExceeded` once past the limit."""
        self.total += size
        if self.max_bytes is not None and self.total > self.max_bytes:
            raise LimitExceeded(
                "output bytes",
                self.total,
                self.max_bytes,
                f"the job's output passed {self.max_bytes:,} bytes (limits.max_output_bytes) "
                "as it was stored: nothing of it is kept",
            )


def json_pieces(value: Any, depth: int = _SPLIT_DEPTH) -> Iterator[str]:
    """``value`` as compact JSON, in pieces: objects and lists are split into their
    members down to ``depth`` levels, each deeper value encoded whole. The pieces
    joined are ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``."""
    if depth > 0 and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        yield "{"
        for index, (key, member) in enumerate(value.items()):
            yield ("," if index else "") + json.dumps(key, ensure_ascii=False) + ":"
            yield from json_pieces(member, depth - 1)
        yield "}"
    elif depth > 0 and isinstance(value, list | tuple):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ","
            yield from json_pieces(item, depth - 1)
        yield "]"
    else:
        try:
            yield json.dumps(value, ensure_ascii=False, separators=_SEPARATORS, allow_nan=False)
        except ValueError as exc:  # NaN or infinity: not JSON, and no client could read it
            raise ProcessingFailed(f"the result holds a value JSON cannot carry ({exc})") from None


def _encoded(pieces: Iterable[str], meter: OutputMeter) -> Iterator[bytes]:
    """``pieces`` as UTF-8 in chunks of about :data:`CHUNK` bytes, each counted."""
    buffered: list[bytes] = []
    size = 0
    for piece in pieces:
        data = piece.encode()
        buffered.append(data)
        size += len(data)
        if size >= CHUNK:
            meter.take(size)
            yield b"".join(buffered)
            buffered, size = [], 0
    meter.take(size)
    yield b"".join(buffered)


def _text_pieces(text: str) -> Iterator[str]:
    for start in range(0, len(text), _TEXT_SLICE):
        yield text[start : start + _TEXT_SLICE]


def store_result(
    store: BlobStore, job_id: str, result: Result, *, max_bytes: int | None = None
) -> dict[str, Any]:
    """Write the result's artifacts, text content and payload to the blob store, counting
    every byte against ``max_bytes``; the reference kept with the job (see the module).
    Past the limit, or on any failure, what was written is deleted and the error raised."""
    meter = OutputMeter(max_bytes)
    for artifact in result.artifacts:  # their sizes are known: refused before any copy
        meter.take(artifact.path.stat().st_size)
    written: list[str] = []

    def write(name: str, chunks: Iterable[bytes]) -> dict[str, Any]:
        uri = BlobStore.result_uri(job_id, name)
        written.append(uri)
        blob = store.write_chunks(uri, chunks)
        return {"uri": blob.uri, "size": blob.size}

    try:
        artifacts = []
        for artifact in result.artifacts:
            blob = store.write_file(BlobStore.result_uri(job_id, artifact.name), artifact.path)
            written.append(blob.uri)
            entry = {"name": artifact.name, "mime": artifact.mime, "size": blob.size}
            artifacts.append(entry | {"uri": blob.uri})
        payload = result.payload
        content = payload.get("content")
        # "content": None says the text, if any, is not apart (and the ref is not legacy).
        ref: dict[str, Any] = {"content": None}
        if isinstance(content, str):
            payload = {k: v for k, v in payload.items() if k != "content"}
            output = payload.get("output")
            stored = write(CONTENT_BLOB, _encoded(_text_pieces(content), meter))
            ref["content"] = stored | {"output": output if isinstance(output, str) else None}
        if artifacts:
            payload = payload | {
                "artifacts": [{k: v for k, v in a.items() if k != "uri"} for a in artifacts]
            }
        body = write(RESULT_BLOB, _encoded(json_pieces(payload), meter))
    except BaseException:
        for uri in written:
            with contextlib.suppress(Exception):
                store.delete(uri)
        raise
    return {**body, "mime": "application/json", **ref} | (
        {"artifacts": artifacts} if artifacts else {}
    )


@dataclass(frozen=True)
class StoredResult:
    """Where a finished job's result lies (its job row's reference, read)."""

    uri: str
    #: Bytes of ``result.json``.
    size: int
    #: The text content stored apart, and its bytes; None when it is inside the JSON
    #: (or there is none).
    content_uri: str | None = None
    content_size: int = 0
    #: The payload's ``output`` (``text``, ``markdown``, ...), when the content is apart.
    output: str | None = None
    #: Stored by an earlier version, which kept any text content inside the JSON.
    legacy: bool = False

    @classmethod
    def of(cls, ref: dict[str, Any]) -> StoredResult:
        content = ref.get("content") or {}
        return cls(
            uri=str(ref["uri"]),
            size=int(ref.get("size") or 0),
            content_uri=content.get("uri"),
            content_size=int(content.get("size") or 0),
            output=content.get("output"),
            legacy="content" not in ref,
        )

    @property
    def total_size(self) -> int:
        """Bytes of the payload and its content together."""
        return self.size + self.content_size


def read_payload(store: BlobStore, ref: dict[str, Any]) -> dict[str, Any]:
    """The whole payload of a stored result, its content put back in; loads it all (the
    caller decides whether it may, by :attr:`StoredResult.total_size`)."""
    stored = StoredResult.of(ref)
    payload: dict[str, Any] = json.loads(store.read_bytes(stored.uri))
    if stored.content_uri is not None:
        payload["content"] = store.read_bytes(stored.content_uri).decode()
    return payload


def _copy(stream: IO[bytes], size: int) -> Iterator[bytes]:
    """``size`` bytes of ``stream``, a chunk at a time."""
    left = size
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            raise DependencyDown("a stored result ended before its recorded size")
        left -= len(chunk)
        yield chunk


def escaped_text(stream: IO[bytes]) -> Iterator[bytes]:
    """UTF-8 text from ``stream`` as the inside of a JSON string, a chunk at a time; a
    character split between two chunks is decoded whole with the next one."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    while chunk := stream.read(CHUNK):
        text = decoder.decode(chunk)
        if text:
            yield json.dumps(text, ensure_ascii=False)[1:-1].encode()
    rest = decoder.decode(b"", final=True)
    if rest:
        yield json.dumps(rest, ensure_ascii=False)[1:-1].encode()


class JsonAnswer:
    """A stored result as one JSON object, read a chunk at a time: ``members`` first
    (say, the job's id), then the members of ``result.json``, then the content stored
    apart, escaped as it is read. The blobs are opened (and ``result.json`` checked to
    be an object) when it is made, so a missing one fails before an answer starts;
    they are closed when the iteration ends."""

    def __init__(self, store: BlobStore, stored: StoredResult, members: dict[str, Any]) -> None:
        self.stored = stored
        self.members = members
        self._streams = contextlib.ExitStack()
        try:
            self._payload = self._streams.enter_context(store.open(stored.uri))
            self._check_object()
            self._content = (
                self._streams.enter_context(store.open(stored.content_uri))
                if stored.content_uri is not None
                else None
            )
        except BaseException:
            self._streams.close()
            raise

    def _check_object(self) -> None:
        """Whether ``result.json`` starts with ``{`` and ends with ``}`` (what the worker
        writes); left after its ``{``."""
        head = self._payload.read(1)
        self._payload.seek(max(self.stored.size - 1, 0))
        tail = self._payload.read(1)
        if head != b"{" or tail != b"}":
            raise DependencyDown(f"the stored result {self.stored.uri} is not a JSON object")
        self._payload.seek(1)

    def __iter__(self) -> Iterator[bytes]:
        with self._streams:
            head = json.dumps(self.members, ensure_ascii=False, separators=_SEPARATORS)[:-1]
            inner = self.stored.size - 2
            if inner > 0:
                yield (head + ("," if self.members else "")).encode()
                yield from _copy(self._payload, inner)
            else:
                yield head.encode()
            if self._content is not None:
                yield b',"content":"' if inner > 0 or self.members else b'"content":"'
                yield from escaped_text(self._content)
                yield b'"'
            yield b"}"

    def close(self) -> None:
        self._streams.close()
