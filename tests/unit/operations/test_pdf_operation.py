"""The ``pdf`` operation on corpus PDFs: every output opened with pypdfium2 or pikepdf and
checked against its source (page counts, page text and order, rotation, encryption and
permissions, metadata, flattened fields, attachments, size)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pikepdf
import pikepdf.pdfa
import pypdfium2
import pytest

from bench.scoring import corpus_root
from docworker.config import PdfToolSettings, Settings
from docworker.errors import (
    CorruptDocument,
    InvalidParameter,
    LimitExceeded,
    PasswordRequired,
    PayloadTooLarge,
    ProcessingFailed,
    UnsupportedFormat,
    WrongPassword,
)
from docworker.operations import dump_params, get_operation, public_params, validate_params
from docworker.operations.base import InputFile, OperationContext, Result
from docworker.sealing import SecretKeys, new_key

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")
ARTICLE = CORPUS / "pdf/multi-page-article.pdf"  # 5 pages
MINIMAL = CORPUS / "pdf/minimal-document.pdf"  # 1 page
FORM = CORPUS / "pdf/acroform-fields.pdf"
ENCRYPTED = CORPUS / "pdf/encrypted-password-1234.pdf"  # user 1234, owner 'owner'
REDBOOK = CORPUS / "pdf/ibm-redbook-sampled.pdf"
LATEX = CORPUS / "pdf/latex-multicolumn.pdf"
ATTACHED = CORPUS / "pdf/with-embedded-attachment.pdf"
SCANNED = CORPUS / "pdf/scanned-ocr-test.pdf"
OPERATION = get_operation("pdf")


def run(
    tmp_path: Path,
    path: Path,
    others: tuple[Path, ...] = (),
    settings: Settings | None = None,
    **params: Any,
) -> Result:
    # A folder per run: a later run may read an earlier one's output.
    workdir = Path(tempfile.mkdtemp(dir=tmp_path))
    ctx = OperationContext(workdir=workdir, settings=settings or Settings())
    source = InputFile(path, path.name, others=tuple(InputFile(p, p.name) for p in others))
    return OPERATION.run(ctx, source, validate_params(OPERATION, params))


def texts(path: Path, password: str | None = None) -> list[str]:
    """The text of each page, whitespace normalised."""
    pdf = pypdfium2.PdfDocument(str(path), password=password)
    try:
        found = []
        for page in pdf:
            textpage = page.get_textpage()
            found.append(" ".join(textpage.get_text_range().split()))
            textpage.close()
            page.close()
        return found
    finally:
        pdf.close()


def only(result: Result) -> Path:
    assert len(result.artifacts) == 1
    artifact = result.artifacts[0]
    assert artifact.mime == "application/pdf"
    assert artifact.path.read_bytes().startswith(b"%PDF-")
    return artifact.path


def test_split_by_ranges_keeps_each_page_text(tmp_path: Path) -> None:
    source = texts(ARTICLE)
    result = run(tmp_path, ARTICLE, action="split", ranges="1-2,3-4,5-")
    assert [a.name for a in result.artifacts] == ["part-1.pdf", "part-2.pdf", "part-3.pdf"]
    assert [texts(a.path) for a in result.artifacts] == [source[0:2], source[2:4], source[4:]]
    assert [o["source_pages"] for o in result.payload["outputs"]] == [[1, 2], [3, 4], [5]]


def test_split_keeps_the_form_fields_of_its_pages(tmp_path: Path) -> None:
    result = run(tmp_path, FORM, action="split", every=1)
    with pikepdf.open(only(result)) as pdf:
        assert len(pdf.Root.AcroForm.Fields) == 3


def test_bookmarks_follow_their_pages(tmp_path: Path) -> None:
    huge = CORPUS / "pdf/huge-619-pages.pdf"
    with pikepdf.open(huge) as source, source.open_outline() as outline:
        assert len(outline.root) > 0
    split = run(tmp_path, huge, action="split", ranges="1-300,301-")
    for artifact in split.artifacts:
        with pikepdf.open(artifact.path) as pdf, pdf.open_outline() as outline:
            assert len(outline.root) > 0
    merged = run(tmp_path, MINIMAL, (huge,), action="merge")
    assert merged.payload["bookmarks_added"] > 0


def test_split_every_page(tmp_path: Path) -> None:
    source = texts(ARTICLE)
    result = run(tmp_path, ARTICLE, action="split", every=1)
    assert [texts(a.path) for a in result.artifacts] == [[text] for text in source]
    two = run(tmp_path, ARTICLE, action="split", every=2)
    assert [len(texts(a.path)) for a in two.artifacts] == [2, 2, 1]


def test_extract_pages_in_the_order_written(tmp_path: Path) -> None:
    source = texts(ARTICLE)
    result = run(tmp_path, ARTICLE, action="extract_pages", pages="4,1-2")
    assert texts(only(result)) == [source[3], source[0], source[1]]


def test_rotate_selected_pages(tmp_path: Path) -> None:
    result = run(tmp_path, ARTICLE, action="rotate", angle=90, pages="2,4")
    with pikepdf.open(only(result)) as pdf:
        assert [int(p.obj.get("/Rotate", 0)) % 360 for p in pdf.pages] == [0, 90, 0, 90, 0]
    again = run(tmp_path, only(result), action="rotate", angle=-180)
    with pikepdf.open(only(again)) as pdf:
        assert [int(p.obj.get("/Rotate", 0)) % 360 for p in pdf.pages] == [180, 270, 180, 270, 180]
    # pdfium reads a turned page's lines in another order (and breaks some words
    # differently), never other characters.
    assert [sorted(t.replace(" ", "")) for t in texts(only(again))] == [
        sorted(t.replace(" ", "")) for t in texts(ARTICLE)
    ]


def test_flatten_keeps_field_values_as_text_and_drops_the_form(tmp_path: Path) -> None:
    filled = tmp_path / "filled.pdf"
    with pikepdf.open(FORM) as pdf:
        pdf.Root.AcroForm.Fields[0].V = pikepdf.String("Jane Flattened")
        pdf.save(filled)
    result = run(tmp_path, filled, action="flatten")
    assert result.payload["form_fields"] == 3
    output = only(result)
    with pikepdf.open(output) as pdf:
        assert "/AcroForm" not in pdf.Root
        assert all("/Annots" not in page.obj for page in pdf.pages)
    assert "Jane Flattened" in texts(output)[0]
    form = pypdfium2.PdfDocument(str(output))
    try:
        form.init_forms()
        assert form.get_formtype() == 0  # FORMTYPE_NONE: no form left to fill
    finally:
        form.close()


def test_compress_makes_a_smaller_file_with_the_same_text(tmp_path: Path) -> None:
    lossless = run(tmp_path, REDBOOK, action="compress")
    assert lossless.payload["bytes_after"] < lossless.payload["bytes_before"]
    assert texts(only(lossless)) == texts(REDBOOK)
    lossy = run(tmp_path, REDBOOK, action="compress", max_image_dpi=100, image_quality=70)
    output = only(lossy)
    assert output.stat().st_size < 0.6 * REDBOOK.stat().st_size
    assert lossy.payload["images"]["resampled"] >= 1
    assert texts(output) == texts(REDBOOK)


def test_metadata_round_trip_keeps_info_and_xmp_in_step(tmp_path: Path) -> None:
    values = {
        "title": "Quarterly figures",
        "author": "Ada Lovelace",
        "subject": "Numbers",
        "keywords": "figures, quarter",
        "creation_date": "2024-05-01T10:00:00Z",
        "Department": "Finance",
    }
    written = run(tmp_path, ARTICLE, action="metadata", set_metadata=values)
    output = only(written)
    read = run(tmp_path, output, action="metadata").payload
    assert read["metadata"]["title"] == "Quarterly figures"
    assert read["metadata"]["author"] == "Ada Lovelace"
    assert read["metadata"]["creation_date"] == "2024-05-01T10:00:00+00:00"
    assert read["custom"] == {"Department": "Finance"}
    assert read["xmp"]["dc:title"] == "Quarterly figures"
    assert read["xmp"]["dc:creator"] == ["Ada Lovelace"]
    assert read["xmp"]["pdf:Keywords"] == "figures, quarter"
    assert read["xmp"]["pdfx:Department"] == "Finance"
    assert texts(output) == texts(ARTICLE)
    removed = run(tmp_path, output, action="metadata", set_metadata={"title": None})
    assert "title" not in run(tmp_path, only(removed), action="metadata").payload["metadata"]


def test_encrypt_with_passwords_and_permissions(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        ARTICLE,
        action="encrypt",
        user_password="reader",
        owner_password="boss",
        permissions=["print", "fill_forms"],
    )
    output = only(result)
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(output)
    with pikepdf.open(output, password="reader") as pdf:
        assert pdf.encryption.R == 6 and pdf.encryption.bits == 256
        assert pdf.allow.print_lowres and pdf.allow.modify_form
        assert not pdf.allow.extract and not pdf.allow.modify_other
        assert not pdf.owner_password_matched
    with pikepdf.open(output, password="boss") as pdf:
        assert pdf.owner_password_matched
    assert texts(output, "reader") == texts(ARTICLE)
    decrypted = run(tmp_path, output, action="decrypt", password="boss")
    with pikepdf.open(only(decrypted)) as pdf:
        assert not pdf.is_encrypted
    assert decrypted.payload["encryption"]["permissions"]["copy"] is False


def test_decrypt_needs_the_password(tmp_path: Path) -> None:
    with pytest.raises(PasswordRequired) as missing:
        run(tmp_path, ENCRYPTED, action="decrypt")
    assert not isinstance(missing.value, WrongPassword)
    with pytest.raises(WrongPassword):
        run(tmp_path, ENCRYPTED, action="decrypt", password="nope")
    output = only(run(tmp_path, ENCRYPTED, action="decrypt", password="1234"))
    assert texts(output) == texts(ENCRYPTED, "1234")


def test_changes_in_place_keep_the_encryption(tmp_path: Path) -> None:
    rotated = only(run(tmp_path, ENCRYPTED, action="rotate", angle=90, password="1234"))
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(rotated)
    with pikepdf.open(rotated, password="1234") as pdf:
        assert int(pdf.pages[0].obj.Rotate) == 90
        assert not pdf.allow.print_lowres and not pdf.allow.extract
    with pikepdf.open(rotated, password="owner") as pdf:
        assert pdf.owner_password_matched
    pages = only(run(tmp_path, ENCRYPTED, action="extract_pages", pages="1", password="1234"))
    with pikepdf.open(pages) as pdf:
        assert not pdf.is_encrypted


def test_merge_keeps_pages_in_upload_order(tmp_path: Path) -> None:
    result = run(tmp_path, MINIMAL, (ARTICLE, MINIMAL), action="merge")
    expected = texts(MINIMAL) + texts(ARTICLE) + texts(MINIMAL)
    assert texts(only(result)) == expected
    assert [i["pages"] for i in result.payload["inputs"]] == [1, 5, 1]


def test_merge_keeps_form_fields_fillable(tmp_path: Path) -> None:
    result = run(tmp_path, FORM, (FORM,), action="merge")
    assert result.payload["fields_added"] == 6 and result.payload["fields_renamed"] == 3
    with pikepdf.open(only(result)) as pdf:
        names = sorted(str(field.T) for field in pdf.Root.AcroForm.Fields)
        widgets = [annot for page in pdf.pages for annot in page.obj.get("/Annots", [])]
    assert names == ["Check", "Check+1", "Name", "Name+1", "Submit", "Submit+1"]
    assert len(widgets) == 6


def test_attach_embeds_the_files_byte_for_byte(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"first line\nsecond line\n")
    result = run(tmp_path, ARTICLE, (notes, MINIMAL), action="attach", descriptions=["Notes"])
    with pikepdf.open(only(result)) as pdf:
        assert set(pdf.attachments) == {"notes.txt", "minimal-document.pdf"}
        assert pdf.attachments["notes.txt"].get_file().read_bytes() == notes.read_bytes()
        assert pdf.attachments["notes.txt"].description == "Notes"
        embedded = pdf.attachments["minimal-document.pdf"].get_file().read_bytes()
        assert embedded == MINIMAL.read_bytes()
    assert texts(only(result)) == texts(ARTICLE)
    listed = {item["name"]: item["size"] for item in result.payload["attachments"]}
    assert listed == {"notes.txt": 23, "minimal-document.pdf": MINIMAL.stat().st_size}


def test_attach_beside_an_existing_attachment(tmp_path: Path) -> None:
    image = tmp_path / "image.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = run(tmp_path, ATTACHED, (image,), action="attach")
    assert result.payload["attached"][0]["name"] == "image (2).png"
    sizes = {item["name"]: item["size"] for item in result.payload["attachments"]}
    assert sizes == {"image.png": 6669, "image (2).png": image.stat().st_size}


@pytest.mark.parametrize("level", ["1b", "2b", "3b"])
def test_pdfa_passes_the_validator_on_the_bytes_written(tmp_path: Path, level: str) -> None:
    result = run(tmp_path, LATEX, action="pdfa", level=level)
    output = only(result)
    assert result.payload["pdfa"]["verdict"] == "pass"
    assert pikepdf.pdfa.validate_written(output, level).passed
    with pikepdf.open(output) as pdf:
        assert pdf.pdf_version == "1.4" if level == "1b" else pdf.pdf_version <= "1.7"
        intent = pdf.Root.OutputIntents[0]
        assert intent.S == pikepdf.Name.GTS_PDFA1 and intent.DestOutputProfile.N == 3
        assert pdf.open_metadata().pdfa_status == level.upper()
    assert texts(output) == texts(LATEX)


def test_pdfa_refuses_what_the_validator_does_not_pass_unless_told(tmp_path: Path) -> None:
    with pytest.raises(ProcessingFailed) as refused:
        run(tmp_path, ARTICLE, action="pdfa", level="2b")  # shadings: not checked
    assert refused.value.fields["verdict"] == "not_checked"
    assert refused.value.fields["findings"][0]["rule"]
    lenient = run(tmp_path, SCANNED, action="pdfa", level="1b", strict=False)
    assert lenient.payload["pdfa"]["verdict"] == "fail"
    assert any("transparency" in f["message"] for f in lenient.payload["pdfa"]["findings"])
    assert texts(only(lenient)) == texts(SCANNED)
    with pytest.raises(ProcessingFailed, match="forms"):
        run(tmp_path, FORM, action="pdfa")
    flattened = run(tmp_path, FORM, action="pdfa", flatten=True, strict=False)
    # What is left is the form's standard fonts, which are not embedded.
    messages = [f["message"] for f in flattened.payload["pdfa"]["findings"]]
    assert messages and all("not embedded" in message for message in messages)
    with pikepdf.open(only(flattened)) as pdf:
        assert "/AcroForm" not in pdf.Root
    # PDF/A-2 forbids embedded files it cannot check: they go, and the result says so.
    cleaned = run(tmp_path, ATTACHED, action="pdfa", level="2b")
    assert cleaned.payload["pdfa"]["verdict"] == "pass"
    assert any("embedded file" in r for r in cleaned.payload["pdfa"]["removed"])
    # PDF/A-3 keeps them, as associated files.
    kept = only(run(tmp_path, ATTACHED, action="pdfa", level="3b"))
    with pikepdf.open(kept) as pdf:
        assert len(pdf.attachments) == 1 and len(pdf.Root.AF) == 1
    assert pikepdf.pdfa.validate_written(kept, "3b").passed


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"action": "split"}, "ranges"),
        ({"action": "split", "ranges": "1", "every": 2}, "ranges"),
        ({"action": "rotate"}, "angle"),
        ({"action": "rotate", "angle": 45}, "angle"),
        ({"action": "flatten", "angle": 90}, "angle"),
        ({"action": "extract_pages", "pages": "x"}, "pages"),
        ({"action": "encrypt"}, "user_password"),
        ({"action": "encrypt", "user_password": "a", "permissions": ["fly"]}, "permissions.0"),
        ({"action": "metadata", "set_metadata": {"bad key": "x"}}, "set_metadata.bad key"),
        (
            {"action": "metadata", "set_metadata": {"creation_date": "May"}},
            "set_metadata.creation_date",
        ),
        ({"action": "shred"}, "action"),
    ],
)
def test_parameters_are_checked_per_action(params: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        validate_params(OPERATION, params)
    assert caught.value.fields["parameter"] == name


def test_secrets_are_sealed_and_not_shown() -> None:
    params = validate_params(
        OPERATION, {"action": "encrypt", "user_password": "u-secret", "owner_password": "o"}
    )
    keys = SecretKeys([new_key()])
    stored = dump_params(params, keys)
    assert "u-secret" not in json.dumps(stored)
    assert keys.open(stored["user_password"]) == "u-secret"
    shown = public_params("pdf", stored)
    assert shown["user_password"] == shown["owner_password"] == "********"
    assert shown["action"] == "encrypt"


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat):
        run(tmp_path, CORPUS / "office/encrypted.odt", action="flatten")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n")
    with pytest.raises(CorruptDocument) as corrupt:
        run(tmp_path, broken, action="flatten")
    assert str(broken) not in corrupt.value.detail
    with pytest.raises(InvalidParameter, match="names no page"):
        run(tmp_path, MINIMAL, action="split", ranges="2-3")
    with pytest.raises(InvalidParameter, match="merge needs"):
        run(tmp_path, MINIMAL, action="merge")
    with pytest.raises(InvalidParameter, match="2 descriptions for 1 attachment"):
        run(tmp_path, MINIMAL, (MINIMAL,), action="attach", descriptions=["a", "b"])
    with pytest.raises(InvalidParameter, match="takes one file"):
        run(tmp_path, MINIMAL, (MINIMAL,), action="flatten")


def test_limits_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(pdf=PdfToolSettings(max_pages=4, max_inputs=2, max_outputs=2))
    with pytest.raises(LimitExceeded):
        run(tmp_path, ARTICLE, settings=settings, action="flatten")
    with pytest.raises(LimitExceeded):
        run(tmp_path, MINIMAL, (MINIMAL, MINIMAL), settings=settings, action="merge")
    small = Settings(pdf=PdfToolSettings(max_outputs=2))
    with pytest.raises(LimitExceeded):
        run(tmp_path, ARTICLE, settings=small, action="split", every=1)
    tiny = Settings(pdf=PdfToolSettings(max_input_bytes=20_000))
    with pytest.raises(PayloadTooLarge):
        run(tmp_path, ARTICLE, settings=tiny, action="flatten")
    with pytest.raises(PayloadTooLarge):  # the attachment is the large one
        run(tmp_path, MINIMAL, (ARTICLE,), settings=tiny, action="attach")
