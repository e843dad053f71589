"""Walking an archive: every entry at every depth, unpacked under limits, as a stream.

:func:`walk_archive` yields one :class:`Entry` per member, depth first, as it is
read; nothing is held but the entry being written, so a caller can take entries
one by one (store them, make a job of each) from an archive of any size. An entry
that is itself an archive is listed, then its own entries follow (their paths under
its path, one level deeper); it is read from a file of its own that is deleted once
its entries are all yielded.

Each member is judged before it is read: a path that climbs out of the archive or
starts at a root, a link, a device, data that overlaps another member's (a ZIP
bomb), a declared size or ratio past the limits: such an entry is ``refused``,
nothing of it written. Then it is written, each byte counted as it comes out of
the decoder against the entry's size limit, its compression ratio (bytes out per
compressed byte read) and the total of the whole walk: past one, the entry is cut
(what was written of it deleted) and listed with ``limit-exceeded``; past the total
or the entry count the walk stops. An entry the decoders fail on (a damaged one, a
password missing or wrong) is ``failed``, and the walk goes on with the next.
An archive holding itself (a quine: the same bytes as one of the archives it is in)
is refused rather than unpacked again; an archive with the same bytes as one already
unpacked elsewhere in the walk is listed with ``same_as`` (that one's path) and not
unpacked again, since its entries would be the same.

Files are written into ``workdir`` under names the walk makes (``entry-<n>``);
an entry's own name is never a path, so nothing lands outside ``workdir``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from docworker.config import ArchiveSettings
from docworker.errors import (
    ArchiveBomb,
    CorruptDocument,
    DocworkerError,
    HostileInput,
    InputError,
    LimitExceeded,
    ServiceError,
    UnsupportedFormat,
)
from docworker.formats.archives.members import (
    ARCHIVE_TYPES,
    READ_ERRORS,
    ArchiveReader,
    Member,
    MemberKind,
    Staging,
    open_archive,
)
from docworker.formats.archives.names import unsafe_reason
from docworker.formats.archives.streams import CHUNK
from docworker.formats.detect import detect


class EntryStatus(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass
class Entry:
    """One entry of the walk. ``file`` is the unpacked file of an ``ok`` entry that is
    not an archive unpacked in turn; it is the caller's to move or delete."""

    path: str
    depth: int
    status: EntryStatus
    size: int | None = None
    sha256: str | None = None
    mime: str | None = None
    #: The archive format it was unpacked as (its entries follow it), else None.
    archive: str | None = None
    #: An archive with the same bytes as one unpacked before: that one's path (this one
    #: is not unpacked again).
    same_as: str | None = None
    #: The error code of a refused or failed entry (``limit-exceeded``, ``hostile-input``,
    #: ``password-required``, ...) and what happened, for people.
    code: str | None = None
    reason: str | None = None
    file: Path | None = field(default=None, repr=False)
    #: The error of a refused or failed entry (what ``code`` and ``reason`` say), with its
    #: fields: a limit's name and figures, or :class:`ArchiveBomb` for a bomb.
    error: DocworkerError | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "depth": self.depth,
            "status": self.status.value,
            "size": self.size,
            "sha256": self.sha256,
            "mime": self.mime,
        }
        if self.archive:
            data["archive"] = self.archive
        if self.same_as:
            data["same_as"] = self.same_as
        if self.code:
            data["code"] = self.code
            data["reason"] = self.reason
        return data


def archive_format(mime: str) -> str | None:
    """The reader format of a detected type, or None when it is no archive."""
    return ARCHIVE_TYPES.get(mime)


