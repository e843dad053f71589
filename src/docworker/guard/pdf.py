"""PDF findings: JavaScript, launch, submit-form and remote actions, embedded files, links.

Every object of the file is visited once (``pikepdf``'s list of all objects, with
the dictionaries and arrays written inside each), up to ``guard.max_pdf_objects``
and the scan's time budget, and never a stream's data. An object is first looked at
as qpdf writes it (a stream: its dictionary), names spelt out (``/J#53`` is ``/JS``):
one whose text names none of the keys and types below holds nothing to note, and is
not walked value by value (most of a file's objects: fonts' widths, destinations,
page trees; the walk cost ten times the look). Action dictionaries are
told by their ``/S`` type (``/JavaScript``, ``/Launch``, ``/SubmitForm``,
``/GoToR``, ``/GoToE``, ``/ImportData``, ``/URI``) or a ``/JS`` key, embedded files
by ``/EmbeddedFile`` streams, file specifications with ``/EF`` and file-attachment
annotations. JavaScript reached from ``/OpenAction``, the document's ``/JavaScript``
name tree or a page's open action is said to run when the document opens.

A PDF that pikepdf cannot open (damaged beyond repair, or encrypted with a password
the job does not give) has its raw bytes searched for the same names instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pikepdf

from docworker.config import FindingKind
from docworker.guard.findings import Budget, Finding, FindingSet, ScanLimit, quote
from docworker.guard.streams import file_chunks, iter_matches

#: How deep the dictionaries and arrays written inside one object are followed.
MAX_DEPTH = 12
#: Values looked at inside one object, at all depths (a long /Widths array ends here).
MAX_VALUES = 20_000
#: Actions followed along a /Next chain or down a name tree.
MAX_CHAIN = 1000

_ACTIONS = {
    "/Launch": (FindingKind.PDF_LAUNCH_ACTION, "a Launch action, which starts a program"),
    "/SubmitForm": (FindingKind.PDF_SUBMIT_FORM, "a SubmitForm action, which sends form data"),
    "/GoToR": (FindingKind.PDF_REMOTE_ACTION, "a GoToR action, which opens another file"),
    "/GoToE": (FindingKind.PDF_REMOTE_ACTION, "a GoToE action, which opens an embedded file"),
    "/ImportData": (FindingKind.PDF_REMOTE_ACTION, "an ImportData action, which reads a file"),
}
_DICTIONARY = pikepdf.ObjectType.dictionary
_STREAM = pikepdf.ObjectType.stream
_ARRAY = pikepdf.ObjectType.array
_NAME = pikepdf.ObjectType.name_


#: What reading a damaged object may raise (a name that is not UTF-8, a broken key).
_OBJECT_ERRORS = (pikepdf.PdfError, TypeError, ValueError, KeyError, RuntimeError)


def _code(value: Any) -> Any:
    """A value's pikepdf type (numbers and booleans come back as Python values: None)."""
    return value._type_code if isinstance(value, pikepdf.Object) else None


def _name(value: Any) -> str | None:
    """A PDF name as text (``/JavaScript``); None for anything else, or a name that is
    not UTF-8 (no name the scan looks for is)."""
    if _code(value) != _NAME:
        return None
    try:
        return str(value)
    except UnicodeDecodeError:
        return None


def check_pdf(found: FindingSet, path: Path, budget: Budget, max_objects: int) -> None:
    """Note the actions and embedded files of the PDF at ``path``."""
    try:
        pdf = pikepdf.open(path, suppress_warnings=True)
    except pikepdf.PasswordError:
        _raw(found, path, budget, "the PDF is encrypted with a password")
        return
    except pikepdf.PdfError:
        _raw(found, path, budget, "the PDF could not be parsed")
        return
    with pdf:
        try:
            on_open = _on_open(pdf)
        except (*_OBJECT_ERRORS, IndexError):
            on_open = set()  # a damaged catalog or page tree: the walk below still runs
        walker = _Walker(found, on_open)
        unreadable = 0
        for count, obj in enumerate(pdf.objects):
            if count >= max_objects:
                raise ScanLimit(f"the scan stopped at its limit of {max_objects} PDF objects")
            if count % 256 == 0:
                budget.check()
            try:
                code = _code(obj)
                if code in (_DICTIONARY, _STREAM, _ARRAY) and _names_a_finding(obj, code):
                    walker.visit_object(obj)
            except _OBJECT_ERRORS:
                unreadable += 1  # a damaged object; the others are still visited
        walker.finish()
    if unreadable:
        found.note(
            FindingKind.SCAN_ERROR, f"{unreadable} damaged PDF object(s) could not be read", "pdf"
        )


