"""The OpenDocument package: its parts, their decryption, and the document's metadata.

An ODF file is a zip whose ``META-INF/manifest.xml`` lists the parts. A part
saved with a password carries ``manifest:encryption-data``: the part was
deflated, then encrypted with a key derived from the password (PBKDF2 over a
SHA-256 or SHA-1 digest of it), with AES-CBC since ODF 1.2 and Blowfish-CFB
before. The checksum of each decrypted part's first kilobyte tells a wrong
password from a right one. Other schemes (Argon2 key derivation, AES-GCM) are
refused as unsupported rather than guessed at.

An object embedded in the document is a folder of the package (``Object 1/``)
holding a document of its own; :meth:`OdfPackage.subdocument` packs it up
as a standalone package, decrypted, for the embedded-document dispatch.

``meta.xml`` gives the :class:`~docworker.document.Metadata`: ODF's
``meta:initial-creator`` is the author, ``dc:creator`` whoever saved last.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.decrepit.ciphers.algorithms import Blowfish
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from lxml import etree

from docworker.document import Metadata
from docworker.errors import CorruptDocument, PasswordRequired, UnsupportedFormat, WrongPassword
from docworker.formats.ooxml.package import parse_xml

_MANIFEST = "{urn:oasis:names:tc:opendocument:xmlns:manifest:1.0}"
_META = "{urn:oasis:names:tc:opendocument:xmlns:meta:1.0}"
_DC = "{http://purl.org/dc/elements/1.1/}"

_AES_CBC = frozenset(f"http://www.w3.org/2001/04/xmlenc#aes{bits}-cbc" for bits in (128, 192, 256))
_BLOWFISH = frozenset(
    {"Blowfish CFB", "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0#blowfish"}
)
_SHA256 = frozenset(
    {"http://www.w3.org/2000/09/xmldsig#sha256", "http://www.w3.org/2001/04/xmlenc#sha256"}
)
#: Checksum type → (digest, how many leading bytes it covers; None: all of them).
_CHECKSUMS: dict[str, tuple[str, int | None]] = {
    "SHA1/1K": ("sha1", 1024),
    "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0#sha1-1k": ("sha1", 1024),
    "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0#sha256-1k": ("sha256", 1024),
    "SHA1": ("sha1", None),
    "http://www.w3.org/2000/09/xmldsig#sha256": ("sha256", None),
}
#: ODF times may carry nanoseconds; Python keeps microseconds.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class _Encryption:
    """How one part was encrypted, as its manifest entry says."""

    algorithm: str
    iv: bytes
    derivation: str
    salt: bytes
    iterations: int
    key_size: int
    start_digest: str
    checksum_type: str | None
    checksum: bytes | None


class OdfPackage:
    """An open ODF zip: its parts, decrypted with the password when they are encrypted.

    Raises :class:`PasswordRequired` at once for an encrypted package opened
    without a password, and :class:`WrongPassword` when a part is read with the
    wrong one.
    """

    def __init__(self, zf: zipfile.ZipFile, fmt: str, password: str | None) -> None:
        self.zf = zf
        self.fmt = fmt
        self.password = password
        manifest = self._raw("META-INF/manifest.xml")
        self._encryption = _encrypted_parts(parse_xml(manifest)) if manifest else {}
        if self.encrypted and password is None:
            raise PasswordRequired(fmt)

    @property
    def encrypted(self) -> bool:
        return bool(self._encryption)

    def read(self, name: str) -> bytes | None:
        """A part's bytes, decrypted and inflated; None when the package lacks it."""
        data = self._raw(name)
        encryption = self._encryption.get(name)
        if data is None or encryption is None:
            return data
        return _decrypt(data, encryption, self.password or "", self.fmt)

    def xml(self, name: str) -> etree._Element | None:
        """A part parsed as XML (entities unresolved); None when the package lacks it."""
        data = self.read(name)
        return parse_xml(data) if data else None

    def size_under(self, folder: str) -> int:
        """How many bytes the parts in ``folder`` hold, unpacked (as the zip declares)."""
        return sum(info.file_size for info in self._parts_under(folder))

    def subdocument(self, folder: str, mime: str) -> bytes:
        """The document stored in ``folder`` as a package of its own, of type ``mime``.

        Its parts are decrypted; its own ``mimetype`` and manifest are left out
        (the first is ``mime``, the second only lists the parts).
        """
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
            package.writestr("mimetype", mime, compress_type=zipfile.ZIP_STORED)
            for info in self._parts_under(folder):
                inner = info.filename[len(folder) + 1 :]
                if inner != "mimetype" and not inner.startswith("META-INF/"):
                    package.writestr(inner, self.read(info.filename) or b"")
        return buffer.getvalue()

    def _parts_under(self, folder: str) -> list[zipfile.ZipInfo]:
        prefix = f"{folder}/"
        return [i for i in self.zf.infolist() if i.filename.startswith(prefix) and not i.is_dir()]

    def _raw(self, name: str) -> bytes | None:
        return self.zf.read(name) if name in self.zf.NameToInfo else None


