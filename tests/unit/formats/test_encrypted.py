"""Encrypted OOXML packages: refused without the password, read with it.

Besides the corpus workbook (password ``tika``), a Word document is encrypted
here with msoffcrypto-tool (ECMA-376 agile encryption, as Office writes it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import msoffcrypto
import pytest
from corpus_scoring import CORPUS, needs_corpus, parse, token_f1, truth

from docworker.errors import CorruptDocument, PasswordRequired, WrongPassword
from docworker.formats.base import ParseContext
from docworker.formats.ooxml.encrypted import ENCRYPTED_OOXML_MIME, EncryptedOfficeParser
from docworker.formats.registry import parse_path
from docworker.render.document import render_markdown

WORKBOOK = CORPUS / "office" / "encrypted-password-tika.xlsx"
PARSER = EncryptedOfficeParser()

pytestmark = needs_corpus


def test_without_a_password_it_is_refused_as_needing_one() -> None:
    with pytest.raises(PasswordRequired) as refused:
        parse(PARSER, WORKBOOK, ENCRYPTED_OOXML_MIME)
    assert not isinstance(refused.value, WrongPassword)


def test_a_wrong_password_is_refused_as_wrong() -> None:
    with pytest.raises(WrongPassword):
        parse(PARSER, WORKBOOK, ENCRYPTED_OOXML_MIME, ParseContext(password="not-tika"))


def test_with_its_password_the_workbook_is_read_as_a_workbook() -> None:
    document = parse_path(WORKBOOK, ParseContext(password="tika"))
    assert document.format == "xlsx"
    assert document.metadata.encrypted is True
    markdown = render_markdown(document)
    assert "This is an Encrypted Excel spreadsheet." in markdown
    assert "## Sheet1" in markdown


def test_an_encrypted_word_document_reads_as_the_document_itself(tmp_path: Path) -> None:
    source = CORPUS / "office" / "word-sample.docx"
    encrypted = tmp_path / "secret.docx"
    before = set(Path(tempfile.gettempdir()).glob("docworker-decrypted-*"))
    with source.open("rb") as plain, encrypted.open("wb") as out:
        msoffcrypto.OfficeFile(plain).encrypt("s3cret", out)
    document = parse_path(encrypted, ParseContext(password="s3cret"), name="secret.docx")
    assert document.format == "docx"
    assert document.metadata.encrypted is True
    assert token_f1(render_markdown(document), truth("office/word-sample.docx")) >= 0.99
    assert not set(Path(tempfile.gettempdir()).glob("docworker-decrypted-*")) - before


@pytest.mark.parametrize("relative", ["office/legacy-word.doc", "text/plain-utf8.txt"])
def test_a_file_that_is_no_encrypted_package_is_corrupt(relative: str) -> None:
    with pytest.raises(CorruptDocument, match="not an encrypted Office package"):
        parse(PARSER, CORPUS / relative, ENCRYPTED_OOXML_MIME, ParseContext(password="x"))
