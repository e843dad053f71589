"""Turning the bytes of a text file into text: BOMs, declared charsets, then sniffing.

The order matters. A byte-order mark is proof, so it wins; then a charset the
document declares (an HTML ``<meta>``, an XML declaration) if the bytes decode
with it, unless it is ASCII and the bytes are not (an e-mail client's default
label on text it did not look at says nothing of its 8-bit bytes); then strict
UTF-8, which almost never decodes text that is not UTF-8; then the shapes of
UTF-16/32 without a BOM and of EBCDIC, which statistical detectors miss; and
only then charset-normalizer's guess.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from charset_normalizer import from_bytes
from charset_normalizer.constant import IANA_SUPPORTED

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

#: The largest code point Unicode has; a UTF-32 unit is never above it.
_MAX_CODE_POINT = 0x10FFFF
#: How much of a file the detectors look at; decoding always uses all of it.
SNIFF_BYTES = 256 * 1024


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    #: How the encoding was decided: bom, declared, utf-8, shape or guess.
    how: str


def normalise_codec(name: str | None) -> str | None:
    """The Python codec for a charset label, or None if Python does not know it."""
    if not name:
        return None
    label = name.strip().strip("\"'").lower()
    # WHATWG maps these labels to supersets; so do browsers.
    label = {
        "iso-8859-8-i": "iso-8859-8",
        "x-sjis": "shift_jis",
        "ascii": "cp1252",
        "us-ascii": "cp1252",
        "iso-8859-1": "cp1252",
        "latin1": "cp1252",
    }.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a label with a NUL in it
        return None


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """The encoding a byte-order mark announces, and the mark's length."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    return None


def _utf16_32_shape(sample: bytes) -> str | None:
    """UTF-16/32 without a BOM: mostly-ASCII text leaves a regular pattern of zero bytes."""
    if len(sample) < 4 or sample.count(0) < len(sample) // 4:
        return None
    n = len(sample) - len(sample) % 4
    quads = [sample[i : i + 4] for i in range(0, n, 4)]
    # Every unit a code point (1..U+10FFFF); UTF-16 text pairs make far larger numbers.
    if all(0 < int.from_bytes(q, "little") <= _MAX_CODE_POINT for q in quads[:64]):
        return "utf-32-le"
    if all(0 < int.from_bytes(q, "big") <= _MAX_CODE_POINT for q in quads[:64]):
        return "utf-32-be"
    even = sample[0:n:2]
    odd = sample[1:n:2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _looks_ebcdic(sample: bytes) -> bool:
    """EBCDIC text: space is 0x40 and letters sit in 0x81-0xA9 / 0xC1-0xE9."""
    if not sample:
        return False
    spaces = sample.count(0x40)
    letters = sum(1 for b in sample if 0x81 <= b <= 0xA9 or 0xC1 <= b <= 0xE9)
    ascii_letters = sum(1 for b in sample if 0x61 <= b <= 0x7A)
    return (
        spaces > 0.08 * len(sample) and letters > 0.3 * len(sample) and ascii_letters < letters / 10
    )


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_text(data: bytes, declared: str | None = None) -> Decoded:
    """Decode ``data`` as described in the module docstring; never raises."""
    bom = bom_encoding(data)
    if bom is not None:
        name, skip = bom
        return Decoded(data[skip:].decode(name, errors="replace"), name, "bom")
    codec = normalise_codec(declared)
    if codec is not None and _ascii_label(declared) and not data.isascii():
        codec = None
    if codec is not None and codec not in {"utf-16", "utf-32"}:
        text = _strict(data, codec)
        if text is not None:
            return Decoded(text, codec, "declared")
    sample = data[:SNIFF_BYTES]
    # Zero bytes are valid UTF-8 but all but absent from UTF-8 text; UTF-16/32 is full of them.
    shaped = _utf16_32_shape(sample)
    if shaped is not None:
        return Decoded(data.decode(shaped, errors="replace"), shaped, "shape")
    text = _strict(data, "utf-8")
    if text is not None:
        return Decoded(text, "utf-8", "utf-8")
    if _looks_ebcdic(sample):
        return Decoded(data.decode("cp500", errors="replace"), "cp500", "shape")
    matches = from_bytes(sample)
    best = matches.best()
    guess = normalise_codec(best.encoding) if best is not None else None
    # Detectors score the common code page and its rarer sibling alike on short
    # samples; those it found no more chaotic than its pick count as readings too.
    alike = {
        normalise_codec(m.encoding) for m in matches if best is not None and m.chaos <= best.chaos
    }
    encoding = _common_sibling(sample, guess or "cp1252", alike)
    return Decoded(data.decode(encoding, errors="replace"), encoding, "guess")


def _ascii_label(label: str | None) -> bool:
    return (label or "").strip().strip("\"'").lower() in _ASCII_LABELS


_ASCII_LABELS = frozenset({"ascii", "us-ascii", "ansi_x3.4-1968", "iso646-us", "us"})

#: Code pages that detectors pick over a far more common one that reads the bytes the same.
_COMMON_SIBLING = {
    "cp1250": "cp1252",
    "iso8859-2": "cp1252",
    "iso8859-15": "cp1252",
    "cp1125": "cp866",
    "cp037": "cp500",
    "cp1140": "cp500",
    "cp273": "cp500",
}


def _common_sibling(sample: bytes, guess: str, alike: set[str | None]) -> str:
    """The common code page instead of ``guess`` when it reads the sample as well."""
    sibling = _COMMON_SIBLING.get(guess)
    if sibling is None:
        return guess
    if sibling in alike or _strict(sample, sibling) == _strict(sample, guess):
        return sibling
    return guess


def codec_modules() -> list[str]:
    """The codec modules that guessing an encoding may try (charset-normalizer probes
    each encoding it knows, importing its codec on first use): for a template process to
    import once (:mod:`docworker.jobs.template`), so that a fresh worker's first
    undeclared text does not import a hundred codecs."""
    return [f"encodings.{name}" for name in IANA_SUPPORTED]