def _encrypted_parts(manifest: etree._Element) -> dict[str, _Encryption]:
    found: dict[str, _Encryption] = {}
    for entry in manifest.iter(f"{_MANIFEST}file-entry"):
        data = entry.find(f"{_MANIFEST}encryption-data")
        if data is None:
            continue
        algorithm = data.find(f"{_MANIFEST}algorithm")
        derivation = data.find(f"{_MANIFEST}key-derivation")
        start = data.find(f"{_MANIFEST}start-key-generation")
        if algorithm is None or derivation is None:
            raise CorruptDocument("odf", "the manifest's encryption data is incomplete")
        checksum = data.get(f"{_MANIFEST}checksum")
        found[entry.get(f"{_MANIFEST}full-path", "")] = _Encryption(
            algorithm=algorithm.get(f"{_MANIFEST}algorithm-name", ""),
            iv=_base64(algorithm.get(f"{_MANIFEST}initialisation-vector")),
            derivation=derivation.get(f"{_MANIFEST}key-derivation-name", ""),
            salt=_base64(derivation.get(f"{_MANIFEST}salt")),
            iterations=_count(derivation.get(f"{_MANIFEST}iteration-count"), 1024),
            key_size=_count(derivation.get(f"{_MANIFEST}key-size"), 16),
            start_digest=(
                start.get(f"{_MANIFEST}start-key-generation-name", "SHA1")
                if start is not None
                else "SHA1"
            ),
            checksum_type=data.get(f"{_MANIFEST}checksum-type"),
            checksum=_base64(checksum) if checksum else None,
        )
    return found


def _decrypt(data: bytes, encryption: _Encryption, password: str, fmt: str) -> bytes:
    """The part's deflated bytes deciphered and inflated; WrongPassword if they do not check."""
    if encryption.derivation != "PBKDF2":
        raise _unsupported(fmt, f"key derivation {encryption.derivation or '(none)'}")
    digest = hashlib.sha256 if encryption.start_digest in _SHA256 else hashlib.sha1
    start_key = digest(password.encode("utf-8")).digest()
    kdf = PBKDF2HMAC(
        hashes.SHA1(),  # noqa: S303 - ODF fixes PBKDF2's hash as HMAC-SHA1
        encryption.key_size,
        encryption.salt,
        encryption.iterations,
    )
    plain = _decipher(data, encryption, kdf.derive(start_key), fmt)
    if encryption.checksum is not None and not _checksum_matches(plain, encryption, fmt):
        raise WrongPassword(fmt)
    try:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(plain)
    except zlib.error:
        # Without a checksum, a wrong key first shows as data that does not inflate.
        if encryption.checksum is None:
            raise WrongPassword(fmt) from None
        raise


