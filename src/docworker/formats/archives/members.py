"""The readers of each archive format: what an archive holds, one member at a time.

:func:`open_archive` gives an :class:`ArchiveReader` over a ZIP (plain, ZipCrypto or
AES, through pyzipper), a tar (plain or inside gzip, bzip2, xz or zstd), a 7z, or a
single compressed stream (a ``.gz``, ``.xz``, ... that is not a tar: one member, its
content), or a RAR (through libarchive: RAR 5, solid or not, and RAR 4 archives that are
not solid; neither encrypted nor split in volumes). Members come as :class:`Member`: the
decoded name, the kind (file, directory, link, device), what the archive declares of its
sizes, and how to open its bytes. Nothing here judges names or sizes: the walker does
(:mod:`~docworker.formats.archives.walk`), before it opens a member.

Readers stream: a tar or a RAR is read front to back, once, and a ZIP's members are opened
one at a time. 7z decoders work on whole folders, so a 7z's plain files are
unpacked into a staging folder first, under the walker's limits, then handed over
one by one.
"""

from __future__ import annotations

import functools
import io
import itertools
import lzma
import shutil
import tarfile
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Protocol, cast

import libarchive
import libarchive.exception
import py7zr
import py7zr.exceptions
import pyzipper
import zstandard
from py7zr.io import Py7zIO, WriterFactory

from docworker.errors import (
    CorruptDocument,
    DocworkerError,
    PasswordRequired,
    UnsupportedFormat,
    WrongPassword,
)
from docworker.formats.archives.names import clean_name, decode_names
from docworker.formats.archives.streams import CHUNK, READ_AHEAD, CountingReader, inflating

#: Archive types (as :func:`~docworker.formats.detect.detect` names them) → reader format.
ARCHIVE_TYPES: dict[str, str] = {
    "application/zip": "zip",
    "application/x-tar": "tar",
    "application/gzip": "gzip",
    "application/x-bzip2": "bzip2",
    "application/x-xz": "xz",
    "application/x-lzma": "lzma",
    "application/zstd": "zstd",
    "application/x-zstd": "zstd",
    "application/x-7z-compressed": "7z",
    "application/x-rar": "rar",
    "application/vnd.rar": "rar",
}
#: What a damaged member or archive may raise from the libraries read here.
READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    pyzipper.BadZipFile,  # its own class, not zipfile's
    tarfile.TarError,
    py7zr.exceptions.ArchiveError,
    libarchive.exception.ArchiveError,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
    OSError,  # bz2's errors are OSError or ValueError
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    KeyError,
    IndexError,
)
_TAR_MAGIC_AT = 257
#: Suffixes a single compressed stream's member loses ("notes.txt.gz" → "notes.txt").
_STREAM_SUFFIXES = (".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz", ".lzma", ".zst", ".z")


class MemberKind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    LINK = "link"
    DEVICE = "device"


@dataclass
class Member:
    """One member of an archive, as the archive declares it."""

    name: str
    kind: MemberKind
    #: Its size and compressed size as declared (None: the format does not say).
    size: int | None = None
    packed: int | None = None
    encrypted: bool = False
    #: Why the archive itself refuses it (overlapping data: a bomb), else None.
    hostile: str | None = None
    #: Its bytes were held to the walker's limits as they were unpacked (a 7z's, into
    #: the staging folder): reading them again counts nothing.
    staged: bool = False
    #: Opens its bytes; raises an input error (password, damaged data).
    opener: Callable[[], IO[bytes]] | None = None

    def open(self) -> IO[bytes]:
        if self.opener is None:
            raise CorruptDocument("archive", f"the entry '{self.name[:200]}' has no content")
        return self.opener()


class Meter(Protocol):
    """Holds the bytes of one member to the walker's limits as they are written (the
    walker makes one per member); raises the limit's error past one."""

    def add(self, size: int) -> None: ...


@dataclass(frozen=True)
class Staging:
    """Where and how a 7z's members are unpacked before they are handed over."""

    folder: Path
    #: Whether a member is to be unpacked at all (the walker refuses the others unread).
    accepts: Callable[[Member], bool]
    #: A new meter for a member being unpacked.
    meter: Callable[[], Meter]


