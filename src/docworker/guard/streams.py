"""Reading inputs for the scan in bounded pieces: files and ZIP parts, never whole.

:class:`Package` opens a ZIP container (OOXML, OpenDocument, EPUB, a plain ZIP)
through its central directory once per scan and reads its parts in chunks, each
decompressed byte counted against the scan's :class:`~.findings.Budget`.
:func:`iter_matches` runs a pattern over a stream of chunks, so a scanner looks
at a 100 MB part with a few megabytes of memory.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from docworker.guard.findings import Budget

CHUNK = 1024 * 1024
#: What reading a damaged, encrypted or oddly compressed ZIP part may raise.
PART_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    OSError,
    EOFError,
    RuntimeError,  # an encrypted part
    NotImplementedError,  # an unknown compression method
    ValueError,
)


def file_chunks(path: Path, budget: Budget, size: int = CHUNK) -> Iterator[bytes]:
    """The file's bytes in chunks of ``size``, the time budget checked between them."""
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk
            budget.check()


def iter_matches(
    chunks: Iterable[bytes], pattern: re.Pattern[bytes], keep: int = 8192
) -> Iterator[re.Match[bytes]]:
    """Each match of ``pattern`` over the concatenated ``chunks``, once.

    A match must be shorter than ``keep`` bytes: that much of the end of each chunk
    is held back and searched again with the next one, so that a match that spans
    two chunks is found whole.
    """
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        limit = len(buffer) - keep
        consumed = 0
        for match in pattern.finditer(buffer):
            if match.start() >= limit:
                break
            consumed = match.end()
            yield match
        cut = max(consumed, limit)
        if cut > 0:
            buffer = buffer[cut:]
    yield from pattern.finditer(buffer)


def contains_any(chunks: Iterable[bytes], needles: Iterable[bytes]) -> bool:
    """Whether the concatenated ``chunks`` hold any of ``needles`` (lower-case bytes),
    ASCII letters' case aside: a search for literals at ``bytes.find``'s speed, many
    times a regular expression's on megabytes."""
    wanted = [needle.lower() for needle in needles]
    keep = max(len(needle) for needle in wanted) - 1
    tail = b""
    for chunk in chunks:
        window = tail + chunk.lower()
        if any(needle in window for needle in wanted):
            return True
        tail = window[-keep:] if keep else b""
    return False


class Package:
    """A ZIP container's parts, read within a scan's budget."""

    def __init__(self, archive: zipfile.ZipFile, budget: Budget, max_parts: int) -> None:
        self.archive = archive
        self.budget = budget
        every = archive.infolist()
        self.part_count = len(every)
        #: The parts looked into; a container with more parts is scanned in part.
        self.parts = every[:max_parts]
        self.truncated = len(every) > max_parts
        self.names = {info.filename for info in self.parts}

    def head(self, info: zipfile.ZipInfo, size: int) -> bytes | None:
        """At most ``size`` decompressed bytes from the start of a part; None when the
        part cannot be read."""
        return self.head_of(self.archive, info, size)

    def head_of(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> bytes | None:
        """As :meth:`head`, for a part of ``archive`` (an archive nested in this one)."""
        try:
            with archive.open(info) as member:
                data = member.read(size)
        except PART_ERRORS:
            return None
        self.budget.take(len(data))
        return data

    def chunks(self, info: zipfile.ZipInfo) -> Iterator[bytes]:
        """A part's decompressed bytes in chunks; stops early when the part is unreadable."""
        try:
            with self.archive.open(info) as member:
                while True:
                    try:
                        chunk = member.read(CHUNK)
                    except PART_ERRORS:
                        return
                    if not chunk:
                        return
                    self.budget.take(len(chunk))
                    yield chunk
        except PART_ERRORS:
            return
