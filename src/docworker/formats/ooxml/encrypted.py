"""Password-encrypted Office 2007+ files (.docx, .xlsx, .pptx): decrypted, then read.

Office encrypts a whole OOXML package into an OLE2 compound file (the streams
``EncryptionInfo`` and ``EncryptedPackage``, ECMA-376 "standard" or "agile"
encryption), so detection can tell only that it is an encrypted Office file.
Given the password, msoffcrypto-tool decrypts the package into a temporary file
whose type is then detected from its content, and the file goes back through
the registry's dispatch like any other. The Document is marked encrypted.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import msoffcrypto
from msoffcrypto.exceptions import DecryptionError, FileFormatError, InvalidKeyError

from docworker.document import Document
from docworker.errors import CorruptDocument, PasswordRequired, UnsupportedFormat, WrongPassword
from docworker.formats.base import ParseContext, Source
from docworker.formats.cfb import allowed_sizes
from docworker.formats.detect import detect
from docworker.formats.registry import parse_path

ENCRYPTED_OOXML_MIME = "application/x-encrypted-ooxml"
_FORMAT = "office"


class EncryptedOfficeParser:
    """Encrypted OOXML packages, read once decrypted with the caller's password."""

    name: ClassVar[str] = "encrypted-office"
    media_types: ClassVar[frozenset[str]] = frozenset({ENCRYPTED_OOXML_MIME})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        if not ctx.password:
            raise PasswordRequired(_FORMAT)
        with tempfile.TemporaryDirectory(prefix="docworker-decrypted-") as scratch:
            plain = Path(scratch) / "decrypted"
            decrypt_package(source.path, ctx.password, plain)
            detection = detect(plain, source.name)
            if detection.mime == ENCRYPTED_OOXML_MIME:
                raise CorruptDocument(_FORMAT, "the decrypted package is encrypted again")
            document = parse_path(
                plain,
                dataclasses.replace(ctx, password=None),
                name=source.name,
                mime=detection.mime,
            )
        metadata = document.metadata.model_copy(update={"encrypted": True})
        return document.model_copy(update={"metadata": metadata})


def decrypt_package(path: Path, password: str, target: Path) -> None:
    """Write the decrypted package of ``path`` to ``target``, or raise an input error."""
    with path.open("rb") as fh:
        office = _office_file(fh)
        try:
            office.load_key(password=password, verify_password=True)
            with target.open("wb") as out:
                office.decrypt(out)
        except InvalidKeyError:
            raise WrongPassword(_FORMAT) from None
        except DecryptionError as exc:
            raise UnsupportedFormat(
                ENCRYPTED_OOXML_MIME, f"this kind of Office encryption is not supported: {exc}"
            ) from None
        except (ValueError, KeyError, IndexError) as exc:
            raise CorruptDocument(_FORMAT, f"its encryption header is damaged ({exc})") from None


def _office_file(fh: Any) -> Any:
    """msoffcrypto's reader of an encrypted package (not of a legacy file, or a plain one)."""
    if not allowed_sizes(fh):  # not a compound file, or one with sector sizes never written
        raise CorruptDocument(_FORMAT, "not an encrypted Office package")
    try:
        office = msoffcrypto.OfficeFile(fh)
        encrypted_package = office.format == "ooxml" and office.is_encrypted()
    except FileFormatError as exc:
        raise CorruptDocument(_FORMAT, f"not an encrypted Office package ({exc})") from None
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise CorruptDocument(_FORMAT, f"its encryption header is damaged ({exc})") from None
    if not encrypted_package:
        raise CorruptDocument(_FORMAT, "not an encrypted Office package")
    return office
