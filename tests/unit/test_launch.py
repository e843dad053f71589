"""Starting up: which commands start the worker template early, and what the API and the
command line leave to the workers to import."""

from __future__ import annotations

import multiprocessing.forkserver
import subprocess
import sys
from pathlib import Path

import pytest

from docworker.jobs.preload import preloaded_modules
from docworker.launch import serves, start_template


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], True),  # no command serves, as v1's binary did
        (["serve"], True),
        (["serve", "--port", "3002", "--workers", "3"], True),
        (["serve", "--executor", "local"], True),
        (["serve", "--executor", "celery"], False),
        (["serve", "--executor=none"], False),
        (["serve", "--workers", "0"], False),
        (["serve", "--help"], False),
        (["extract", "a.pdf"], False),
        (["worker"], False),
        (["--version"], False),
    ],
)
def test_only_a_server_with_local_workers_starts_the_template(
    args: list[str], expected: bool
) -> None:
    assert serves(args) is expected


def test_the_settings_decide_whether_a_template_is_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCWORKER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCWORKER_EXECUTOR__WORKER_START", "spawn")
    assert start_template() is False
    monkeypatch.setenv("DOCWORKER_EXECUTOR__WORKER_START", "forkserver")
    monkeypatch.setenv("DOCWORKER_EXECUTOR__KIND", "none")
    assert start_template() is False
    monkeypatch.delenv("DOCWORKER_EXECUTOR__KIND")
    assert start_template() is True
    # The one fork server of this process, which the executors' workers come from.
    assert multiprocessing.forkserver._forkserver._forkserver_pid is not None


def test_the_api_and_the_command_line_do_not_import_weasyprint() -> None:
    """WeasyPrint is imported by the processes that lay pages out (the worker template
    preloads it), not by the API or the command line: a second of start-up and about
    20 MiB each."""
    code = (
        "import sys, docworker.cli, docworker.api.app, docworker.operations;"
        "assert 'weasyprint' not in sys.modules, 'weasyprint imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert "docworker.render.html_fetch" in preloaded_modules()
