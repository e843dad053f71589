"""PDF → PDF on pikepdf (qpdf): open, pick and rotate pages, merge, flatten forms,
encrypt and decrypt, attach files, and save.

Every function works on an open :class:`pikepdf.Pdf`; :func:`open_pdf` turns
pikepdf's errors into the service's (a missing or wrong password, a file that is
not a readable PDF), and :func:`save_pdf` writes the result. Compression lives in
:mod:`docworker.render.pdf_compress`, metadata and PDF/A in
:mod:`docworker.render.pdf_metadata`.
"""

from __future__ import annotations

import mimetypes
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import pikepdf

from docworker.errors import CorruptDocument, InvalidParameter, PasswordRequired, WrongPassword
from docworker.formats.base import PageSelection

#: Permission names (as :mod:`docworker.formats.pdf.metadata` reports them) → the
#: :class:`pikepdf.Permissions` flags they grant.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "print": ("print_lowres",),
    "print_high_quality": ("print_highres",),
    "modify": ("modify_other",),
    "copy": ("extract",),
    "annotate": ("modify_annotation",),
    "fill_forms": ("modify_form",),
    "extract_for_accessibility": ("accessibility",),
    "assemble": ("modify_assembly",),
}


def open_pdf(path: Path, password: str | None = None) -> pikepdf.Pdf:
    """The PDF at ``path``, opened with ``password`` when it is encrypted.

    Raises :class:`PasswordRequired` (no password given), :class:`WrongPassword` (the
    password does not open it) or :class:`CorruptDocument` (not a readable PDF)."""
    try:
        return pikepdf.open(path, password=password or "")
    except pikepdf.PasswordError as exc:
        raise (WrongPassword("pdf") if password else PasswordRequired("pdf")) from exc
    except (pikepdf.PdfError, ValueError, OSError) as exc:
        # qpdf names the file it read: a private temporary path the client never saw.
        reason = (str(exc).splitlines() or ["unreadable"])[0].replace(str(path), "file")
        raise CorruptDocument("pdf", reason) from exc


def save_pdf(
    pdf: pikepdf.Pdf,
    target: Path,
    *,
    encryption: pikepdf.Encryption | bool = False,
    **options: Any,
) -> None:
    """Write ``pdf`` to ``target``: unencrypted, or with ``encryption`` (True: the
    encryption it was opened with, passwords and permissions alike); ``options`` go to
    :meth:`pikepdf.Pdf.save` (object streams, stream recompression, version)."""
    try:
        pdf.save(target, encryption=encryption, **options)
    except pikepdf.PdfError as exc:
        raise CorruptDocument("pdf", f"it could not be written back: {exc}") from exc


def ordered_pages(spec: str, total: int, name: str = "pages") -> list[int]:
    """The pages ``spec`` names ('3,1-2,9-'), in the order written (duplicates kept);
    :class:`InvalidParameter` ``name`` when a part of it names no page of the document."""
    pages: list[int] = []
    for part in spec.split(","):
        selection = PageSelection.parse(part)
        chosen = selection.pages(total)
        if not chosen:
            raise InvalidParameter(
                name, f"'{part.strip()}' names no page of this {total}-page document"
            )
        pages.extend(chosen)
    return pages


def split_groups(total: int, ranges: str | None, every: int | None) -> list[list[int]]:
    """The page groups of a split: one per comma-separated range of ``ranges``
    ('1-3,4-6'), or runs of ``every`` pages (1: one file per page)."""
    if ranges:
        return [ordered_pages(part, total, "ranges") for part in ranges.split(",")]
    size = every or 1
    return [list(range(start, min(start + size, total + 1))) for start in range(1, total + 1, size)]


def copy_pages(
    source: pikepdf.Pdf, numbers: Sequence[int], *, bookmarks: bool = True
) -> pikepdf.Pdf:
    """A new PDF of ``source``'s pages ``numbers`` (1-based, in that order; a page may
    come twice), with its document information and what belongs to those pages:
    form fields, named destinations, layers and, with ``bookmarks``, the bookmarks that
    lead to them (pikepdf's ``add_pages_from``; it reads the whole outline each time,
    which a split into hundreds of parts cannot afford)."""
    out = pikepdf.new()
    outlines: Literal["preserve", "ignore"] = "preserve" if bookmarks else "ignore"
    out.add_pages_from(source, [number - 1 for number in numbers], outlines=outlines)
    _copy_info(source, out)
    return out


def _copy_info(source: pikepdf.Pdf, target: pikepdf.Pdf) -> None:
    if source.trailer.get("/Info") is not None:
        target.docinfo = cast(pikepdf.Dictionary, target.copy_foreign(source.docinfo))