class ArchiveReader(ABC):
    """An open archive: its members in order (:meth:`members`), and the compressed bytes
    read from it so far (:attr:`consumed`)."""

    #: Compressed bytes a member may owe to reads made before it was opened; an entry's
    #: ratio is taken over what was read since, plus this. A ZIP member's data is read
    #: from its own offset when it is opened: nothing.
    read_ahead = READ_AHEAD

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.format = fmt
        self._stack = ExitStack()
        self._counting = CountingReader(self._stack.enter_context(path.open("rb")))
        #: The archive file, as the libraries read it.
        self._counter = cast(IO[bytes], self._counting)

    @property
    def consumed(self) -> int:
        return self._counting.consumed

    @abstractmethod
    def members(self) -> Iterator[Member]:
        """The archive's members, in order; each is to be opened before the next is asked
        for (a tar is read once, front to back). Each format's reader gives them."""

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_archive(
    path: Path,
    fmt: str,
    *,
    name: str,
    password: str | None,
    max_memory: int,
    staging: Staging,
) -> ArchiveReader:
    """The reader of the archive at ``path`` in format ``fmt`` (a value of
    :data:`ARCHIVE_TYPES`); ``name`` is what the archive is called (a single stream's
    member is named after it). ``staging`` says where a 7z is unpacked first."""
    if fmt == "zip":
        return _ZipReader(path, password)
    if fmt == "tar":
        return _TarReader(path, None, max_memory)
    if fmt == "7z":
        return _SevenZipReader(path, password, staging)
    if fmt == "rar":
        return _RarReader(path)
    if _holds_tar(path, fmt, max_memory):
        return _TarReader(path, fmt, max_memory)
    return _StreamReader(path, fmt, max_memory, name)


def _holds_tar(path: Path, fmt: str, max_memory: int) -> bool:
    """Whether the compressed stream at ``path`` holds a tar (``ustar`` at byte 257)."""
    try:
        with path.open("rb") as fh:
            head = inflating(fh, fmt, max_memory).read(_TAR_MAGIC_AT + 8)
    except lzma.LZMAError as exc:
        if "memory" in str(exc).lower():
            raise CorruptDocument(
                fmt,
                "its decoder asks for more memory than archives.max_decoder_memory allows",
            ) from None
        raise CorruptDocument(fmt, str(exc)) from None
    except READ_ERRORS as exc:
        raise CorruptDocument(fmt, str(exc) or type(exc).__name__) from None
    return head[_TAR_MAGIC_AT : _TAR_MAGIC_AT + 5] == b"ustar"


class _ZipReader(ArchiveReader):
    read_ahead = 0

    def __init__(self, path: Path, password: str | None) -> None:
        super().__init__(path, "zip")
        try:
            self._zip = self._stack.enter_context(pyzipper.AESZipFile(self._counter))
        except READ_ERRORS as exc:
            self.close()
            raise CorruptDocument("zip", str(exc) or type(exc).__name__) from None
        if password is not None:
            self._zip.setpassword(password.encode("utf-8"))
        self._password = password

    def members(self) -> Iterator[Member]:
        infos = self._zip.infolist()
        legacy = [info for info in infos if not info.flag_bits & 0x800]
        raw = [info.filename.encode("cp437", errors="replace") for info in legacy]
        decoded = dict(zip((id(info) for info in legacy), decode_names(raw), strict=True))
        overlapping = {id(info) for info in overlapping_members(infos)}
        for info in infos:
            yield Member(
                name=clean_name(decoded.get(id(info), info.filename)),
                kind=zip_member_kind(info),
                size=info.file_size,
                packed=info.compress_size,
                encrypted=bool(info.flag_bits & 0x1),
                hostile="its data overlaps another entry's (a zip bomb)"
                if id(info) in overlapping
                else None,
                opener=functools.partial(self._open, info),
            )

    def _open(self, info: zipfile.ZipInfo) -> IO[bytes]:
        try:
            return cast(IO[bytes], self._zip.open(info))
        except RuntimeError as exc:
            if "password" not in str(exc).lower():
                raise CorruptDocument("zip", str(exc)) from None
            if self._password is None:
                raise PasswordRequired(
                    "zip", "the entry is encrypted: pass the archive's password as 'password'"
                ) from None
            raise WrongPassword("zip") from None


