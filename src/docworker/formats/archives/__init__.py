"""Archives: zip (plain, ZipCrypto, AES), tar (plain, gzip, bzip2, xz, zstd), 7z and
single compressed streams, read member by member and walked recursively under limits.

:func:`walk_archive` is the one entry point: it yields an :class:`Entry` per member at
every depth, as a stream (see :mod:`~docworker.formats.archives.walk`); the readers of
each format are in :mod:`~docworker.formats.archives.members`, name decoding and
judging in :mod:`~docworker.formats.archives.names`, the decoders' streams in
:mod:`~docworker.formats.archives.streams`.
"""

from __future__ import annotations

from docworker.formats.archives.members import ARCHIVE_TYPES, overlapping_members
from docworker.formats.archives.walk import Entry, EntryStatus, archive_format, walk_archive

__all__ = [
    "ARCHIVE_TYPES",
    "Entry",
    "EntryStatus",
    "archive_format",
    "overlapping_members",
    "walk_archive",
]
