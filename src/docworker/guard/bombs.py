"""Decompression bombs, told from what archives declare rather than by inflating them.

A ZIP's central directory gives each member's compressed and declared sizes and
where its data starts: a member (or the whole archive) that declares more than
``guard.bomb_ratio`` times what it occupies is a bomb, and so are members whose data
overlap (the overlapping-entries bomb, where hundreds of entries share one
compressed kernel). Archives nested in the ZIP (the 42.zip kind, nine copies of nine
copies of ...) are opened, small ones only and each distinct one once, to add up what
the whole would unpack to; an archive that contains itself (a quine) is a bomb too.
A gzip file declares its size (modulo 4 GiB) in its last four bytes.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from docworker.config import FindingKind, GuardSettings
from docworker.formats.archives import overlapping_members
from docworker.guard.findings import FindingSet
from docworker.guard.streams import PART_ERRORS, Package

#: Nested archives are opened down to this depth, when at most this large, and at most
#: this many distinct ones per scan.
NESTED_DEPTH = 10
NESTED_BYTES = 8 * 1024 * 1024
NESTED_ARCHIVES = 64
_ZIP_MAGIC = b"PK\x03\x04"
_ARCHIVE_NAMES = (".zip", ".jar", ".docx", ".xlsx", ".pptx", ".odt", ".epub")


def _ratio(declared: int, stored: int) -> float:
    return declared / max(stored, 1)


def check_zip_bomb(
    found: FindingSet, package: Package, archive_size: int, settings: GuardSettings
) -> None:
    """Note members and archives whose declared size is out of proportion."""
    ratio, floor = settings.bomb_ratio, settings.bomb_min_bytes
    members = [info for info in package.archive.infolist() if not info.is_dir()]
    swollen = [
        info
        for info in members
        if info.file_size >= floor and _ratio(info.file_size, info.compress_size) > ratio
    ]
    if swollen:
        worst = max(swollen, key=lambda i: _ratio(i.file_size, i.compress_size))
        found.note(
            FindingKind.DECOMPRESSION_BOMB,
            f"{len(swollen)} member(s) declare more than {ratio:g} times their compressed "
            f"size; the worst {worst.file_size} bytes from {worst.compress_size} "
            f"(ratio {_ratio(worst.file_size, worst.compress_size):.0f})",
            f"member {worst.filename}",
        )
    overlapping = len(overlapping_members(members))
    if overlapping:
        found.note(
            FindingKind.DECOMPRESSION_BOMB,
            f"{overlapping} member(s) share compressed data with another (overlapping entries)",
            "central directory",
        )
    expansion = _Expansion(package)
    declared = expansion.total(package.archive, 0)
    if declared >= floor and _ratio(declared, archive_size) > ratio:
        nested = " with the archives nested in it" if expansion.opened else ""
        found.note(
            FindingKind.DECOMPRESSION_BOMB,
            f"the archive{nested} declares {declared} bytes from {archive_size} "
            f"(ratio {_ratio(declared, archive_size):.0f})",
            "whole archive",
        )
    if expansion.quine:
        found.note(
            FindingKind.DECOMPRESSION_BOMB,
            "the archive contains itself (a quine): unpacking it never ends",
            f"member {expansion.quine}",
        )


@dataclass
class _Expansion:
    """What an archive unpacks to, nested archives included, each distinct one read once."""

    package: Package
    opened: int = 0
    quine: str | None = None
    _known: dict[tuple[int, int], int] = field(default_factory=dict)
    _open: set[tuple[int, int]] = field(default_factory=set)

    def total(self, archive: zipfile.ZipFile, depth: int) -> int:
        total = 0
        for info in archive.infolist():
            total += self._member(archive, info, depth)
        return total

    def _member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, depth: int) -> int:
        if not self._nested(info, depth):
            return info.file_size
        key = (info.CRC, info.file_size)
        if key in self._open:
            self.quine = self.quine or info.filename
            return info.file_size
        if key not in self._known:
            self._known[key] = self._unpacked(archive, info, key, depth) or info.file_size
        return self._known[key]

    def _nested(self, info: zipfile.ZipInfo, depth: int) -> bool:
        return (
            depth < NESTED_DEPTH
            and 0 < info.file_size <= NESTED_BYTES
            and info.filename.lower().endswith(_ARCHIVE_NAMES)
            and (self.opened < NESTED_ARCHIVES or (info.CRC, info.file_size) in self._known)
        )

    def _unpacked(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: tuple[int, int], depth: int
    ) -> int | None:
        data = self.package.head_of(archive, info, NESTED_BYTES)
        if not data or not data.startswith(_ZIP_MAGIC):
            return None
        self.opened += 1
        self._open.add(key)
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as inner:
                return self.total(inner, depth + 1)
        except PART_ERRORS:
            return None
        finally:
            self._open.discard(key)


def check_gzip_bomb(found: FindingSet, path: Path, settings: GuardSettings) -> None:
    """Note a gzip file whose declared size is out of proportion."""
    size = path.stat().st_size
    if size < 18:
        return
    with path.open("rb") as fh:
        fh.seek(-4, 2)
        declared = int.from_bytes(fh.read(4), "little")
    if declared >= settings.bomb_min_bytes and _ratio(declared, size) > settings.bomb_ratio:
        found.note(
            FindingKind.DECOMPRESSION_BOMB,
            f"the gzip stream declares {declared} bytes (modulo 4 GiB) from {size} "
            f"(ratio {_ratio(declared, size):.0f})",
            "gzip trailer",
        )
