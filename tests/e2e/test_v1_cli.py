"""v1's command line (V1_API.md §13) as ``docworker`` sub-commands, run as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.scoring import corpus_root

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
