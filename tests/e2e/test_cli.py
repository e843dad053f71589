"""The command line, run as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.scoring import corpus_root
from tests.e2e.server import Server

CORPUS = corpus_root()


def docworker(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docworker", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


def test_one_file_prints_to_stdout() -> None:
    done = docworker("extract", str(CORPUS / "web" / "nested.md"), "--output", "text")
    assert done.returncode == 0, done.stderr
    assert "Here is an example" in done.stdout or done.stdout.strip()


def test_json_output_is_the_document_model() -> None:
    done = docworker("extract", str(CORPUS / "office" / "word-sample.docx"), "--output", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["schema_name"] == "docworker.document"


def test_a_folder_goes_to_out_with_one_file_each(tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha words here")
    (src / "sub" / "b.csv").write_text("x,y\n1,2\n")
    out = tmp_path / "out"
    done = docworker("extract", str(src), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "a.txt.md").read_text().strip() == "alpha words here"
    assert "| x | y |" in (out / "sub" / "b.csv.md").read_text()


def test_a_failing_file_exits_non_zero_with_a_one_line_reason(tmp_path: Path) -> None:
    done = docworker("extract", str(CORPUS / "pdf" / "encrypted-password-1234.pdf"))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "encrypted" in lines[0]
    opened = docworker(
        "extract", str(CORPUS / "pdf" / "encrypted-password-1234.pdf"), "--password", "1234"
    )
    assert opened.returncode == 0


def test_several_files_need_out_and_bad_paths_are_named(tmp_path: Path) -> None:
    two = docworker("extract", str(CORPUS / "web" / "wiki.md"), str(CORPUS / "web" / "nested.md"))
    assert two.returncode == 2
    assert "--out" in two.stderr
    missing = docworker("extract", str(tmp_path / "nope.pdf"))
    assert missing.returncode != 0
    assert "nope.pdf" in missing.stderr


def test_failures_in_a_batch_are_counted(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.txt").write_text("fine")
    (src / "bad.bin").write_bytes(bytes(range(256)) * 8)
    done = docworker("extract", str(src), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    assert "1 of 2 files failed" in done.stderr
    assert (tmp_path / "out" / "good.txt.md").exists()


def test_jobs_commands_against_a_server(server: Server) -> None:
    with server.client() as client:
        job = client.post(
            "/api/v2/extract",
            files={"file": ("n.md", (CORPUS / "web" / "nested.md").read_bytes())},
        ).json()
    # Newest first: the job is on the first page of the shared server's jobs.
    listed = docworker("jobs", "list", "--server", server.url)
    assert listed.returncode == 0, listed.stderr
    assert job["job_id"] in listed.stdout
    shown = docworker("jobs", "show", job["job_id"], "--server", server.url)
    assert json.loads(shown.stdout)["status"] == "succeeded"
    cancelled = docworker("jobs", "cancel", job["job_id"], "--server", server.url)
    assert cancelled.returncode == 0
    assert "succeeded" in cancelled.stdout
    unknown = docworker("jobs", "show", "nope", "--server", server.url)
    assert unknown.returncode == 1
    assert "404" in unknown.stderr


def test_a_worker_for_an_unknown_queue_is_refused_with_the_queues_named(tmp_path: Path) -> None:
    done = docworker("worker", "--queues", "ocr,pictures", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown queue pictures: the queues are convert, documents, media, ocr" in done.stderr