def zip_member_kind(info: zipfile.ZipInfo) -> MemberKind:
    """What a ZIP member is, from its Unix mode (the high half of its external attributes)."""
    kind = (info.external_attr >> 16) & 0o170000
    if info.is_dir() or kind == 0o040000:
        return MemberKind.DIRECTORY
    if kind == 0o120000:
        return MemberKind.LINK
    if kind and kind != 0o100000:
        return MemberKind.DEVICE
    return MemberKind.FILE


#: Size of a ZIP local file header before its name and extra field.
_LOCAL_HEADER = 30


def overlapping_members(members: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The members whose data starts inside the data of the member before them (the
    overlapping-entries bomb, where hundreds of entries share one compressed kernel)."""
    spans = sorted(
        (info.header_offset, info.header_offset + _LOCAL_HEADER + info.compress_size, index)
        for index, info in enumerate(members)
    )
    return [
        members[later[2]] for earlier, later in itertools.pairwise(spans) if later[0] < earlier[1]
    ]


class _TarReader(ArchiveReader):
    """A tar read front to back (stream mode), plain or inside a compressed stream."""

    def __init__(self, path: Path, compression: str | None, max_memory: int) -> None:
        super().__init__(path, compression or "tar")
        stream: IO[bytes] = self._counter
        if compression is not None:
            stream = inflating(self._counter, compression, max_memory)
        try:
            # Closed with the reader (its exit stack), after its last member is read.
            tar = tarfile.open(fileobj=stream, mode="r|", errors="surrogateescape")  # noqa: SIM115
            self._tar = self._stack.enter_context(tar)
        except READ_ERRORS as exc:
            self.close()
            raise CorruptDocument("tar", str(exc) or type(exc).__name__) from None

    def members(self) -> Iterator[Member]:
        for info in self._tar:
            raw = info.name.encode("utf-8", errors="surrogateescape")
            yield Member(
                name=clean_name(decode_names([raw], default="latin-1")[0]),
                kind=_tar_kind(info),
                size=info.size,
                opener=functools.partial(self._open, info),
            )

    def _open(self, info: tarfile.TarInfo) -> IO[bytes]:
        stream = self._tar.extractfile(info)
        if stream is None:
            raise CorruptDocument("tar", f"the entry '{info.name[:200]}' has no content")
        return stream


#: The signatures of RAR 5 and of RAR 1.5 to 4 archives (libarchive reads each with its own
#: reader; it has none that tries both).
_RAR5_SIGNATURE = b"Rar!\x1a\x07\x01\x00"
_RAR_SIGNATURE = b"Rar!\x1a\x07\x00"
#: What libarchive says of the RAR features it does not read.
_RAR_ENCRYPTED = "encryption is not supported"


class _RarReader(ArchiveReader):
    """A RAR read front to back through libarchive (its RAR and RAR 5 readers). What
    libarchive does not read is said so: an encrypted archive or entry, with
    :class:`UnsupportedFormat`; a RAR 4 solid archive past its first entry, and the
    volumes of a split archive, as damaged data where the reading stops."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "rar")
        with path.open("rb") as fh:
            head = fh.read(len(_RAR5_SIGNATURE))
        #: What libarchive's RAR 5 reader does not say of its entries (see :class:`Rar5Headers`).
        self._headers = Rar5Headers()
        if head.startswith(_RAR5_SIGNATURE):
            self._format = "rar5"
            self._headers = rar5_headers(path)
        elif head.startswith(_RAR_SIGNATURE):
            self._format = "rar"
        else:
            self.close()
            raise CorruptDocument("rar", "not a RAR archive: its signature is missing")
        try:
            self._archive = self._stack.enter_context(
                libarchive.stream_reader(self._counter, format_name=self._format)
            )
        except libarchive.exception.ArchiveError as exc:
            self.close()
            raise _rar_error(exc) from None

    def members(self) -> Iterator[Member]:
        entries = iter(self._archive)
        while True:
            try:
                entry = next(entries)
            except StopIteration:
                return
            except libarchive.exception.ArchiveError as exc:
                error = _rar_error(exc)
                if isinstance(error, UnsupportedFormat):
                    raise error from None
                # The walker says where the reading stopped (a read error, not an input
                # error: the entries before it stand).
                raise _RarStopped(_rar_message(exc)) from None
            name = entry.pathname or ""
            encrypted = name in self._headers.encrypted
            redirected = name in self._headers.redirected
            yield Member(
                name=clean_name(name),
                kind=MemberKind.LINK if redirected else _rar_kind(entry),
                size=entry.size,
                encrypted=encrypted,
                opener=_encrypted_rar_entry if encrypted else _rar_opener(entry),
            )


def _rar_opener(entry: libarchive.ArchiveEntry) -> Callable[[], IO[bytes]]:
    """Opens the bytes of the RAR entry libarchive is at."""
    return lambda: cast(IO[bytes], _RarEntryStream(entry))


def _encrypted_rar_entry() -> IO[bytes]:
    raise UnsupportedFormat(
        "application/vnd.rar", "encrypted RAR entries are not read: libarchive cannot decrypt them"
    )


#: RAR 5 header types, and the records of a file header's extra area read here.
_RAR5_FILE, _RAR5_ENCRYPTION, _RAR5_END = 2, 4, 5
_RAR5_EXTRA_ENCRYPTION, _RAR5_EXTRA_REDIRECTION = 1, 5
#: The largest header RAR 5 allows (its specification: 2 MB).
_RAR5_MAX_HEADER = 2 * 1024 * 1024


@dataclass
class Rar5Headers:
    """What the file headers of a RAR 5 archive say that libarchive's reader does not:
    the names of entries whose data is encrypted (it would hand their bytes over
    undecrypted) and of those that redirect to another entry or path (links, and copies
    of an earlier entry, which it hands over empty)."""

    encrypted: set[str] = field(default_factory=set)
    redirected: set[str] = field(default_factory=set)


def rar5_headers(path: Path) -> Rar5Headers:
    """The :class:`Rar5Headers` of the RAR 5 archive at ``path``, from its headers alone:
    each is read and the data after it skipped. Reading stops at an archive whose headers
    are encrypted (libarchive refuses it), at the end, or at damaged headers (libarchive
    stops there too)."""
    names = Rar5Headers()
    with path.open("rb") as fh:
        fh.seek(len(_RAR5_SIGNATURE))
        while True:
            try:
                head = fh.read(4)  # the header's CRC32
                size = _read_vint(fh)
                if len(head) < 4 or not 0 < size <= _RAR5_MAX_HEADER:
                    return names
                header = memoryview(fh.read(size))
                if len(header) < size:
                    return names
                kind, at = _vint(header, 0)
                flags, at = _vint(header, at)
                extra = data = 0
                if flags & 0x1:
                    extra, at = _vint(header, at)
                if flags & 0x2:
                    data, at = _vint(header, at)
                if kind in (_RAR5_ENCRYPTION, _RAR5_END):
                    return names
                records = _rar5_records(header[size - extra :]) if extra else set()
                if kind == _RAR5_FILE and _RAR5_EXTRA_ENCRYPTION in records:
                    names.encrypted.add(_rar5_name(header, at))
                if kind == _RAR5_FILE and _RAR5_EXTRA_REDIRECTION in records:
                    names.redirected.add(_rar5_name(header, at))
                fh.seek(data, 1)
            except (ValueError, IndexError, UnicodeDecodeError):
                return names


def _rar5_name(header: memoryview, at: int) -> str:
    """The name field of a RAR 5 file header whose fields start at ``at``."""
    file_flags, at = _vint(header, at)
    _unpacked, at = _vint(header, at)
    _attributes, at = _vint(header, at)
    at += (4 if file_flags & 0x2 else 0) + (4 if file_flags & 0x4 else 0)
    _compression, at = _vint(header, at)
    _host, at = _vint(header, at)
    length, at = _vint(header, at)
    return bytes(header[at : at + length]).decode("utf-8")


def _rar5_records(extra: memoryview) -> set[int]:
    """The types of the records in a RAR 5 header's extra area."""
    kinds: set[int] = set()
    at = 0
    while at < len(extra):
        size, start = _vint(extra, at)
        kind, _ = _vint(extra, start)
        kinds.add(kind)
        at = start + size
    return kinds


def _vint(data: memoryview, at: int) -> tuple[int, int]:
    """RAR 5's variable-length integer at ``at``: its value and where the next field starts."""
    value = 0
    for shift in range(0, 70, 7):
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
    raise ValueError("RAR 5 integer longer than 10 bytes")


def _read_vint(fh: IO[bytes]) -> int:
    """RAR 5's variable-length integer read from ``fh``."""
    value = 0
    for shift in range(0, 70, 7):
        byte = fh.read(1)
        if not byte:
            return 0
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
    raise ValueError("RAR 5 integer longer than 10 bytes")


class _RarStopped(RuntimeError):
    """libarchive could not read a RAR past an entry (its message, without its pointers)."""


def _rar_message(exc: libarchive.exception.ArchiveError) -> str:
    """What libarchive said, without its pointers."""
    return str(getattr(exc, "msg", "") or "unreadable RAR data").strip()


def _rar_error(exc: libarchive.exception.ArchiveError) -> DocworkerError:
    """The input error of what libarchive raised."""
    message = _rar_message(exc)
    if _RAR_ENCRYPTED in message.lower():
        return UnsupportedFormat(
            "application/vnd.rar", "encrypted RAR archives are not read: libarchive cannot"
        )
    return CorruptDocument("rar", message)


def _rar_kind(entry: libarchive.ArchiveEntry) -> MemberKind:
    if entry.isdir:
        return MemberKind.DIRECTORY
    if entry.issym or entry.islnk:
        return MemberKind.LINK
    if entry.isreg:
        return MemberKind.FILE
    return MemberKind.DEVICE


class _RarEntryStream(io.RawIOBase):
    """The bytes of the RAR entry libarchive is at, a block at a time."""

    def __init__(self, entry: libarchive.ArchiveEntry) -> None:
        super().__init__()
        self._blocks = entry.get_blocks(CHUNK)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            try:
                self._pending = next(self._blocks, b"")
            except libarchive.exception.ArchiveError as exc:
                raise _rar_error(exc) from None
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _tar_kind(info: tarfile.TarInfo) -> MemberKind:
    if info.isdir():
        return MemberKind.DIRECTORY
    if info.issym() or info.islnk():
        return MemberKind.LINK
    if info.isreg():
        return MemberKind.FILE
    return MemberKind.DEVICE


class _StreamReader(ArchiveReader):
    """A single compressed stream: one member, its content."""

    def __init__(self, path: Path, fmt: str, max_memory: int, name: str) -> None:
        super().__init__(path, fmt)
        self._max_memory = max_memory
        self._name = _stream_member_name(name)

    def members(self) -> Iterator[Member]:
        yield Member(
            name=self._name,
            kind=MemberKind.FILE,
            opener=lambda: inflating(self._counter, self.format, self._max_memory),
        )


def _stream_member_name(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    for suffix in _STREAM_SUFFIXES:
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            stem = base[: -len(suffix)]
            return stem + ".tar" if suffix in (".tgz", ".tbz2", ".txz") else stem
    return "content"


class _SevenZipReader(ArchiveReader):
    """A 7z: its plain files unpacked into ``staging`` at the first open, each held to
    its meter as it is written; then each handed over from there."""

    def __init__(
        self,
        path: Path,
        password: str | None,
        staging: Staging,
    ) -> None:
        super().__init__(path, "7z")
        self._password = password
        self._staging = staging
        self._members: list[Member] = []
        self._staged: dict[str, Path] | None = None
        #: What stopped a member's unpacking (the walker's error), raised when it is opened.
        self._failures: dict[str, Exception] = {}
        self._stopped: DocworkerError | None = None
        self._locked = False
        try:
            self._archive = self._stack.enter_context(
                py7zr.SevenZipFile(self._counter, password=password)
            )
            self._locked = password is None and self._archive.needs_password()
        except py7zr.exceptions.PasswordRequired:
            self.close()
            raise PasswordRequired("7z", "the 7z archive's names are encrypted") from None
        except READ_ERRORS as exc:
            self.close()
            raise CorruptDocument("7z", str(exc) or type(exc).__name__) from None

    def members(self) -> Iterator[Member]:
        self._members = [self._member(info) for info in self._archive.files]
        yield from self._members

    def _member(self, info: py7zr.FileInfo) -> Member:
        if info.is_directory:
            kind = MemberKind.DIRECTORY
        elif info.is_symlink or getattr(info, "is_junction", False):
            kind = MemberKind.LINK
        elif getattr(info, "is_socket", False):
            kind = MemberKind.DEVICE
        else:
            kind = MemberKind.FILE
        member = Member(
            name=clean_name(info.filename),
            kind=kind,
            size=info.uncompressed,
            packed=getattr(info, "compressed", None),
            encrypted=self._password is not None or self._locked,
            staged=True,
        )
        member.opener = lambda: self._open(info.filename, member)
        return member

    def _open(self, filename: str, member: Member) -> IO[bytes]:
        if self._locked:
            raise PasswordRequired("7z", "the entry is encrypted: pass the password as 'password'")
        if self._staged is None:
            self._unpack()
        assert self._staged is not None
        if filename in self._failures:
            raise self._failures[filename]
        if filename not in self._staged:
            raise self._stopped or CorruptDocument("7z", f"'{filename[:200]}' was not unpacked")
        return self._staged[filename].open("rb")

    def _unpack(self) -> None:
        """Unpack every plain file the walker accepts into the staging folder."""
        wanted = {
            member.name
            for member in self._members
            if member.kind is MemberKind.FILE and self._staging.accepts(member)
        }
        targets = [
            info.filename for info in self._archive.files if clean_name(info.filename) in wanted
        ]
        factory = _StagingFactory(self._staging)
        self._staged = factory.files
        try:
            with factory:
                self._archive.extract(targets=targets, factory=factory)
        except _MeterStopped as stopped:  # a limit: the entry it stopped in is cut
            if factory.current is not None:
                self._failures[factory.current] = stopped.cause
                self._staged.pop(factory.current, None)
            self._stopped = CorruptDocument(
                "7z", "not unpacked: the archive's unpacking stopped at an earlier entry"
            )
        except READ_ERRORS as exc:
            if factory.current is not None:
                self._staged.pop(factory.current, None)
            reason = str(exc) or type(exc).__name__
            self._stopped = (
                CorruptDocument("7z", f"wrong password or damaged data ({reason})")
                if self._password is not None
                else CorruptDocument("7z", reason)
            )

    def close(self) -> None:
        super().close()
        shutil.rmtree(self._staging.folder, ignore_errors=True)


class _MeterStopped(Exception):
    """A staged member's meter stopped the unpacking; ``cause`` is what it raised."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _StagingFactory(WriterFactory):
    """Writes each member py7zr unpacks to a file of its own, through its meter."""

    def __init__(self, staging: Staging):
        self.folder = staging.folder
        self.meter = staging.meter
        self.files: dict[str, Path] = {}
        self.current: str | None = None
        self._open: list[_StagedFile] = []

    def __enter__(self) -> _StagingFactory:
        return self

    def __exit__(self, *_exc: object) -> None:
        # py7zr closes what it finished; an unpacking that stopped leaves one open.
        for staged in self._open:
            staged.close()

    def create(self, filename: str) -> Py7zIO:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"staged-{len(self.files)}"
        self.files[filename] = path
        self.current = filename
        staged = _StagedFile(path, self.meter())
        self._open.append(staged)
        return staged


class _StagedFile(Py7zIO):
    def __init__(self, path: Path, meter: Meter) -> None:
        self._file = path.open("wb")
        self._meter = meter
        self._size = 0

    def write(self, s: bytes | bytearray) -> int:
        try:
            self._meter.add(len(s))
        except Exception as exc:
            # The walker's error (a limit) goes to the entry; py7zr is only to stop.
            raise _MeterStopped(exc) from exc
        self._size += len(s)
        for start in range(0, len(s), CHUNK):
            self._file.write(s[start : start + CHUNK])
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._size

    def flush(self) -> None:
        self._file.flush()

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        self._file.close()