def merge(pdfs: Sequence[pikepdf.Pdf]) -> tuple[pikepdf.Pdf, dict[str, Any]]:
    """One PDF of all the pages of ``pdfs``, in order, with the document information of
    the first; form fields, named destinations, layers and bookmarks come along (a
    field whose name is taken is renamed). Returns it and what was carried over."""
    out = pikepdf.new()
    carried = {"fields_added": 0, "fields_renamed": 0, "bookmarks_added": 0}
    for pdf in pdfs:
        copied = out.add_pages_from(pdf)
        carried["fields_added"] += copied.fields_added
        carried["fields_renamed"] += len(copied.renamed_fields)
        carried["bookmarks_added"] += copied.outline_items_added
    if pdfs:
        _copy_info(pdfs[0], out)
    return out, carried


def rotate(pdf: pikepdf.Pdf, numbers: Iterable[int], angle: int) -> None:
    """Turn pages ``numbers`` clockwise by ``angle`` (a multiple of 90) more than now."""
    for number in numbers:
        pdf.pages[number - 1].rotate(angle, relative=True)


def page_rotation(pdf: pikepdf.Pdf, number: int) -> int:
    """The page's /Rotate (inherited from its parents too), normalised to 0..270."""
    return int(pdf.pages[number - 1].obj.get("/Rotate", 0)) % 360


def flatten(pdf: pikepdf.Pdf) -> int:
    """Burn form fields and other annotations into the page content; returns how many
    form fields the document had. Appearances are made first for fields that have none
    (qpdf draws text and choice fields), so a filled field's value stays visible and
    extractable; the AcroForm goes, so nothing is left to fill."""
    acroform = pdf.Root.get("/AcroForm")
    count = len(acroform.get("/Fields", [])) if acroform is not None else 0
    if acroform is not None:
        pdf.generate_appearance_streams()
    pdf.flatten_annotations("all")
    if "/AcroForm" in pdf.Root:
        del pdf.Root["/AcroForm"]
    return count


def encryption(
    user_password: str | None, owner_password: str | None, permissions: Iterable[str] | None
) -> tuple[pikepdf.Encryption, bool]:
    """AES-256 encryption (PDF 2.0, revision 6) with the given passwords; ``permissions``
    lists what is allowed (None: everything). Without an owner password a random one is
    used, which nobody keeps: the restrictions can then never be lifted. Returns the
    settings and whether the owner password was made up."""
    allowed = set(PERMISSIONS) if permissions is None else set(permissions)
    flags = {flag: False for names in PERMISSIONS.values() for flag in names}
    for name in allowed:
        for flag in PERMISSIONS[name]:
            flags[flag] = True
    made_up = not owner_password
    owner = owner_password or secrets.token_urlsafe(24)
    return (
        pikepdf.Encryption(
            user=user_password or "", owner=owner, R=6, aes=True, allow=pikepdf.Permissions(**flags)
        ),
        made_up,
    )


def permissions_of(pdf: pikepdf.Pdf) -> dict[str, bool]:
    """What the PDF's encryption allows, by permission name (all true when unencrypted)."""
    allowed = pdf.allow
    return {
        name: all(getattr(allowed, flag) for flag in flags) for name, flags in PERMISSIONS.items()
    }


def encryption_info(pdf: pikepdf.Pdf) -> dict[str, Any] | None:
    """The PDF's encryption, as JSON (None when it has none)."""
    if not pdf.is_encrypted:
        return None
    info = pdf.encryption
    return {
        "revision": info.R,
        "bits": info.bits,
        "stream_method": str(info.stream_method.name),
        "permissions": permissions_of(pdf),
    }


@dataclass(frozen=True)
class Attachment:
    """A file to embed: its path, the name to show, and an optional description."""

    path: Path
    name: str
    description: str | None = None


def attach(pdf: pikepdf.Pdf, files: Sequence[Attachment]) -> list[dict[str, Any]]:
    """Embed ``files`` in the PDF (its EmbeddedFiles name tree); a name already taken gets
    a number ('notes (2).txt'). Returns what was attached: name, size and media type."""
    attached: list[dict[str, Any]] = []
    for item in files:
        name = _free_name(pdf, item.name)
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        spec = pikepdf.AttachedFileSpec.from_filepath(
            pdf, item.path, description=item.description or ""
        )
        spec.filename = name
        pdf.attachments[name] = spec
        attached.append({"name": name, "size": item.path.stat().st_size, "mime": mime})
    return attached


def _free_name(pdf: pikepdf.Pdf, name: str) -> str:
    if name not in pdf.attachments:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not stem:
        stem, dot, suffix = name, "", ""
    number = 2
    while (candidate := f"{stem} ({number}){dot}{suffix}") in pdf.attachments:
        number += 1
    return candidate


def list_attachments(pdf: pikepdf.Pdf) -> list[dict[str, Any]]:
    """The PDF's embedded files: name, size, media type and description."""
    listed: list[dict[str, Any]] = []
    for name, spec in pdf.attachments.items():
        stream = spec.get_file()
        listed.append(
            {
                "name": name,
                # /Params /Size is optional: without it, the bytes are counted.
                "size": stream.size or len(stream.read_bytes()),
                "mime": stream.mime_type or None,
                "description": spec.description or None,
            }
        )
    return listed
