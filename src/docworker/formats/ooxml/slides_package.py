"""The parts of a PowerPoint package the slides are read from, straight from the zip.

Only what the slides need is parsed: the presentation part (slide order, slide
size), each slide, and, when a slide asks for them, its layout, master and notes.
Placeholders inherit their position from the layout placeholder with the same
``idx``, which inherits from the master placeholder of the matching type, as
PowerPoint (and python-pptx) resolve them. Slide parts are named by their place
in the presentation (``ppt/slides/slide<N>.xml``) wherever a part name is shown,
as python-pptx names them.
"""

from __future__ import annotations

import posixpath
import zipfile

from lxml import etree

from docworker.formats.ooxml.package import drop_entity_references, relationships, resolve_target

_RT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
OFFICE_DOCUMENT = f"{_RT}officeDocument"
SLIDE_LAYOUT = f"{_RT}slideLayout"
SLIDE_MASTER = f"{_RT}slideMaster"
NOTES_SLIDE = f"{_RT}notesSlide"
_PRESENTATION_TYPES = (
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml",
)
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"
P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
#: The elements of a shape tree that are shapes.
SHAPE_TAGS = frozenset(
    f"{P}{name}" for name in ("sp", "grpSp", "graphicFrame", "cxnSp", "pic", "contentPart")
)
#: The placeholder types a file may name (``p:ph/@type``).
PLACEHOLDER_TYPES = frozenset(
    {
        "clipArt", "body", "ctrTitle", "chart", "dt", "ftr", "hdr", "media", "obj", "dgm",
        "pic", "sldImg", "sldNum", "subTitle", "tbl", "title",
    }
)  # fmt: skip
#: The master placeholder a layout placeholder of each type takes its place from.
_MASTER_TYPE = {
    "body": "body", "chart": "body", "clipArt": "body", "ctrTitle": "title", "dgm": "body",
    "dt": "dt", "ftr": "ftr", "media": "body", "obj": "body", "pic": "body", "sldNum": "sldNum",
    "subTitle": "body", "tbl": "body", "title": "title",
}  # fmt: skip
_UNITS = {"mm": 36000, "cm": 360000, "in": 914400, "pt": 12700, "pc": 152400, "pi": 152400}
_PARSER = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)


class Part:
    """One XML part: its name (no leading slash), its root and its relationships."""

    def __init__(self, zf: zipfile.ZipFile, name: str) -> None:
        self.name = name
        self.root = drop_entity_references(etree.fromstring(zf.read(name), _PARSER))
        #: id → (type, target part name, or URL for an external target).
        self.rels: dict[str, tuple[str, str]] = {}
        #: The ids of the relationships whose target is external.
        self.external: set[str] = set()
        folder, base = posixpath.split(name)
        rels_name = posixpath.join(folder, "_rels", f"{base}.rels")
        if rels_name in zf.NameToInfo:
            for rel in etree.fromstring(zf.read(rels_name), _PARSER).iter(_REL):
                rel_id, target = rel.get("Id", ""), rel.get("Target", "")
                if rel.get("TargetMode") == "External":
                    self.external.add(rel_id)
                else:
                    self.external.discard(rel_id)
                    target = resolve_target(folder, target)
                self.rels[rel_id] = (rel.get("Type", ""), target)
        self._placeholders: list[tuple[etree._Element, etree._Element]] | None = None

    def related(self, rel_type: str) -> str:
        """The part name of the one relationship of ``rel_type``; KeyError without one."""
        found = [target for kind, target in self.rels.values() if kind == rel_type]
        if not found:
            raise KeyError(f"no relationship of type '{rel_type}' in collection")
        if len(found) > 1:
            raise ValueError(f"multiple relationships of type '{rel_type}' in collection")
        return found[0]

    def shapes(self) -> list[etree._Element]:
        """The shapes of the part's shape tree (``p:cSld/p:spTree``), in document order."""
        return shape_children(_required(_required(self.root, f"{P}cSld"), f"{P}spTree"))

    def placeholders(self) -> list[tuple[etree._Element, etree._Element]]:
        """(shape, ``p:ph``) of each placeholder in the shape tree, in document order."""
        if self._placeholders is None:
            found = []
            for shape in self.shapes():
                ph = placeholder(shape)
                if ph is not None:
                    found.append((shape, ph))
            self._placeholders = found
        return self._placeholders

    def placeholder_at(self, idx: int) -> etree._Element | None:
        """The first placeholder numbered ``idx``."""
        return next(
            (shape for shape, ph in self.placeholders() if placeholder_idx(ph) == idx), None
        )

    def placeholder_of(self, kind: str) -> etree._Element | None:
        """The first placeholder of type ``kind``."""
        return next(
            (shape for shape, ph in self.placeholders() if placeholder_type(ph) == kind), None
        )


