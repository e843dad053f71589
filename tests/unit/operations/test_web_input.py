"""Laying out an uploaded page: HTML, Markdown, or a zip unpacked under limits."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from docworker.config import SiteSettings
from docworker.errors import CorruptDocument, HostileInput, LimitExceeded, UnsupportedFormat
from docworker.operations.base import InputFile, OperationContext
from docworker.operations.web_input import prepare_page

LIMITS = SiteSettings(max_files=5, max_bytes=100_000, max_ratio=50)
PAGE = b"<!DOCTYPE html><html><body><p>Hello</p></body></html>"


def _upload(tmp_path: Path, name: str, data: bytes) -> tuple[OperationContext, InputFile]:
    workdir = tmp_path / "job"
    workdir.mkdir(parents=True)
    path = tmp_path / f"upload{Path(name).suffix}"
    path.write_bytes(data)
    return OperationContext(workdir=workdir), InputFile(path, name)


def _zip(members: dict[str, bytes], link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_single_files(tmp_path: Path) -> None:
    ctx, source = _upload(tmp_path, "page.html", PAGE)
    folder, page = prepare_page(ctx, source, LIMITS)
    assert page == folder / "index.html" and page.read_bytes() == PAGE
    ctx, source = _upload(tmp_path / "md", "notes.md", b"# Notes\n\nSome *text*.\n")
    folder, page = prepare_page(ctx, source, LIMITS)
    assert page.name == "index.md"
    ctx, source = _upload(tmp_path / "pdf", "a.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n")
    with pytest.raises(UnsupportedFormat):
        prepare_page(ctx, source, LIMITS)


@pytest.mark.parametrize(
    ("members", "entry"),
    [
        ({"index.html": PAGE, "a/b.css": b"p{}"}, "index.html"),
        ({"top/index.htm": PAGE, "top/img/x.png": b"x"}, "top/index.htm"),
        ({"report.html": PAGE, "style.css": b"p{}"}, "report.html"),
        ({"index.md": b"# T\n", "report.html": PAGE}, "index.md"),
    ],
)
def test_zip_entry_pages(tmp_path: Path, members: dict[str, bytes], entry: str) -> None:
    ctx, source = _upload(tmp_path, "site.zip", _zip(members))
    folder, page = prepare_page(ctx, source, LIMITS)
    assert page == folder / entry
    for name, data in members.items():
        assert (folder / name).read_bytes() == data


@pytest.mark.parametrize(
    ("members", "link", "error", "fragment"),
    [
        ({"index.html": PAGE, "../up.html": b"x"}, None, HostileInput, "outside"),
        ({"index.html": PAGE, "/etc/cron.d/x": b"x"}, None, HostileInput, "outside"),
        ({"index.html": PAGE, "a\\..\\..\\x": b"x"}, None, HostileInput, "outside"),
        ({"index.html": PAGE}, "pw.txt", HostileInput, "link"),
        ({f"f{i}.html": PAGE for i in range(6)}, None, LimitExceeded, "files in the zip"),
        ({"index.html": PAGE, "big.bin": b"\0" * 90_000}, None, HostileInput, "zip bomb"),
        (
            {"index.html": PAGE, "a.txt": b"ab" * 30_000, "b.txt": b"cd" * 30_000},
            None,
            LimitExceeded,
            "unpacked bytes",
        ),
        ({"notes.txt": b"x", "other.txt": b"y"}, None, CorruptDocument, "no index.html"),
    ],
)
def test_zips_refused(
    tmp_path: Path,
    members: dict[str, bytes],
    link: str | None,
    error: type[Exception],
    fragment: str,
) -> None:
    ctx, source = _upload(tmp_path, "site.zip", _zip(members, link))
    with pytest.raises(error, match=fragment):
        prepare_page(ctx, source, LIMITS)
    assert not (tmp_path / "up.html").exists()


def test_a_broken_zip(tmp_path: Path) -> None:
    ctx, source = _upload(tmp_path, "site.zip", _zip({"index.html": PAGE})[:40])
    with pytest.raises(CorruptDocument):
        prepare_page(ctx, source, LIMITS)
