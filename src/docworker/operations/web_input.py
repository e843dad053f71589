"""A web page to render from an upload: an HTML file, a Markdown file, or a zip of a site.

The page is laid out in a folder of its own (``site/`` in the job's private
folder), which is all it may read from disk when rendered. A zip is unpacked
there under limits (files, bytes, per-member compression ratio) and refused when
a member would land outside (absolute paths, ``..``), is a link, or is encrypted;
the bytes written are counted, not taken from the zip's own claims. The page
opened is ``index.html`` (or ``index.htm``, ``index.md``) at the top of the zip or
of its one top folder, or the only HTML file at the top. Both the ``convert``
(HTML → PDF) and ``screenshot`` operations read their pages through here.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path, PurePosixPath

from docworker.config import SiteSettings
from docworker.errors import CorruptDocument, HostileInput, LimitExceeded, UnsupportedFormat
from docworker.formats.archives.members import MemberKind, zip_member_kind
from docworker.formats.archives.names import unsafe_reason
from docworker.formats.detect import detect
from docworker.operations.base import InputFile, OperationContext

_ZIP_MAGIC = b"PK\x03\x04"
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_MARKDOWN_TYPES = frozenset({"text/markdown", "text/x-markdown", "text/plain"})
_ENTRY_NAMES = ("index.html", "index.htm", "index.md")
#: Members smaller than this are not held to the compression-ratio limit.
_RATIO_FLOOR = 64 * 1024
_CHUNK = 1024 * 1024


def prepare_page(
    ctx: OperationContext, source: InputFile, limits: SiteSettings
) -> tuple[Path, Path]:
    """The folder of the page and its assets (new, in the job's own folder), and the page."""
    folder = ctx.artifact_path("site")
    folder.mkdir()
    with source.path.open("rb") as fh:
        is_zip = fh.read(4) == _ZIP_MAGIC
    if is_zip:
        unpack_site(source.path, folder, limits)
        return folder, entry_page(folder)
    mime = detect(source.path, source.name).mime
    if mime in _HTML_TYPES:
        target = folder / "index.html"
    elif mime in _MARKDOWN_TYPES:
        target = folder / "index.md"
    else:
        raise UnsupportedFormat(
            mime, f"a page to render is HTML, Markdown or a zip of a site, not {mime}"
        )
    shutil.copyfile(source.path, target)
    return folder, target


def unpack_site(archive: Path, folder: Path, limits: SiteSettings) -> None:
    """Unpack the zip ``archive`` into ``folder`` under ``limits`` (see the module)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [info for info in zf.infolist() if not info.is_dir()]
            if len(members) > limits.max_files:
                raise LimitExceeded("files in the zip", len(members), limits.max_files)
            declared = sum(info.file_size for info in members)
            if declared > limits.max_bytes:
                raise LimitExceeded("unpacked bytes of the zip", declared, limits.max_bytes)
            budget = limits.max_bytes
            for info in members:
                target = _member_target(folder, info)
                _check_member(info, limits)
                budget -= _extract(zf, info, target, budget, limits.max_bytes)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise CorruptDocument("zip", str(exc)) from None
    except NotImplementedError as exc:  # a compression method zipfile lacks
        raise CorruptDocument("zip", str(exc)) from None
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise CorruptDocument("zip", f"two members claim one path: {exc.strerror}") from None


def _member_target(folder: Path, info: zipfile.ZipInfo) -> Path:
    reason = unsafe_reason(info.filename)
    if reason is not None:
        raise HostileInput(
            f"the zip member '{info.filename[:200]}' would land outside its folder: {reason}"
        )
    kind = zip_member_kind(info)
    if kind is MemberKind.LINK:
        raise HostileInput(f"the zip member '{info.filename[:200]}' is a link")
    if kind is not MemberKind.FILE:
        raise HostileInput(f"the zip member '{info.filename[:200]}' is not a plain file")
    return folder.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)


def _check_member(info: zipfile.ZipInfo, limits: SiteSettings) -> None:
    if info.flag_bits & 0x1:
        raise CorruptDocument("zip", f"the member '{info.filename[:200]}' is encrypted")
    if info.file_size > _RATIO_FLOOR:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise HostileInput(
                f"the zip member '{info.filename[:200]}' expands {ratio:.0f} times "
                f"(limit {limits.max_ratio:g}): a zip bomb?"
            )


def _extract(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, maximum: int
) -> int:
    """Write one member, counting its real bytes against ``budget``; the bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as member, target.open("xb") as out:
        while chunk := member.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise LimitExceeded("unpacked bytes of the zip", maximum + 1, maximum)
            out.write(chunk)
    return written


def entry_page(folder: Path) -> Path:
    """The page to open in an unpacked site (see the module)."""
    # A zip made on a Mac carries a __MACOSX folder of resource forks beside the site.
    tops = [top for top in folder.iterdir() if top.name != "__MACOSX"]
    roots = [folder]
    if len(tops) == 1 and tops[0].is_dir():
        roots.append(tops[0])
    for root in roots:
        for name in _ENTRY_NAMES:
            if (root / name).is_file():
                return root / name
        pages = [p for p in root.iterdir() if p.suffix.lower() in {".html", ".htm"}]
        if len(pages) == 1 and pages[0].is_file():
            return pages[0]
    raise CorruptDocument("zip", "it holds no index.html (nor one HTML file at its top)")
