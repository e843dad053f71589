"""The directory of an OLE2 compound file (CFB): the names of its top-level streams.

Legacy Office files (.doc, .xls, .ppt), Outlook .msg files and encrypted OOXML
packages are all compound files; which one a file is shows in the names of the
streams under its root storage. This reader follows only the sector chains that
lead to the directory, reads every sector at most once, caps how many it reads
and treats anything out of range as the end of a chain, so hostile input costs a
bounded number of small reads and never an exception other than "unreadable".
Stream contents are never read. (The layout is [MS-CFB] §2.)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

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
