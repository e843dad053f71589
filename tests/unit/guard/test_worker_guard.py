"""The guard in the worker: every job's result gets a ``security`` section, once per job."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docworker.config import Settings, load_settings
from docworker.jobs.worker import run_job
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore
from tests.unit.guard import hostile_files as build


class Runner:
    def __init__(self, tmp_path: Path, **guard: Any) -> None:
        self.settings: Settings = load_settings(data_dir=tmp_path / "data", guard=guard)
        self.store = BlobStore(self.settings.storage_url)
        self.receiver, self.sender = multiprocessing.Pipe(duplex=False)

    def run(self, path: Path, name: str, **message: Any) -> dict[str, Any]:
        blob = self.store.put_file(path)
        job = {
            "type": "run",
            "job_id": message.pop("job_id", "job-1"),
            "operation": "extract",
            "params": {"output": "text"},
            "input": {"uri": blob.uri, "sha256": blob.sha256, "name": name, "mime": None},
            "parent_id": None,
            **message,
        }
        keys = SecretKeys.from_settings(self.settings)
        return run_job(self.sender, self.store, job, self.settings, keys)

    def payload(self, answer: dict[str, Any]) -> dict[str, Any]:
        assert answer["type"] == "done", answer
        result: dict[str, Any] = json.loads(self.store.read_bytes(answer["result"]["uri"]))
        return result


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(tmp_path)
    yield r
    r.receiver.close()
    r.sender.close()


def test_a_result_carries_the_security_section(runner: Runner, tmp_path: Path) -> None:
    pdf = build.pdf_with_actions(tmp_path / "actions.pdf")
    payload = runner.payload(runner.run(pdf, "actions.pdf"))
    security = payload["security"]
    assert security["detected"] == {"mime": "application/pdf", "format": "pdf"}
    assert security["claimed"] == {"name": "actions.pdf", "mime": "application/pdf"}
    kinds = {f["kind"] for f in security["findings"]}
    assert {"pdf_javascript", "pdf_launch_action", "pdf_uri_actions"} <= kinds


def test_a_refused_input_fails_the_job_with_the_finding(runner: Runner, tmp_path: Path) -> None:
    eicar = tmp_path / "eicar.txt"
    eicar.write_bytes(b"test file\n" + build.EICAR + b"\n")
    answer = runner.run(eicar, "eicar.txt")
    assert answer["type"] == "error"
    error = answer["error"]
    assert error["code"] == "content-refused"
    assert [f["kind"] for f in error["findings"]] == ["eicar"]


def test_the_tenant_of_the_run_message_picks_its_policy(tmp_path: Path) -> None:
    runner = Runner(tmp_path, tenants={"lab": {"eicar": "report"}})
    eicar = tmp_path / "eicar.txt"
    eicar.write_bytes(build.EICAR)
    lab = runner.payload(runner.run(eicar, "eicar.txt", tenant="lab"))
    assert [f["kind"] for f in lab["security"]["findings"]] == ["eicar"]
    assert runner.run(eicar, "eicar.txt", tenant="other")["type"] == "error"
    assert runner.run(eicar, "eicar.txt")["type"] == "error"


def test_a_part_is_not_scanned_again(runner: Runner, tmp_path: Path) -> None:
    eicar = tmp_path / "eicar.txt"
    eicar.write_bytes(build.EICAR)
    # Its parent scanned the same input before splitting (and would have refused it).
    payload = runner.payload(runner.run(eicar, "eicar.txt", parent_id="job-0"))
    assert "security" not in payload


def test_the_guard_switched_off_adds_nothing_and_refuses_nothing(tmp_path: Path) -> None:
    runner = Runner(tmp_path, enabled=False)
    eicar = tmp_path / "eicar.txt"
    eicar.write_bytes(build.EICAR)
    assert "security" not in runner.payload(runner.run(eicar, "eicar.txt"))
