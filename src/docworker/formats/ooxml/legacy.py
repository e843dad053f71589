"""Legacy binary Office files (.doc, .xls, .ppt, Word 6 and Excel 95 too), through LibreOffice.

No library worth trusting reads every generation of these binary formats, but
LibreOffice does: it converts the file (``ctx.convert``) to its OOXML
counterpart, which the DOCX, XLSX and PPTX parsers read. The Document then names
the original format and media type. Where no converter runs, the file is refused
as unsupported, saying why.

A file encrypted by Office 97-2003 (RC4 or RC4 CryptoAPI) is decrypted first with
msoffcrypto-tool, given the password; without one it is refused with
:class:`PasswordRequired`. The producing application comes from the file's own
summary information (or is left out), never from the converted copy, which
LibreOffice signs as its own.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

import msoffcrypto
from msoffcrypto.exceptions import DecryptionError, InvalidKeyError

from docworker.document import Document
from docworker.errors import PasswordRequired, UnsupportedFormat, WrongPassword
from docworker.formats.base import ParseContext, Parser, Source
from docworker.formats.cfb import allowed_sizes, open_compound
from docworker.formats.ooxml.slides import PPTX_MIME, PptxParser
from docworker.formats.ooxml.spreadsheet import XLSX_MIME, XlsxParser
from docworker.formats.ooxml.word import WORD_MIME, DocxParser


@dataclass(frozen=True)
class _Family:
    """A legacy format and the OOXML format it is read as."""

    format: str
    target: str
    target_mime: str
    parser: Parser


_FAMILIES: dict[str, _Family] = {
    "application/msword": _Family("doc", "docx", WORD_MIME, DocxParser()),
    "application/vnd.ms-excel": _Family("xls", "xlsx", XLSX_MIME, XlsxParser()),
    "application/vnd.ms-powerpoint": _Family("ppt", "pptx", PPTX_MIME, PptxParser()),
}


class LegacyOfficeParser:
    """Word 97-2003 and 6.0, Excel 97-2003 and 95, PowerPoint 97-2003."""

    name: ClassVar[str] = "legacy-office"
    media_types: ClassVar[frozenset[str]] = frozenset(_FAMILIES)

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        family = _FAMILIES.get(source.mime)
        if family is None:
            raise UnsupportedFormat(source.mime)
        if ctx.convert is None:
            raise UnsupportedFormat(
                source.mime,
                f"{family.format} documents are read through LibreOffice, "
                "which is not available here",
            )
        with tempfile.TemporaryDirectory(prefix="docworker-legacy-") as scratch:
            path, encrypted = _decrypted(source, family.format, ctx.password, Path(scratch))
            converted = ctx.convert(path, family.target)
            try:
                document = family.parser.parse(
                    Source(path=converted, mime=family.target_mime, name=source.name), ctx
                )
            finally:
                converted.unlink(missing_ok=True)
            producer = _producer(path)
        metadata = document.metadata.model_copy(
            update={"encrypted": encrypted, "producer": producer}
        )
        return document.model_copy(
            update={"format": family.format, "mime": source.mime, "metadata": metadata}
        )


def _decrypted(source: Source, fmt: str, password: str | None, scratch: Path) -> tuple[Path, bool]:
    """The file itself when not encrypted, else a decrypted copy in ``scratch``.

    The copy keeps the extension: LibreOffice's type detection looks at it too.
    """
    with source.path.open("rb") as fh:
        office = _encrypted_office_file(fh)
        if office is None:
            return source.path, False
        if not password:
            raise PasswordRequired(fmt)
        try:
            office.load_key(password=password)
            target = scratch / f"decrypted.{fmt}"
            with target.open("wb") as out:
                office.decrypt(out)
        except InvalidKeyError:
            raise WrongPassword(fmt) from None
        except DecryptionError as exc:
            raise UnsupportedFormat(
                source.mime, f"the {fmt} document's encryption is not supported: {exc}"
            ) from None
    return target, True


def _encrypted_office_file(fh: IO[bytes]) -> Any:
    """msoffcrypto's reader of ``fh`` when the file is encrypted, else None.

    msoffcrypto knows only the 97-2003 formats: Excel 95 workbooks and damaged
    files make it fail in many ways; those files are left to LibreOffice, which
    refuses what it cannot read.
    """
    if not allowed_sizes(fh):
        return None
    try:
        office = msoffcrypto.OfficeFile(fh)
        return office if office.is_encrypted() else None
    except Exception:  # noqa: BLE001 - see above: any failure means "not decryptable here"
        return None


def _producer(path: Path) -> str | None:
    """The application that wrote the file, from its summary information."""
    try:
        with open_compound(path) as ole:
            application = ole.get_metadata().creating_application
    except Exception:  # noqa: BLE001 - metadata is a bonus: LibreOffice has read the file
        return None
    if not isinstance(application, bytes):
        return None
    return application.decode("cp1252", errors="replace").strip("\x00 ") or None
