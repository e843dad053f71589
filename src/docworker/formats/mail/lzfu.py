"""Compressed RTF ([MS-OXRTFCP]): the form Outlook keeps an RTF message body in.

``PR_RTF_COMPRESSED`` holds a 16-byte header (``COMPSIZE``, ``RAWSIZE``,
``COMPTYPE``, ``CRC``, all little-endian) and then the contents. With the
``MELA`` type the contents are the RTF itself. With the ``LZFu`` type they are
LZ77 runs over a 4096-byte circular dictionary that starts out holding 207
bytes of RTF boilerplate: each run is a control byte whose bits, low first,
say whether each of the (up to) eight tokens after it is a literal byte or a
big-endian two-byte reference (12 bits of offset, 4 bits of length less 2);
every byte written out is also written to the dictionary, so a reference may
run past the write position and copy what it has just written. A reference to
the write position itself ends the stream. The CRC is the CRC-32 of the
compressed contents, computed without the usual pre- and post-inversion.

Decompression reads each input byte once and writes at most ``RAWSIZE``
bytes, never more than 8 per input byte, so a hostile stream costs time and
memory in proportion to its own size.
"""

from __future__ import annotations

import struct
import zlib

from docworker.errors import CorruptDocument

#: The dictionary's first 207 bytes ([MS-OXRTFCP] 2.1.2.1).
INITIAL_DICTIONARY = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss "
    b"\\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier"
    b"{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)
COMPRESSED = 0x75465A4C  # "LZFu"
UNCOMPRESSED = 0x414C454D  # "MELA"
HEADER_SIZE = 16
DICTIONARY_SIZE = 4096
_FORMAT = "compressed-rtf"


def crc32(data: bytes) -> int:
    """[MS-OXRTFCP]'s CRC-32: the usual polynomial, started at 0 and not inverted after.

    zlib inverts the value it is given on the way in and the result on the way
    out; starting it at all ones and inverting its answer undoes both.
    """
    return zlib.crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def decompress(data: bytes) -> bytes:
    """The RTF held by a ``PR_RTF_COMPRESSED`` value (``LZFu`` or ``MELA``).

    Raises :class:`CorruptDocument` when the header is short, the type
    unknown, the contents truncated or their CRC wrong.
    """
    if len(data) < HEADER_SIZE:
        raise CorruptDocument(_FORMAT, "the data is shorter than its 16-byte header")
    comp_size, raw_size, kind, crc = struct.unpack_from("<4I", data)
    if kind == UNCOMPRESSED:
        return data[HEADER_SIZE : HEADER_SIZE + raw_size]
    if kind != COMPRESSED:
        raise CorruptDocument(_FORMAT, f"unknown compression type 0x{kind:08X}")
    # COMPSIZE counts the contents and the 12 header bytes after itself.
    end = comp_size + 4
    if end < HEADER_SIZE or end > len(data):
        raise CorruptDocument(_FORMAT, f"the header gives {comp_size} bytes, the data has fewer")
    contents = data[HEADER_SIZE:end]
    if crc32(contents) != crc:
        raise CorruptDocument(_FORMAT, "the CRC of the compressed contents does not match")
    return _expand(contents, raw_size)


def _expand(contents: bytes, limit: int) -> bytes:
    """The runs of ``contents`` played out, up to ``limit`` bytes or the end reference."""
    dictionary = bytearray(DICTIONARY_SIZE)
    dictionary[: len(INITIAL_DICTIONARY)] = INITIAL_DICTIONARY
    write = len(INITIAL_DICTIONARY)
    out = bytearray()
    position, size = 0, len(contents)
    while position < size and len(out) < limit:
        control = contents[position]
        position += 1
        for bit in range(8):
            if position >= size:
                break
            if not control & (1 << bit):
                byte = contents[position]
                position += 1
                out.append(byte)
                dictionary[write] = byte
                write = (write + 1) % DICTIONARY_SIZE
                continue
            if position + 1 >= size:
                raise CorruptDocument(_FORMAT, "the contents end inside a dictionary reference")
            reference = (contents[position] << 8) | contents[position + 1]
            position += 2
            offset = reference >> 4
            if offset == write:
                return bytes(out[:limit])  # the end of the stream
            for _ in range((reference & 0xF) + 2):
                byte = dictionary[offset]
                offset = (offset + 1) % DICTIONARY_SIZE
                out.append(byte)
                dictionary[write] = byte
                write = (write + 1) % DICTIONARY_SIZE
    return bytes(out[:limit])
