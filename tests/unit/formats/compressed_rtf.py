"""Compressed RTF for the tests: an LZFu writer that uses literal tokens only.

[MS-OXRTFCP] lets a writer emit any valid token stream: runs of eight
literals (a zero control byte, then the bytes), and a last run whose final
token is the reference to the dictionary's write position that ends the
stream. The output is larger than the input, and exactly as valid as Outlook's.
The CRC here is the specification's bit-by-bit definition, written apart from
the table-free one the code under test uses.
"""

from __future__ import annotations

import struct

LZFU, MELA = 0x75465A4C, 0x414C454D
_INITIAL_DICTIONARY_SIZE, _DICTIONARY_SIZE = 207, 4096

#: [MS-OXRTFCP] 3.1.1 (decompressing) and 3.2 (the same text compressed): the bytes.
SIMPLE = bytes.fromhex(
    "2d0000002b0000004c5a4675f1c5c7a7"
    "03000a007263706731323542320af320"
    "68656c090020627705b06c647d0a800f"
    "a0"
)
SIMPLE_TEXT = b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"
#: [MS-OXRTFCP] 3.1.2: a reference that reads past the dictionary's write position.
CROSSING = bytes.fromhex("1a0000001c0000004c5a4675e2d44b51410004205758595a0d6e7d010eb0")
CROSSING_TEXT = b"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}"


def spec_crc32(data: bytes) -> int:
    """CRC-32 over ``data``, reflected polynomial 0xEDB88320, started at 0, not inverted."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc


def compress_literally(rtf: bytes) -> bytes:
    """``rtf`` as ``PR_RTF_COMPRESSED`` bytes of the ``LZFu`` type, literals only."""
    contents = bytearray()
    whole = len(rtf) - len(rtf) % 8
    for start in range(0, whole, 8):
        contents += b"\x00" + rtf[start : start + 8]
    tail = rtf[whole:]
    write = (_INITIAL_DICTIONARY_SIZE + len(rtf)) % _DICTIONARY_SIZE
    # The last run: the remaining literals, then the reference that ends the stream.
    contents += bytes([1 << len(tail)]) + tail + struct.pack(">H", write << 4)
    header = struct.pack("<4I", len(contents) + 12, len(rtf), LZFU, spec_crc32(bytes(contents)))
    return header + bytes(contents)


def stored(rtf: bytes) -> bytes:
    """``rtf`` as ``PR_RTF_COMPRESSED`` bytes of the uncompressed ``MELA`` type."""
    return struct.pack("<4I", len(rtf) + 12, len(rtf), MELA, 0) + rtf