def walk_archive(
    path: Path,
    *,
    name: str | None,
    limits: ArchiveSettings,
    workdir: Path,
    password: str | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[Entry]:
    """The entries of the archive at ``path`` (see the module). Raises
    :class:`UnsupportedFormat` when it is no archive read here, and the reader's
    input error when it cannot be opened at all (damaged, names encrypted)."""
    mime = detect(path, name).mime
    fmt = archive_format(mime)
    if fmt is None:
        raise UnsupportedFormat(mime, f"{mime} is not an archive this service unpacks")
    walk = _Walk(limits, workdir, password, cancelled)
    return walk.archive(path, fmt, name or "archive", "", 1, frozenset({_sha256(path)}))


#: What makes one entry ``failed``: an input error, or a library's on damaged data.
_ENTRY_ERRORS: tuple[type[BaseException], ...] = (InputError, *READ_ERRORS)


class _Stop(Exception):
    """The walk as a whole reached its entry count or total bytes."""


class _Walk:
    def __init__(
        self,
        limits: ArchiveSettings,
        workdir: Path,
        password: str | None,
        cancelled: Callable[[], bool],
    ) -> None:
        self.limits = limits
        self.workdir = workdir
        self.password = password
        self.cancelled = cancelled
        self.entries = 0
        self.written = 0
        self.files = 0
        self.stopped = False
        #: The path of each archive unpacked, by its sha256.
        self.unpacked: dict[str, str] = {}

    def archive(
        self, path: Path, fmt: str, name: str, prefix: str, depth: int, seen: frozenset[str]
    ) -> Iterator[Entry]:
        """The entries of one archive, nested ones included."""
        reader = open_archive(
            path,
            fmt,
            name=name,
            password=self.password,
            max_memory=self.limits.max_decoder_memory,
            staging=Staging(
                self._new_path("staging"),
                accepts=lambda member: self._refusal(member) is None,
                meter=lambda: _EntryMeter(self, reader),
            ),
        )
        with reader:
            members = reader.members()
            while not self.stopped and not self.cancelled():
                try:
                    member = next(members)
                except StopIteration:
                    return
                except READ_ERRORS as exc:
                    yield self._unreadable(prefix, depth, fmt, exc)
                    return
                yield from self.member(reader, member, prefix, depth, seen)

    def member(
        self, reader: ArchiveReader, member: Member, prefix: str, depth: int, seen: frozenset[str]
    ) -> Iterator[Entry]:
        if member.kind is MemberKind.DIRECTORY:
            return
        path = f"{prefix}/{member.name}" if prefix else member.name
        if self.entries >= self.limits.max_entries:
            self.stopped = True
            yield self._cut(
                path, depth, LimitExceeded("entries", self.entries + 1, self.limits.max_entries)
            )
            return
        self.entries += 1
        refusal = self._refusal(member)
        if refusal is not None:
            yield _refused(path, depth, member.size, refusal)
            return
        target = self._new_path("entry")
        try:
            size, digest = self._write(reader, member, target)
        except _Stop as stop:
            self.stopped = True
            target.unlink(missing_ok=True)
            yield self._cut(path, depth, stop.args[0])
            return
        except LimitExceeded as exc:
            target.unlink(missing_ok=True)
            yield self._cut(path, depth, exc)
            return
        except ServiceError:
            target.unlink(missing_ok=True)
            raise
        except _ENTRY_ERRORS as exc:
            target.unlink(missing_ok=True)
            yield _failed(path, depth, member.size, exc)
            return
        yield from self._unpacked(target, member, path, depth, size, digest, seen)

    def _unpacked(
        self,
        target: Path,
        member: Member,
        path: str,
        depth: int,
        size: int,
        digest: str,
        seen: frozenset[str],
    ) -> Iterator[Entry]:
        """The entry of a member written whole; an archive's own entries after it."""
        mime = detect(target, member.name.rsplit("/", 1)[-1]).mime
        entry = Entry(path, depth, EntryStatus.OK, size, digest, mime)
        fmt = archive_format(mime)
        if fmt is None:
            entry.file = target
            yield entry
            return
        if digest in seen:
            target.unlink()
            yield _refuse(entry, ArchiveBomb("the archive contains itself (a quine)"))
            return
        if digest in self.unpacked:
            # Its entries are those listed under the first: the 42.zip kind of bomb (nine
            # copies of nine copies of ...) is unpacked one copy a level.
            target.unlink()
            entry.archive, entry.same_as = fmt, self.unpacked[digest]
            yield entry
            return
        if depth >= self.limits.max_depth:
            target.unlink()
            yield _refuse(entry, LimitExceeded("archive depth", depth + 1, self.limits.max_depth))
            return
        self.unpacked[digest] = path
        try:
            nested = self.archive(target, fmt, member.name, path, depth + 1, seen | {digest})
            first = next(nested, None)
        except DocworkerError as exc:
            if isinstance(exc, ServiceError):
                raise
            entry.status, entry.code, entry.reason = EntryStatus.FAILED, exc.code, exc.detail
            entry.error = exc
            entry.file = target  # the bytes are fine; only what they hold could not be read
            yield entry
            return
        entry.archive = fmt
        yield entry
        try:
            if first is not None:
                yield first
                yield from nested
        finally:
            target.unlink(missing_ok=True)

    def _refusal(self, member: Member) -> DocworkerError | None:
        """Why a member is refused before anything of it is read, or None."""
        reason = unsafe_reason(member.name)
        if reason is None and member.kind is MemberKind.LINK:
            reason = "the entry is a link: links are not unpacked"
        elif reason is None and member.kind is MemberKind.DEVICE:
            reason = "the entry is a device, a pipe or a socket, not a file"
        if reason is None and member.hostile is not None:
            return ArchiveBomb(member.hostile)
        if reason is not None:
            return HostileInput(reason)
        return self._declared_excess(member)

    def _declared_excess(self, member: Member) -> LimitExceeded | None:
        """The limit a member's declared sizes pass, if any: no need to inflate it to
        know (the bytes are held to the limits as they are written all the same)."""
        limits = self.limits
        if member.size is None:
            return None
        if member.size > limits.max_entry_bytes:
            return LimitExceeded("entry size (declared)", member.size, limits.max_entry_bytes)
        ratio = member.size / member.packed if member.packed else 0.0
        if member.size > limits.ratio_floor and ratio > limits.max_ratio:
            return LimitExceeded("compression ratio (declared)", round(ratio), limits.max_ratio)
        return None

    def _write(self, reader: ArchiveReader, member: Member, target: Path) -> tuple[int, str]:
        """Write the member to ``target`` under the limits (unless they were held when it
        was staged); its size and sha256."""
        meter = _EntryMeter(self, reader)
        digest = hashlib.sha256()
        written = 0
        with member.open() as stream, target.open("xb") as out:
            while chunk := stream.read(CHUNK):
                if not member.staged:
                    meter.add(len(chunk))
                written += len(chunk)
                digest.update(chunk)
                out.write(chunk)
        return written, digest.hexdigest()

    def _cut(self, path: str, depth: int, exc: LimitExceeded) -> Entry:
        return _refused(path, depth, None, exc)

    def _unreadable(self, prefix: str, depth: int, fmt: str, exc: BaseException) -> Entry:
        """The entry saying an archive could not be read past some point."""
        error = CorruptDocument(
            fmt, f"the archive could not be read further: {str(exc) or type(exc).__name__}"
        )
        return Entry(
            prefix or ".",
            depth - 1,
            EntryStatus.FAILED,
            code=error.code,
            reason=error.detail,
            error=error,
        )

    def _new_path(self, kind: str) -> Path:
        self.files += 1
        return self.workdir / f"{kind}-{self.files:06d}"


class _EntryMeter:
    """Holds one member's bytes, as they are written, to the entry size, the ratio and
    the walk's total."""

    def __init__(self, walk: _Walk, reader: ArchiveReader) -> None:
        self.walk = walk
        self.limits = walk.limits
        self.reader = reader
        self.start = reader.consumed
        self.written = 0

    def add(self, size: int) -> None:
        limits = self.limits
        self.written += size
        self.walk.written += size
        if self.walk.written > limits.max_total_bytes:
            raise _Stop(LimitExceeded("unpacked bytes", self.walk.written, limits.max_total_bytes))
        if self.written > limits.max_entry_bytes:
            raise LimitExceeded("entry size", self.written, limits.max_entry_bytes)
        if self.written > limits.ratio_floor:
            packed = self.reader.consumed - self.start + self.reader.read_ahead
            ratio = self.written / max(packed, 1)
            if ratio > limits.max_ratio:
                raise LimitExceeded("compression ratio", round(ratio), limits.max_ratio)


def _refused(path: str, depth: int, size: int | None, exc: DocworkerError) -> Entry:
    return Entry(
        path, depth, EntryStatus.REFUSED, size, code=exc.code, reason=exc.detail, error=exc
    )


def _failed(path: str, depth: int, size: int | None, exc: BaseException) -> Entry:
    if isinstance(exc, DocworkerError):
        error: DocworkerError = exc
    else:
        error = CorruptDocument("archive entry", str(exc) or type(exc).__name__)
    return Entry(
        path, depth, EntryStatus.FAILED, size, code=error.code, reason=error.detail, error=error
    )


def _refuse(entry: Entry, exc: DocworkerError) -> Entry:
    """``entry`` (written whole, then refused: a quine, an archive too deep), refused."""
    entry.status, entry.code, entry.reason = EntryStatus.REFUSED, exc.code, exc.detail
    entry.error = exc
    return entry


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
