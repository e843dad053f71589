"""Byte streams under an archive reader: the compressed bytes counted as they are read,
and single compressed streams (gzip, bzip2, xz, lzma, zstd) inflated a bounded piece
at a time.

:class:`CountingReader` stands between a reader and the archive file, so that the
walker knows how many compressed bytes an entry has taken so far and can hold each
entry to its compression ratio while it is unpacked. :func:`inflating` opens a
compressed stream whose decoder never returns more than it is asked for, and whose
xz/lzma/zstd decoder refuses a dictionary or window larger than the memory allowed
(the crafted header that asks for gigabytes is an error, not an allocation).
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from collections.abc import Callable
from typing import IO, Protocol

import zstandard

CHUNK = 256 * 1024
#: What a compressed stream's decoder reads from its file at a time.
SOURCE_READ = 64 * 1024
#: The most compressed bytes an entry of a compressed tar may owe to reads made before
#: it began (a decoded buffer read ahead, one read of the file): counted to it, so that
#: its ratio is never overstated (see ``ArchiveReader.read_ahead``).
READ_AHEAD = CHUNK + SOURCE_READ


class CountingReader(io.RawIOBase):
    """A seekable file whose bytes read are counted (``consumed``)."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.consumed += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.consumed += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


class _Decoder(Protocol):
    """What bz2's and lzma's decompressors offer, and :class:`_GzipDecoder` too."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _GzipDecoder:
    """zlib's gzip decoder with the bounded interface of bz2's and lzma's."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(wbits=31)
        self.needs_input = True

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    @property
    def unused_data(self) -> bytes:
        return self._zlib.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out = self._zlib.decompress(self._zlib.unconsumed_tail + data, max(max_length, 0))
        # Output left inside zlib (the buffer filled up) is asked for with no more input.
        self.needs_input = not self._zlib.unconsumed_tail and len(out) < max_length
        return out


class _Inflating(io.RawIOBase):
    """A compressed stream's content; a file of several streams (members) read whole."""

    def __init__(self, source: IO[bytes], decoder: Callable[[], _Decoder]) -> None:
        super().__init__()
        self._source = source
        self._make = decoder
        self._decoder = decoder()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while True:
            if self._decoder.eof:
                rest = self._decoder.unused_data or self._source.read(SOURCE_READ)
                if not rest:
                    return 0
                self._decoder, self._pending = self._make(), rest
            if self._decoder.needs_input and not self._pending:
                self._pending = self._source.read(SOURCE_READ)
                if not self._pending:
                    raise EOFError("the compressed stream ends before its end marker")
            data = self._decoder.decompress(self._pending, len(buffer))
            self._pending = b""
            if data:
                buffer[: len(data)] = data
                return len(data)


def inflating(source: IO[bytes], fmt: str, max_memory: int) -> IO[bytes]:
    """The content of the compressed stream ``source`` in format ``fmt`` (``gzip``,
    ``bzip2``, ``xz``, ``lzma`` or ``zstd``), read a buffer at a time."""
    if fmt == "zstd":
        decoder = zstandard.ZstdDecompressor(max_window_size=max_memory)
        return io.BufferedReader(
            decoder.stream_reader(source, read_size=SOURCE_READ, read_across_frames=True), CHUNK
        )
    makers: dict[str, Callable[[], _Decoder]] = {
        "gzip": _GzipDecoder,
        "bzip2": bz2.BZ2Decompressor,
        "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=max_memory),
        "lzma": lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=max_memory),
    }
    return io.BufferedReader(_Inflating(source, makers[fmt]), CHUNK)