class Package:
    """An open PowerPoint package: its presentation part and the parts read from it."""

    def __init__(self, zf: zipfile.ZipFile, path: str) -> None:
        self.zf = zf
        targets = [t for kind, t in relationships(zf, "").values() if kind == OFFICE_DOCUMENT]
        if not targets:
            raise KeyError(f"no relationship of type '{OFFICE_DOCUMENT}' in collection")
        content_type = _content_type(zf, targets[0])
        if content_type not in _PRESENTATION_TYPES:
            raise ValueError(
                f"file '{path}' is not a PowerPoint file, content type is '{content_type}'"
            )
        self._parts: dict[str, Part] = {}
        self.presentation = self.part(targets[0])
        ids = self.presentation.root.find(f"{P}sldIdLst")
        slide_ids = [] if ids is None else ids.findall(f"{P}sldId")
        #: The slide parts in presentation order.
        self.slides = [self.presentation.rels[s.get(R_ID, "")][1] for s in slide_ids]
        #: The name python-pptx gives each slide part: its place in the presentation.
        self.shown_names = {
            name: f"ppt/slides/slide{n}.xml" for n, name in enumerate(self.slides, 1)
        }

    def part(self, name: str) -> Part:
        part = self._parts.get(name)
        if part is None:
            part = self._parts[name] = Part(self.zf, name)
        return part

    def related(self, part: Part, rel_type: str) -> Part:
        return self.part(part.related(rel_type))

    def slide_size(self) -> tuple[int | None, int | None]:
        size = self.presentation.root.find(f"{P}sldSz")
        if size is None:
            return None, None
        return int(size.get("cx")), int(size.get("cy"))  # type: ignore[arg-type]

    def target_ref(self, part: Part, rel_id: str) -> str:
        """A relationship's target as python-pptx shows it: a URL, else a relative part name."""
        _, target = part.rels[rel_id]
        if rel_id in part.external:
            return target
        target = self.shown_names.get(target, target)
        base = posixpath.dirname("/" + self.shown_names.get(part.name, part.name))
        return posixpath.relpath("/" + target, base) if base != "/" else target


def shape_children(tree: etree._Element) -> list[etree._Element]:
    return [e for e in tree if e.tag in SHAPE_TAGS]


def placeholder(shape: etree._Element) -> etree._Element | None:
    """The ``p:ph`` of a shape (under its first child's ``p:nvPr``), else None."""
    first = next((e for e in shape if isinstance(e.tag, str)), None)
    if first is None:
        return None
    for props in first.iterchildren(f"{P}nvPr"):
        for ph in props.iterchildren(f"{P}ph"):
            return ph
    return None


def placeholder_type(ph: etree._Element) -> str:
    value = ph.get("type")
    if value is None:
        return "obj"
    if value not in PLACEHOLDER_TYPES:
        raise ValueError(f"placeholder type {value!r} not recognized")
    return value


def master_type(ph: etree._Element) -> str:
    """The type of the master placeholder a layout placeholder takes its place from."""
    return _MASTER_TYPE[placeholder_type(ph)]


def placeholder_idx(ph: etree._Element) -> int:
    value = ph.get("idx")
    return 0 if value is None else int(value)


def _required(element: etree._Element, tag: str) -> etree._Element:
    found = element.find(tag)
    if found is None:
        raise ValueError(f"required {tag} child element not present")
    return found


def own_geometry(shape: etree._Element) -> tuple[int | None, int | None, int | None, int | None]:
    """(left, top, width, height) set on the shape itself, in EMU; None where not set."""
    tag = shape.tag
    if tag == f"{P}graphicFrame":
        xfrm: etree._Element | None = _required(shape, f"{P}xfrm")
    elif tag == f"{P}grpSp":
        xfrm = _required(shape, f"{P}grpSpPr").find(f"{A}xfrm")
    elif tag == f"{P}contentPart":
        return None, None, None, None
    else:
        xfrm = _required(shape, f"{P}spPr").find(f"{A}xfrm")
    if xfrm is None:
        return None, None, None, None
    off, ext = xfrm.find(f"{A}off"), xfrm.find(f"{A}ext")
    left = top = width = height = None
    if off is not None:
        left, top = _coordinate(off.get("x")), _coordinate(off.get("y"))
    if ext is not None:
        width, height = int(ext.get("cx")), int(ext.get("cy"))  # type: ignore[arg-type]
    return left, top, width, height


def _coordinate(value: str | None) -> int:
    if value is None:
        raise ValueError("required coordinate attribute not present")
    if "i" in value or "m" in value or "p" in value:
        return round(float(value[:-2]) * _UNITS[value[-2:]])
    return int(value)


def _content_type(zf: zipfile.ZipFile, name: str) -> str:
    root = etree.fromstring(zf.read("[Content_Types].xml"), _PARSER)
    wanted = "/" + name.lower()
    for override in root.iter(f"{_CT}Override"):
        if override.get("PartName", "").lower() == wanted:
            return override.get("ContentType", "")
    extension = posixpath.splitext(name)[1].lstrip(".").lower()
    for default in root.iter(f"{_CT}Default"):
        if default.get("Extension", "").lower() == extension:
            return default.get("ContentType", "")
    raise KeyError(f"no content-type for partname '/{name}' in [Content_Types].xml")
