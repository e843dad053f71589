"""v1's command line (V1_API.md §13) as ``docworker`` sub-commands, run as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.scoring import corpus_root
from tests.videos import make_video, needs_ffmpeg

CORPUS = corpus_root()
PDF = CORPUS / "pdf" / "multi-page-article.pdf"


def docworker(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCWORKER_DATA_DIR": str(data), "CACHE_DIRECTORY": str(data / "c")}
    return subprocess.run(
        [sys.executable, "-m", "docworker", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("prefix", [(), ("cli",)])
def test_extract_writes_the_text_on_one_line(tmp_path: Path, prefix: tuple[str, ...]) -> None:
    out = tmp_path / "out.txt"
    done = docworker(*prefix, "extract", str(PDF), str(out), data=tmp_path)
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert "\n" not in text and text.startswith("The Evolution of the Word Processor")
    assert len(text.split()) > 1000


def test_extract_refuses_what_v1_refused(tmp_path: Path) -> None:
    image = CORPUS / "images" / "ocr-text.png"
    done = docworker("cli", "extract", str(image), str(tmp_path / "o.txt"), data=tmp_path)
    assert done.returncode == 1
    assert "❌ Error: unsupported file type: .png" in done.stderr
    assert not (tmp_path / "o.txt").exists()


def test_ocr_writes_the_text(tmp_path: Path) -> None:
    out = tmp_path / "ocr.txt"
    image = CORPUS / "images" / "ocr-text.png"
    done = docworker("ocr", str(image), str(out), "--lang", "eng", data=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == "This file contains some words."
    assert "30 characters" in done.stdout


def test_health_stats_and_version_never_fail(tmp_path: Path) -> None:
    health = docworker("health", data=tmp_path)
    assert health.returncode == 0, health.stderr
    report = json.loads(health.stdout[: health.stdout.rindex("}") + 1])
    assert set(report["dependencies"]) == {
        "queue",
        "cache",
        "vips",
        "ffmpeg",
        "tesseract",
        "playwright",
    }
    assert report["dependencies"]["queue"]["message"] == "Queue service not initialized"
    assert "System status: degraded" in health.stdout
    assert not (tmp_path / "docworker.db").exists()
    stats = docworker("cli", "stats", data=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert "Pending:    0" in stats.stdout and "Total:      0" in stats.stdout
    version = docworker("version", data=tmp_path)
    assert version.returncode == 0 and "Documents Worker CLI v1.0.0" in version.stderr
    flag = docworker("--version", data=tmp_path)
    assert flag.returncode == 0 and flag.stdout.startswith("documents-worker version ")


def test_convert_chunk_writes_numbered_chunks_within_the_size(tmp_path: Path) -> None:
    out = tmp_path / "chunks"
    done = docworker(
        "cli",
        "convert",
        "chunk",
        str(PDF),
        str(out),
        "--method",
        "recursive",
        "--size",
        "300",
        data=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    files = sorted(out.iterdir())
    assert files[0].name == "chunk_001.txt" and len(files) > 10
    texts = [f.read_text(encoding="utf-8") for f in files]
    assert all(10 <= len(t) <= 300 for t in texts)
    assert "Word Processor" in texts[0]
    bad = docworker("convert", "chunk", str(PDF), str(out), "--method", "bogus", data=tmp_path)
    assert bad.returncode == 1 and "❌ Error: unknown chunking method: bogus" in bad.stderr


def _image(path: Path, width: int, height: int) -> Path:
    from docworker.engines.vips import pyvips

    pyvips.Image.black(width, height, bands=3).linear(1, 90).cast("uchar").write_to_file(str(path))
    return path


def _size(path: Path) -> tuple[int, int]:
    from docworker.engines.vips import pyvips

    image = pyvips.Image.new_from_file(str(path))
    return image.width, image.height


@pytest.mark.parametrize("prefix", [(), ("cli",)])
def test_convert_image_writes_the_format_asked(tmp_path: Path, prefix: tuple[str, ...]) -> None:
    source = _image(tmp_path / "in.png", 400, 200)
    out = tmp_path / "out.jpg"  # v1 wrote FORMAT's bytes whatever the name said
    done = docworker(
        *prefix, "convert", "image", str(source), str(out), "webp", "--height", "50", data=tmp_path
    )
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert data.startswith(b"RIFF") and data[8:12] == b"WEBP"
    assert _size(out) == (100, 50)


def test_convert_image_refuses_an_unknown_format(tmp_path: Path) -> None:
    source = _image(tmp_path / "in.png", 40, 20)
    done = docworker("convert", "image", str(source), str(tmp_path / "o"), "bmp", data=tmp_path)
    assert done.returncode == 1 and "❌ Error: " in done.stderr
    assert not (tmp_path / "o").exists()


def test_convert_pdf_of_markdown_html_and_office(tmp_path: Path) -> None:
    import pypdfium2

    markdown = tmp_path / "notes.md"
    markdown.write_text("# Field notes\n\nThe heron came back.\n", encoding="utf-8")
    out = tmp_path / "notes.pdf"
    done = docworker(
        "convert", "pdf", str(markdown), str(out), "--page-size", "Letter", data=tmp_path
    )
    assert done.returncode == 0, done.stderr
    pdf = pypdfium2.PdfDocument(out.read_bytes())
    try:
        assert [tuple(round(v) for v in pdf[0].get_size())] == [(612, 792)]
        page = pdf[0]
        textpage = page.get_textpage()
        assert "The heron came back." in textpage.get_text_range()
        textpage.close()
        page.close()
    finally:
        pdf.close()
    docx = CORPUS / "office" / "word-sample.docx"
    office = docworker("cli", "convert", "pdf", str(docx), str(tmp_path / "w.pdf"), data=tmp_path)
    assert office.returncode == 0, office.stderr
    assert (tmp_path / "w.pdf").read_bytes().startswith(b"%PDF-")
    refused = docworker("convert", "pdf", str(PDF), str(tmp_path / "x.pdf"), data=tmp_path)
    assert refused.returncode == 1 and "unsupported file format: .pdf" in refused.stderr
    url = docworker("convert", "pdf", str(markdown), str(out), "--url", data=tmp_path)
    assert url.returncode == 1 and "❌ Error: URL to PDF conversion" in url.stderr


@pytest.mark.parametrize("prefix", [(), ("cli",)])
def test_thumbnail_of_an_image(tmp_path: Path, prefix: tuple[str, ...]) -> None:
    source = _image(tmp_path / "in.png", 400, 100)
    out = tmp_path / "thumb.webp"
    done = docworker(*prefix, "thumbnail", str(source), str(out), "--size", "80", data=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[8:12] == b"WEBP" and _size(out) == (80, 20)


@needs_ffmpeg
def test_thumbnail_of_a_document_and_a_video(tmp_path: Path) -> None:
    page = tmp_path / "page.webp"
    done = docworker("thumbnail", str(PDF), str(page), data=tmp_path)
    assert done.returncode == 0, done.stderr
    assert page.read_bytes()[8:12] == b"WEBP" and max(_size(page)) == 200
    video = make_video(tmp_path / "v.mp4", size="320x240", seconds=2)
    frame = tmp_path / "frame.webp"
    done = docworker(
        "thumbnail", str(video), str(frame), "--size", "100", "--time", "1", data=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert frame.read_bytes()[8:12] == b"WEBP" and _size(frame) == (100, 75)


@pytest.mark.parametrize(
    "args", [(), ("cli",), ("cli", "convert", "image"), ("thumbnail",), ("convert", "pdf")]
)
def test_dash_h_is_help_as_in_v1(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = docworker(*args, "-h", data=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "--help" in done.stdout
