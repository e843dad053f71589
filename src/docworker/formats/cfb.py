"""OLE2 compound files (CFB): the names of their top-level streams, and OLE objects' contents.

Legacy Office files (.doc, .xls, .ppt), Outlook .msg files and encrypted OOXML
packages are all compound files; which one a file is shows in the names of the
streams under its root storage. :func:`root_entry_names` follows only the
sector chains that lead to the directory, reads every sector at most once, caps
how many it reads and treats anything out of range as the end of a chain, so
hostile input costs a bounded number of small reads and never an exception
other than "unreadable"; it reads no stream's contents. (The layout is
[MS-CFB] §2.)

An object embedded in an Office document is a compound file too, wrapping the
real file: :func:`unwrap_ole_object` takes it out (through olefile, from memory).
The Packager keeps a file with its name in ``\x01Ole10Native`` (the "OLE 1.0
native" record: size, flags, label, file name, command, then the bytes, and
optionally the three strings again in UTF-16); Acrobat and the OOXML-in-OLE
objects keep the file whole in ``CONTENTS`` or ``Package``.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import olefile

from docworker.errors import CorruptDocument

SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

_HEADER_SIZE = 512
#: Sector ids from here up are markers (free, end of chain, FAT, DIFAT), not sectors.
_MAX_REGULAR_SECTOR = 0xFFFFFFFA
_NO_STREAM = 0xFFFFFFFF
_DIRECTORY_ENTRY_SIZE = 128
#: Enough for the directory of any real document (256 entries at 512-byte sectors).
_MAX_DIRECTORY_SECTORS = 64
_MAX_DIFAT_SECTORS = 256
_STORAGE, _STREAM, _ROOT = 1, 2, 5


@dataclass(frozen=True)
class _Entry:
    name: str
    kind: int
    left: int
    right: int
    child: int


class _Reader:
    def __init__(self, fh: IO[bytes], header: bytes) -> None:
        self._fh = fh
        self.sector_size = 1 << struct.unpack_from("<H", header, 0x1E)[0]
        self._per_sector = self.sector_size // 4
        fat_sectors, self.first_directory = struct.unpack_from("<II", header, 0x2C)
        first_difat = struct.unpack_from("<I", header, 0x44)[0]
        self._fat_locations = self._difat(header, fat_sectors, first_difat)
        self._fat_cache: dict[int, bytes] = {}

    def sector(self, sid: int) -> bytes:
        """Sector ``sid``'s bytes, short when the file ends early."""
        self._fh.seek((sid + 1) * self.sector_size)
        return self._fh.read(self.sector_size)

    def _difat(self, header: bytes, fat_sectors: int, first_difat: int) -> list[int]:
        """Where the FAT's sectors are: 109 in the header, the rest in a DIFAT chain."""
        locations = list(struct.unpack_from("<109I", header, 0x4C))
        sid, seen = first_difat, set[int]()
        while sid < _MAX_REGULAR_SECTOR and len(locations) < fat_sectors:
            if sid in seen or len(seen) >= _MAX_DIFAT_SECTORS:
                break
            seen.add(sid)
            data = self.sector(sid)
            if len(data) < self.sector_size:
                break
            entries = struct.unpack(f"<{self._per_sector}I", data)
            locations.extend(entries[:-1])
            sid = entries[-1]
        return locations[:fat_sectors]

    def next_sector(self, sid: int) -> int:
        """The sector after ``sid`` in its chain (a marker value ends the chain)."""
        index, offset = divmod(sid, self._per_sector)
        if index >= len(self._fat_locations):
            return _NO_STREAM
        location = self._fat_locations[index]
        if location >= _MAX_REGULAR_SECTOR:
            return _NO_STREAM
        if location not in self._fat_cache:
            self._fat_cache[location] = self.sector(location)
        fat = self._fat_cache[location]
        if len(fat) < (offset + 1) * 4:
            return _NO_STREAM
        return int(struct.unpack_from("<I", fat, offset * 4)[0])

    def directory(self) -> list[_Entry]:
        entries: list[_Entry] = []
        sid, seen = self.first_directory, set[int]()
        while sid < _MAX_REGULAR_SECTOR and sid not in seen and len(seen) < _MAX_DIRECTORY_SECTORS:
            seen.add(sid)
            data = self.sector(sid)
            for offset in range(0, len(data) - _DIRECTORY_ENTRY_SIZE + 1, _DIRECTORY_ENTRY_SIZE):
                entries.append(_parse_entry(data[offset : offset + _DIRECTORY_ENTRY_SIZE]))
            sid = self.next_sector(sid)
        return entries


def _parse_entry(raw: bytes) -> _Entry:
    name_bytes = min(struct.unpack_from("<H", raw, 0x40)[0], 64)
    name = raw[: max(name_bytes - 2, 0)].decode("utf-16-le", errors="replace")
    left, right, child = struct.unpack_from("<III", raw, 0x44)
    return _Entry(name, raw[0x42], left, right, child)


def _root_children(entries: list[_Entry]) -> set[str]:
    """Names of the root storage's children: a walk of its red-black tree of siblings."""
    names: set[str] = set()
    if not entries or entries[0].kind != _ROOT:
        return names
    stack, seen = [entries[0].child], set[int]()
    while stack:
        did = stack.pop()
        if did >= len(entries) or did in seen:
            continue
        seen.add(did)
        entry = entries[did]
        if entry.kind in {_STORAGE, _STREAM}:
            names.add(entry.name)
        stack.extend((entry.left, entry.right))
    return names


