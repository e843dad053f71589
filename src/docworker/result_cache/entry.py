"""A kept result: what a job's result is in the blob store, as one value a tier holds.

A job's result is a reference (its job row's ``result``: see
:mod:`docworker.jobs.results`) to blobs under ``results/<job id>/``: ``result.json``,
the text content stored apart, the artifacts. A :class:`CachedResult` holds the
reference with each blob's URI replaced by its name in that folder, and the blobs'
bytes; :meth:`CachedResult.restore` writes them under another job's folder and gives
that job's reference, the same shape with its own URIs. So a job served from the cache
owns its copy of the result: its retention, its deletion and the cache's evictions never
take anything from one another.

Encoded (:meth:`CachedResult.encode`) as a magic line, the length of a JSON header, the
header (``ref``, ``files`` as ``[name, size]`` pairs, ``pages``, ``operation``,
``created``) and the files' bytes one after another.
"""

from __future__ import annotations

import contextlib
import json
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from docworker.storage import BlobStore

MAGIC = b"DWRC1\n"
_LENGTH = struct.Struct(">Q")
#: The key that names a blob in a result's reference.
URI = "uri"


class EntryCorrupt(ValueError):
    """Bytes a tier holds that are not an entry (truncated, or of another format)."""


@dataclass(frozen=True)
class CachedResult:
    """A result as the cache keeps it (see the module)."""

    ref: dict[str, Any]
    files: dict[str, bytes]
    operation: str
    #: The pages the result names (the job's ``pages``), for usage and quotas.
    pages: int | None = None
    #: When it was kept (epoch seconds): its life (``cache.ttl``) runs from then.
    created: float = field(default_factory=time.time)

    @property
    def size(self) -> int:
        """Bytes of its blobs (what the tiers' bounds count, with the small header)."""
        return sum(len(data) for data in self.files.values())

    def expired(self, ttl: float, now: float | None = None) -> bool:
        return (time.time() if now is None else now) - self.created >= ttl

    def encode(self) -> bytes:
        header = {
            "ref": self.ref,
            "files": [[name, len(data)] for name, data in self.files.items()],
            "operation": self.operation,
            "pages": self.pages,
            "created": self.created,
        }
        head = json.dumps(header, separators=(",", ":")).encode()
        return b"".join([MAGIC, _LENGTH.pack(len(head)), head, *self.files.values()])

    @classmethod
    def decode(cls, data: bytes) -> CachedResult:
        """The entry encoded in ``data``; :class:`EntryCorrupt` when it is not one."""
        start = len(MAGIC) + _LENGTH.size
        if not data.startswith(MAGIC) or len(data) < start:
            raise EntryCorrupt("not a result cache entry")
        (length,) = _LENGTH.unpack_from(data, len(MAGIC))
        try:
            header = json.loads(data[start : start + length])
            offset = start + length
            files: dict[str, bytes] = {}
            for name, size in header["files"]:
                files[str(name)] = data[offset : offset + int(size)]
                offset += int(size)
            if offset != len(data):
                raise EntryCorrupt("a result cache entry of the wrong length")
            return cls(
                ref=header["ref"],
                files=files,
                operation=str(header["operation"]),
                pages=header.get("pages"),
                created=float(header["created"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise EntryCorrupt(f"an unreadable result cache entry ({exc})") from None

    def restore(self, blobs: BlobStore, job_id: str) -> dict[str, Any]:
        """Write the blobs under ``job_id``'s results and return its reference; on any
        failure what was written is deleted and the error raised."""
        written: list[str] = []
        try:
            for name, data in self.files.items():
                written.append(blobs.write_bytes(BlobStore.result_uri(job_id, name), data).uri)
        except BaseException:
            for uri in written:
                with contextlib.suppress(Exception):
                    blobs.delete(uri)
            raise
        ref: dict[str, Any] = _with_uris(self.ref, lambda name: BlobStore.result_uri(job_id, name))
        return ref


def capture(
    blobs: BlobStore,
    job_id: str,
    ref: dict[str, Any],
    operation: str,
    pages: int | None,
    max_bytes: int,
) -> CachedResult | None:
    """The result ``ref`` of job ``job_id`` read back from the blob store as an entry;
    None when its blobs add up to more than ``max_bytes`` (nothing is read then) or one
    lies outside the job's folder."""
    folder = BlobStore.result_uri(job_id, "")
    uris = list(_uris(ref))
    if any(not uri.startswith(folder) for uri in uris):
        return None
    if sum(int(size or 0) for size in _sizes(ref)) > max_bytes:
        return None
    files = {uri[len(folder) :]: blobs.read_bytes(uri) for uri in uris}
    if sum(len(data) for data in files.values()) > max_bytes:
        return None
    named = _with_uris(ref, lambda uri: uri[len(folder) :])
    return CachedResult(ref=named, files=files, operation=operation, pages=pages)


def _uris(value: Any) -> Iterator[str]:
    """Every blob URI a reference names (the values of its ``uri`` keys, at any depth)."""
    if isinstance(value, dict):
        for key, member in value.items():
            if key == URI and isinstance(member, str):
                yield member
            else:
                yield from _uris(member)
    elif isinstance(value, list):
        for item in value:
            yield from _uris(item)


def _sizes(value: Any) -> Iterator[Any]:
    """The ``size`` beside each ``uri`` of a reference."""
    if isinstance(value, dict):
        if isinstance(value.get(URI), str):
            yield value.get("size")
        for key, member in value.items():
            if key != URI:
                yield from _sizes(member)
    elif isinstance(value, list):
        for item in value:
            yield from _sizes(item)


def _with_uris(value: Any, change: Any) -> Any:
    """``value`` with each ``uri`` passed through ``change``."""
    if isinstance(value, dict):
        return {
            key: change(member)
            if key == URI and isinstance(member, str)
            else _with_uris(member, change)
            for key, member in value.items()
        }
    if isinstance(value, list):
        return [_with_uris(item, change) for item in value]
    return value