def _decipher(data: bytes, encryption: _Encryption, key: bytes, fmt: str) -> bytes:
    if encryption.algorithm in _AES_CBC:
        decryptor = Cipher(algorithms.AES(key), modes.CBC(encryption.iv)).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        # W3C XML Encryption padding: the last byte says how many bytes were added.
        padding = plain[-1] if plain else 0
        return plain[:-padding] if 0 < padding <= 16 else plain
    if encryption.algorithm in _BLOWFISH:
        decryptor = Cipher(Blowfish(key), CFB(encryption.iv)).decryptor()
        return decryptor.update(data) + decryptor.finalize()
    raise _unsupported(fmt, f"cipher {encryption.algorithm or '(none)'}")


def _checksum_matches(plain: bytes, encryption: _Encryption, fmt: str) -> bool:
    kind = _CHECKSUMS.get(encryption.checksum_type or "SHA1/1K")
    if kind is None:
        raise _unsupported(fmt, f"checksum {encryption.checksum_type}")
    name, length = kind
    covered = plain if length is None else plain[:length]
    return hashlib.new(name, covered).digest() == encryption.checksum


def _unsupported(fmt: str, what: str) -> UnsupportedFormat:
    return UnsupportedFormat(
        f"application/vnd.oasis.opendocument ({fmt})",
        f"the {fmt} document is encrypted with a {what}, which is not supported",
    )


def _base64(value: str | None) -> bytes:
    try:
        return base64.b64decode(value or "", validate=False)
    except (binascii.Error, ValueError) as exc:
        raise CorruptDocument("odf", "the manifest's encryption data is malformed") from exc


def _count(value: str | None, default: int) -> int:
    try:
        return max(int(value), 1) if value else default
    except ValueError:
        return default


def read_metadata(meta: etree._Element | None) -> Metadata:
    """Title, authors, dates, language, keywords and statistics from ``meta.xml``."""
    metadata = Metadata()
    office_meta = next(meta.iter("{*}meta"), None) if meta is not None else None
    if office_meta is None:
        return metadata
    metadata.title = _text(office_meta, f"{_DC}title")
    metadata.subject = _text(office_meta, f"{_DC}subject")
    metadata.language = _text(office_meta, f"{_DC}language")
    metadata.producer = _text(office_meta, f"{_META}generator")
    author = _text(office_meta, f"{_META}initial-creator") or _text(office_meta, f"{_DC}creator")
    metadata.authors = [author] if author else []
    last = _text(office_meta, f"{_DC}creator")
    if last:
        metadata.extra["last_modified_by"] = last
    metadata.created = _date(_text(office_meta, f"{_META}creation-date"))
    metadata.modified = _date(_text(office_meta, f"{_DC}date"))
    keywords = (" ".join((k.text or "").split()) for k in office_meta.iter(f"{_META}keyword"))
    metadata.keywords = list(dict.fromkeys(k for k in keywords if k))
    description = _text(office_meta, f"{_DC}description")
    if description:
        metadata.extra["description"] = description
    _read_statistics(office_meta, metadata)
    custom = {
        field.get(f"{_META}name", ""): " ".join((field.text or "").split())
        for field in office_meta.iter(f"{_META}user-defined")
    }
    custom = {name: value for name, value in custom.items() if name and value}
    if custom:
        metadata.extra["custom_properties"] = custom
    return metadata


def _read_statistics(office_meta: etree._Element, metadata: Metadata) -> None:
    """The counts the application saved (pages, words, tables, ...), in ``extra``."""
    statistics = office_meta.find(f"{_META}document-statistic")
    if statistics is None:
        return
    counts: dict[str, int] = {}
    for name, value in statistics.attrib.items():
        if value.isdigit():
            counts[etree.QName(name).localname.replace("-", "_")] = int(value)
    if counts:
        metadata.extra["statistics"] = counts
    # A text document's page count as of its last save: the file has no fixed pages.
    if "page_count" in counts:
        metadata.page_count = counts["page_count"]


def _text(parent: etree._Element, tag: str) -> str | None:
    found = parent.find(tag)
    text = " ".join((found.text or "").split()) if found is not None else ""
    return text or None


def _date(value: str | None) -> datetime | None:
    """An ISO 8601 date; a malformed one is dropped rather than failing the parse."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", value).replace("Z", "+00:00"))
    except ValueError:
        return None
