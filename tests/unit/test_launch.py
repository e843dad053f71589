"""The command line's entry point: which commands start the worker template early."""

from __future__ import annotations

import multiprocessing.forkserver
from pathlib import Path

import pytest

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