#: The names :class:`_Walker` notes objects by, as they appear in an object's written
#: form (a name merely starting so, or one in a string, only costs a walk).
_FINDING_NAMES = re.compile(
    rb"/(?:JS|JavaScript|Launch|SubmitForm|GoToR|GoToE|ImportData|URI|EmbeddedFile|EF"
    rb"|FileAttachment)"
)


def _names_a_finding(obj: Any, code: Any) -> bool:
    """Whether the object, with what is written inside it, names any key or type the
    walk looks for (the module); a stream by its dictionary."""
    written = (obj.stream_dict if code == _STREAM else obj).unparse(resolved=True)
    return _FINDING_NAMES.search(written) is not None


def _location(obj: Any, container: Any) -> str:
    """``object N``: the indirect object that holds ``obj`` (or is it)."""
    holder = obj if obj.is_indirect else container
    return f"object {holder.objgen[0]}"


def _on_open(pdf: pikepdf.Pdf) -> set[str]:
    """Locations of the actions that run when the document or a page opens."""
    root = pdf.Root
    starts: list[tuple[Any, Any]] = []
    if "/OpenAction" in root:
        starts.append((root.OpenAction, root))
    names = root.get("/Names")
    if names is not None and _code(names) == _DICTIONARY and "/JavaScript" in names:
        starts.extend(_name_tree_values(names.JavaScript, root))
    for page in pdf.pages[:MAX_CHAIN]:
        actions = page.obj.get("/AA")
        if actions is not None and _code(actions) == _DICTIONARY and "/O" in actions:
            starts.append((actions.O, page.obj))
    found: set[str] = set()
    for action, holder in starts:
        for step in _chain(action):
            if _code(step) == _DICTIONARY:
                found.add(_location(step, holder))
    return found


def _chain(action: Any) -> Iterator[Any]:
    """An action and the actions its /Next entries run after it, bounded."""
    pending, seen = [action], 0
    while pending and seen < MAX_CHAIN:
        step = pending.pop()
        seen += 1
        yield step
        if _code(step) != _DICTIONARY:
            continue
        following = step.get("/Next")
        if following is None:
            continue
        if _code(following) == _ARRAY:
            pending.extend(following)
        else:
            pending.append(following)


def _name_tree_values(node: Any, holder: Any) -> Iterator[tuple[Any, Any]]:
    """The values of a name tree (``/Names`` pairs and ``/Kids``), bounded, each with
    the indirect object that holds it."""
    pending, seen = [(node, holder)], 0
    while pending and seen < MAX_CHAIN:
        current, outer = pending.pop()
        seen += 1
        if _code(current) != _DICTIONARY:
            continue
        inner = current if current.is_indirect else outer
        pairs = current.get("/Names")
        if _code(pairs) == _ARRAY:
            yield from ((value, inner) for value in list(pairs)[1::2])
        kids = current.get("/Kids")
        if _code(kids) == _ARRAY:
            pending.extend((kid, inner) for kid in kids)