def allowed_sizes(fh: IO[bytes]) -> bool:
    """Whether ``fh`` is a compound file whose header declares sector sizes [MS-CFB]
    allows (512 or 4096 bytes, mini sectors of 64). olefile, and msoffcrypto through
    it, read sectors of whatever size the header declares, 2**n bytes for any n: a
    few bytes changed in a header cost them gigabytes."""
    fh.seek(0)
    header = fh.read(_HEADER_SIZE)
    fh.seek(0)
    if len(header) < _HEADER_SIZE or not header.startswith(SIGNATURE):
        return False
    sector_shift, mini_shift = struct.unpack_from("<HH", header, 0x1E)
    return sector_shift in {9, 12} and mini_shift == 6


def open_compound(source: Path | IO[bytes]) -> olefile.OleFileIO:
    """olefile's reader of the compound file ``source``, once :func:`allowed_sizes` holds.
    Raises ValueError (and what olefile raises) for a file that cannot be read."""
    if isinstance(source, Path):
        with source.open("rb") as fh:
            allowed = allowed_sizes(fh)
    else:
        allowed = allowed_sizes(source)
    if not allowed:
        raise ValueError("not a compound file with sector sizes the format allows")
    return olefile.OleFileIO(str(source) if isinstance(source, Path) else source)


def root_entry_names(fh: IO[bytes]) -> set[str] | None:
    """The names of the streams and storages directly under the root of a compound file.

    None when ``fh`` is not a compound file or its header or directory cannot be read.
    """
    fh.seek(0)
    header = fh.read(_HEADER_SIZE)
    if len(header) < _HEADER_SIZE or not header.startswith(SIGNATURE):
        return None
    if struct.unpack_from("<H", header, 0x1E)[0] not in {9, 12}:
        return None
    try:
        entries = _Reader(fh, header).directory()
    except (OSError, struct.error):
        return None
    names = _root_children(entries)
    return names or None


# -- OLE objects ------------------------------------------------------------------------

_OLE10_NATIVE = "\x01Ole10Native"
#: Streams that hold an embedded file whole, in the order they are looked for.
_CONTENT_STREAMS = ("Package", "CONTENTS")
#: What olefile and struct raise on a damaged compound file (RecursionError: olefile
#: walks a storage tree by recursion, however deep it is).
DAMAGE = (OSError, ValueError, IndexError, KeyError, struct.error, EOFError, RecursionError)


@dataclass(frozen=True)
class OleContent:
    """The file an OLE object wraps, and the name the object gives it (None when none)."""

    data: bytes
    name: str | None


def unwrap_ole_object(data: bytes) -> OleContent | None:
    """The file inside an embedded OLE object; None when ``data`` wraps no other file.

    A compound file with none of the wrapping streams (an embedded .doc or .xls
    is one) is the file itself, and so is anything that is not a compound file.
    Raises :class:`CorruptDocument` when the object is one but cannot be read.
    """
    if not data.startswith(SIGNATURE):
        return None
    try:
        # Always a file object: given bytes, olefile takes short ones for a file name.
        with open_compound(io.BytesIO(data)) as ole:
            if ole.get_type(_OLE10_NATIVE) == olefile.STGTY_STREAM:
                return _ole10_native(bytes(ole.openstream(_OLE10_NATIVE).read()))
            for name in _CONTENT_STREAMS:
                if ole.get_type(name) == olefile.STGTY_STREAM:
                    return OleContent(bytes(ole.openstream(name).read()), None)
    except DAMAGE as exc:
        raise CorruptDocument("ole", f"the compound file cannot be read: {exc}") from exc
    return None


def _ole10_native(record: bytes) -> OleContent:
    """The file in an ``\\x01Ole10Native`` stream, in any of the three layouts writers use."""
    if len(record) < 6:
        raise CorruptDocument("ole", "the Ole10Native record is shorter than its header")
    total, flags = struct.unpack_from("<IH", record)
    if flags != 2:  # the bytes follow the size directly
        return OleContent(record[4 : 4 + total], None)
    if _is_control(record[6:7]):  # "compact": the bytes follow the flags
        return OleContent(record[6 : 4 + total], None)
    label, position = _ansi_string(record, 6)
    file_name, position = _ansi_string(record, position)
    position += 4  # two flags nobody documents
    (command_size,) = _unpack("<I", record, position)
    position += 4 + command_size
    (size,) = _unpack("<I", record, position)
    start = position + 4
    if start + size > len(record):
        raise CorruptDocument("ole", "the Ole10Native record ends before its file does")
    wide = _wide_strings(record, start + size)
    name = (wide[2] if len(wide) == 3 else "") or file_name or label
    return OleContent(record[start : start + size], name or None)


def _is_control(byte: bytes) -> bool:
    return bool(byte) and (byte[0] <= 0x1F or 0x7F <= byte[0] <= 0x9F)


def _unpack(layout: str, record: bytes, position: int) -> tuple[int, ...]:
    try:
        return struct.unpack_from(layout, record, position)
    except struct.error as exc:
        raise CorruptDocument("ole", "the Ole10Native record is truncated") from exc


def _ansi_string(record: bytes, position: int) -> tuple[str, int]:
    """A NUL-terminated string in the system code page, and where the next field starts."""
    end = record.find(b"\0", position)
    if end < 0:
        raise CorruptDocument("ole", "the Ole10Native record is truncated")
    return record[position:end].decode("cp1252", errors="replace"), end + 1


def _wide_strings(record: bytes, position: int) -> list[str]:
    """The UTF-16 command, label and file name some writers append; [] when absent."""
    found: list[str] = []
    for _ in range(3):
        if position + 4 > len(record):
            return []
        (count,) = struct.unpack_from("<I", record, position)
        end = position + 4 + 2 * count
        if count == 0 or end > len(record):
            return []
        found.append(record[position + 4 : end].decode("utf-16-le", errors="replace"))
        position = end
    return found
