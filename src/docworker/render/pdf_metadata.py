"""A PDF's metadata read and written (Info dictionary and XMP kept in step), and PDF/A.

Metadata is written to the document information dictionary and copied into the XMP
packet through pikepdf's mapping (title → dc:title, author → dc:creator, …), so
readers of either see the same values; custom keys go to the Info dictionary and to
XMP under Adobe's ``pdfx`` namespace, as Acrobat stores custom properties.

:func:`make_pdfa` turns a PDF into one that *declares* PDF/A-1b, 2b or 3b and carries
what those levels require of the document's structure: an sRGB output intent (the
profile made by Little CMS through Pillow), XMP with the ``pdfaid`` identification in
step with the Info dictionary, no encryption, no JavaScript, the embedded files each
level allows, and a file version the level permits. It does not redraw content: fonts
that are not embedded and (for 1b) transparency stay as they are and are reported as
problems, so the output conforms only when ``problems`` is empty — and even then
only a validator (veraPDF) can say so for certain.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pikepdf
from pikepdf.models.metadata import decode_pdf_date, encode_pdf_date
from PIL import ImageCms

from docworker.errors import InvalidParameter

#: Metadata names → the Info dictionary keys they are written to.
STANDARD_KEYS: dict[str, str] = {
    "title": "/Title",
    "author": "/Author",
    "subject": "/Subject",
    "keywords": "/Keywords",
    "creator": "/Creator",
    "producer": "/Producer",
    "creation_date": "/CreationDate",
    "modification_date": "/ModDate",
}
_DATE_KEYS = {"/CreationDate", "/ModDate"}
_CUSTOM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
PDFA_LEVELS = ("1b", "2b", "3b")


def read_metadata(pdf: pikepdf.Pdf) -> dict[str, Any]:
    """The document's metadata as JSON: ``metadata`` (the standard fields by name, dates in
    ISO 8601), ``custom`` (other Info keys), ``xmp`` (every XMP property) and ``pdfa``
    (the PDF/A part and conformance the document declares, if any)."""
    info = {str(key)[1:]: _info_value(str(key), value) for key, value in pdf.docinfo.items()}
    standard = {name: info.get(key[1:]) for name, key in STANDARD_KEYS.items() if key[1:] in info}
    custom = {key: value for key, value in info.items() if f"/{key}" not in _STANDARD_INFO}
    meta = pdf.open_metadata()
    xmp = {_short_name(str(key)): _xmp_value(value) for key, value in meta.items()}
    part = xmp.get("pdfaid:part")
    conformance = xmp.get("pdfaid:conformance")
    return {
        "metadata": standard,
        "custom": custom,
        "xmp": xmp,
        "pdfa": f"{part}{str(conformance or '').lower()}" if part else None,
    }


_STANDARD_INFO = set(STANDARD_KEYS.values())
#: XMP namespaces shown by their usual prefix ('dc:title'); others keep '{uri}name'.
_PREFIXES = {
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/pdf/1.3/": "pdf",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/pdfx/1.3/": "pdfx",
    "http://www.aiim.org/pdfa/ns/id/": "pdfaid",
    "http://www.aiim.org/pdfua/ns/id/": "pdfuaid",
}


def _short_name(qualified: str) -> str:
    uri, _, name = qualified[1:].partition("}")
    prefix = _PREFIXES.get(uri)
    return f"{prefix}:{name}" if prefix and qualified.startswith("{") else qualified


def _info_value(key: str, value: Any) -> Any:
    text = str(value)
    if key in _DATE_KEYS:
        try:
            return decode_pdf_date(text).isoformat()
        except ValueError:
            return text
    return text


def _xmp_value(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(str(v) for v in value)
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


def check_metadata(values: dict[str, str | None]) -> None:
    """Refuse names that are neither standard nor usable as custom keys, and dates
    that are not ISO 8601 (:class:`InvalidParameter` names the key)."""
    for name, value in values.items():
        if name in STANDARD_KEYS:
            if STANDARD_KEYS[name] in _DATE_KEYS and value is not None:
                _parse_date(name, value)
        elif not _CUSTOM_KEY.match(name):
            raise InvalidParameter(
                f"set_metadata.{name}",
                "a custom key is a letter then up to 63 letters, digits, '_', '.' or '-'",
            )


def _parse_date(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(
            f"set_metadata.{name}", f"'{value}' is not an ISO 8601 date and time"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def write_metadata(pdf: pikepdf.Pdf, values: dict[str, str | None]) -> None:
    """Set (or, with None, remove) metadata: the standard names of :data:`STANDARD_KEYS`
    and custom keys, in the Info dictionary and the XMP packet alike."""
    check_metadata(values)
    docinfo = pdf.docinfo
    for name, value in values.items():
        key = STANDARD_KEYS.get(name, f"/{name}")
        if value is None:
            if key in docinfo:
                del docinfo[key]
        elif key in _DATE_KEYS:
            docinfo[key] = pikepdf.String(encode_pdf_date(_parse_date(name, value)))
        else:
            docinfo[key] = pikepdf.String(value)
    sync_xmp(pdf, {name: value for name, value in values.items() if name not in STANDARD_KEYS})


def sync_xmp(pdf: pikepdf.Pdf, custom: dict[str, str | None], **extra: str) -> None:
    """Bring the XMP packet in line with the Info dictionary's standard keys, set or
    remove ``custom`` keys under ``pdfx:``, and set ``extra`` properties (``pdfaid:part``)."""
    standard = {key: str(value) for key, value in pdf.docinfo.items() if str(key) in _STANDARD_INFO}
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        meta.load_from_docinfo(standard, delete_missing=True, raise_failure=False)
        for name, value in custom.items():
            key = f"pdfx:{name}"
            if value is None:
                if key in meta:
                    del meta[key]
            else:
                meta[key] = value
        for key, value in extra.items():
            meta[key.replace("_", ":", 1)] = value


def make_pdfa(pdf: pikepdf.Pdf, level: str) -> list[str]:
    """Give ``pdf`` what PDF/A-``level`` asks of its structure (see the module notes);
    returns the problems left that keep it from conforming (empty: none found)."""
    part = level[0]
    problems = [f"font '{name}' is not embedded" for name in fonts_not_embedded(pdf)]
    _remove_javascript(pdf)
    problems += _embedded_files_for(pdf, part)
    if part == "1" and _has_transparency(pdf):
        problems.append("the pages use transparency, which PDF/A-1 forbids")
    _add_output_intent(pdf)
    if "/CreationDate" not in pdf.docinfo:
        pdf.docinfo["/CreationDate"] = pikepdf.String(encode_pdf_date(datetime.now(UTC)))
    sync_xmp(pdf, {}, pdfaid_part=part, pdfaid_conformance="B")
    return problems


def pdfa_save_options(level: str) -> dict[str, Any]:
    """Save options for the level: PDF/A-1 is PDF 1.4 (no object or cross-reference
    streams); PDF/A-2 and 3 are PDF 1.7."""
    if level.startswith("1"):
        return {
            "force_version": "1.4",
            "object_stream_mode": pikepdf.ObjectStreamMode.disable,
            "fix_metadata_version": True,
        }
    return {"force_version": "1.7", "fix_metadata_version": True}


def _add_output_intent(pdf: pikepdf.Pdf) -> None:
    for intent in pdf.Root.get("/OutputIntents", []):
        if intent.get("/S") == pikepdf.Name.GTS_PDFA1:
            return
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    stream = pdf.make_stream(profile)
    stream.N = 3
    intent = pikepdf.Dictionary(
        Type=pikepdf.Name.OutputIntent,
        S=pikepdf.Name.GTS_PDFA1,
        OutputConditionIdentifier=pikepdf.String("sRGB"),
        Info=pikepdf.String("sRGB IEC61966-2.1"),
        DestOutputProfile=stream,
    )
    intents = pdf.Root.get("/OutputIntents", pikepdf.Array())
    intents.append(pdf.make_indirect(intent))
    pdf.Root.OutputIntents = intents


def _remove_javascript(pdf: pikepdf.Pdf) -> None:
    names = pdf.Root.get("/Names")
    if names is not None and "/JavaScript" in names:
        del names["/JavaScript"]
    for key in ("/OpenAction", "/AA"):
        action = pdf.Root.get(key)
        if action is not None and (key == "/AA" or _is_script(action)):
            del pdf.Root[key]
    for page in pdf.pages:
        if "/AA" in page.obj:
            del page.obj["/AA"]


def _is_script(action: pikepdf.Object) -> bool:
    return isinstance(action, pikepdf.Dictionary) and action.get("/S") == pikepdf.Name.JavaScript


def _embedded_files_for(pdf: pikepdf.Pdf, part: str) -> list[str]:
    """PDF/A-1 forbids embedded files and PDF/A-2 allows only PDF/A ones: they are
    removed (and named); PDF/A-3 keeps them, marked as associated with the document."""
    names = list(pdf.attachments)
    if not names:
        return []
    if part == "3":
        associated = pikepdf.Array()
        for name in names:
            spec = pdf.attachments[name].obj
            spec.AFRelationship = pikepdf.Name.Unspecified
            associated.append(spec)
        pdf.Root.AF = associated
        return []
    for name in names:
        del pdf.attachments[name]
    return [f"embedded file '{name}' removed: PDF/A-{part} does not allow it" for name in names]


def _resources(pdf: pikepdf.Pdf) -> list[pikepdf.Object]:
    """The resource dictionaries of the pages and of the form XObjects they use."""
    found: list[pikepdf.Object] = []
    pending = [page.obj.get("/Resources") for page in pdf.pages]
    seen: set[tuple[int, int]] = set()
    while pending and len(found) < 10_000:
        resources = pending.pop()
        if not isinstance(resources, pikepdf.Dictionary):
            continue
        found.append(resources)
        for xobject in resources.get("/XObject", {}).values():
            if xobject.get("/Subtype") == pikepdf.Name.Form and xobject.objgen not in seen:
                seen.add(xobject.objgen)
                pending.append(xobject.get("/Resources"))
    return found


def fonts_not_embedded(pdf: pikepdf.Pdf) -> list[str]:
    """The base names of the fonts the pages use without their font program."""
    missing: set[str] = set()
    for resources in _resources(pdf):
        for font in resources.get("/Font", {}).values():
            if font.get("/Subtype") == pikepdf.Name.Type3:
                continue
            described = font
            if font.get("/Subtype") == pikepdf.Name.Type0 and font.get("/DescendantFonts"):
                described = font.DescendantFonts[0]
            descriptor = described.get("/FontDescriptor")
            if descriptor is None or not any(
                key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")
            ):
                missing.add(str(font.get("/BaseFont", "unnamed"))[1:] or "unnamed")
    return sorted(missing)


def _has_transparency(pdf: pikepdf.Pdf) -> bool:
    for resources in _resources(pdf):
        for state in resources.get("/ExtGState", {}).values():
            if "/SMask" in state and str(state.SMask) != "/None":
                return True
            if float(state.get("/CA", 1)) < 1 or float(state.get("/ca", 1)) < 1:
                return True
        for xobject in resources.get("/XObject", {}).values():
            if "/SMask" in xobject or "/Group" in xobject:
                return True
    return False