class _Walker:
    """Visits each object's dictionaries and notes what they are."""

    def __init__(self, found: FindingSet, on_open: set[str]) -> None:
        self.found = found
        self.on_open = on_open
        self.links = 0
        self.link_examples: list[str] = []
        self.link_locations: list[str] = []
        #: Embedded file streams, and the file specifications that name them.
        self.file_streams: list[str] = []
        self.file_specs = 0

    def visit_object(self, obj: Any) -> None:
        budget = [MAX_VALUES]
        self._visit(obj, obj, 0, budget)

    def _visit(self, obj: Any, container: Any, depth: int, budget: list[int]) -> None:
        code = _code(obj)
        if code in (_DICTIONARY, _STREAM):
            self._inspect(obj, container)
            values: Any = (obj.get(key) for key in obj.keys())  # noqa: SIM118 - a PDF dictionary, not a dict
        elif code == _ARRAY:
            values = iter(obj)
        else:
            return
        if depth >= MAX_DEPTH:
            return
        for value in values:
            budget[0] -= 1
            if budget[0] <= 0:
                return
            if _code(value) in (_DICTIONARY, _ARRAY) and not value.is_indirect:
                self._visit(value, container, depth + 1, budget)

    def _inspect(self, d: Any, container: Any) -> None:
        action_name = _name(d.get("/S"))
        where = _location(d, container)
        if action_name == "/JavaScript" or "/JS" in d:
            detail = (
                "JavaScript that runs when the document or a page opens"
                if where in self.on_open
                else "JavaScript"
            )
            self.found.note(FindingKind.PDF_JAVASCRIPT, detail, where)
        if action_name in _ACTIONS:
            kind, detail = _ACTIONS[action_name]
            self.found.note(kind, detail + self._target(d), where)
        elif action_name == "/URI":
            self.links += 1
            if len(self.link_examples) < 3:
                self.link_examples.append(quote(_text(d.get("/URI"))))
            if where not in self.link_locations and len(self.link_locations) < 5:
                self.link_locations.append(where)
        self._embedded(d, where)

    def _embedded(self, d: Any, where: str) -> None:
        if _name(d.get("/Type")) == "/EmbeddedFile":
            self.file_streams.append(where)
        elif "/EF" in d:
            self.file_specs += 1
            name = _text(d.get("/UF") or d.get("/F"))
            self.found.note(
                FindingKind.PDF_EMBEDDED_FILE,
                f"a file specification with an embedded file '{quote(name)}'",
                where,
            )
        elif _name(d.get("/Subtype")) == "/FileAttachment":
            self.found.note(FindingKind.PDF_EMBEDDED_FILE, "a file attachment annotation", where)

    @staticmethod
    def _target(d: Any) -> str:
        target = d.get("/F") or d.get("/Win") or d.get("/URL")
        if target is None:
            return ""
        if _code(target) == _DICTIONARY:
            target = target.get("/UF") or target.get("/F") or target.get("/URL")
        return f": {quote(_text(target))}" if target is not None else ""

    def finish(self) -> None:
        # Embedded file streams that no file specification names are files all the same.
        for where in self.file_streams[self.file_specs :]:
            self.found.note(FindingKind.PDF_EMBEDDED_FILE, "an embedded file stream", where)
        if self.links:
            shown = "; ".join(self.link_examples) + (" …" if self.links > 3 else "")
            more = len(self.link_locations) == 5 and self.links > 5
            locations = ", ".join(self.link_locations) + (", …" if more else "")
            self.found.add(
                Finding(
                    FindingKind.PDF_URI_ACTIONS,
                    f"{self.links} URI action(s), links the reader may open: {shown}",
                    locations,
                    self.links,
                )
            )


def _text(value: Any) -> str:
    if value is None:
        return ""
    try:
        return str(value)
    except (UnicodeDecodeError, ValueError):
        return repr(value)


_RAW_NAMES = re.compile(
    rb"/(JavaScript|JS|Launch|EmbeddedFile|SubmitForm|GoToR|GoToE|ImportData|URI)(?![A-Za-z0-9#])"
)
_RAW_KINDS = {
    b"JavaScript": FindingKind.PDF_JAVASCRIPT,
    b"JS": FindingKind.PDF_JAVASCRIPT,
    b"Launch": FindingKind.PDF_LAUNCH_ACTION,
    b"EmbeddedFile": FindingKind.PDF_EMBEDDED_FILE,
    b"SubmitForm": FindingKind.PDF_SUBMIT_FORM,
    b"GoToR": FindingKind.PDF_REMOTE_ACTION,
    b"GoToE": FindingKind.PDF_REMOTE_ACTION,
    b"ImportData": FindingKind.PDF_REMOTE_ACTION,
    b"URI": FindingKind.PDF_URI_ACTIONS,
}


def _raw(found: FindingSet, path: Path, budget: Budget, why: str) -> None:
    """The action names in the raw bytes of a PDF that cannot be parsed (those inside
    compressed object streams are not seen)."""
    for match in iter_matches(file_chunks(path, budget), _RAW_NAMES, keep=64):
        name = match.group(1)
        found.note(
            _RAW_KINDS[name],
            f"the name /{name.decode()} in the raw file ({why}; only its uncompressed "
            "objects were searched)",
            "raw file",
        )
