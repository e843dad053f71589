"""The multi-process metrics store (docs/observability.md, "Many processes, one scrape"):
processes that record and end, their counts kept and their files folded, their gauges
dropped. Each scenario runs in a process of its own: :func:`enable` switches the whole
process to the multi-process store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCENARIO = r"""
import json, multiprocessing, os, sys
from pathlib import Path
from prometheus_client.parser import text_string_to_metric_families
from docworker import metrics_store
from docworker.metrics import ENGINE_CALLS, JOB_DURATION, WORKERS_BUSY, engine_call

parent = Path(sys.argv[1])
stale = parent / "api-999999999"  # an instance whose process has ended
stale.mkdir(parents=True)
folder = metrics_store.instance_folder(parent, "api")
metrics_store.enable(folder)

def worker(busy):
    with engine_call("tesseract"):
        pass
    JOB_DURATION.labels("ocr").observe(0.3)
    WORKERS_BUSY.set(busy)

def scrape():
    found, names = {}, []
    for family in text_string_to_metric_families(metrics_store.exposition().decode()):
        names.append(family.name)
        for s in family.samples:
            found[s.name + json.dumps(s.labels, sort_keys=True)] = s.value
    return found, names

fork = multiprocessing.get_context("fork")
for _ in range(3):
    p = fork.Process(target=worker, args=(1,)); p.start(); p.join()
ENGINE_CALLS.labels("ffmpeg", "ok").inc()
before = sorted(os.listdir(folder))
first, names = scrape()
after_first = sorted(os.listdir(folder))
p = fork.Process(target=worker, args=(1,)); p.start(); p.join()
metrics_store.process_ended(p.pid)
second, _ = scrape()
print(json.dumps({
    "stale_removed": not stale.exists(),
    "before": before, "after_first": after_first, "after_second": sorted(os.listdir(folder)),
    "first": first, "second": second, "names": names,
}))
"""


def _run(tmp_path: Path) -> dict[str, object]:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(tmp_path / "metrics")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_ended_processes_are_folded_and_their_counts_kept(tmp_path: Path) -> None:
    result = _run(tmp_path)
    first, second = result["first"], result["second"]
    assert isinstance(first, dict) and isinstance(second, dict)
    calls = 'docworker_engine_calls_total{"engine": "tesseract", "outcome": "ok"}'
    runs = 'docworker_job_duration_seconds_count{"operation": "ocr"}'
    bucket = 'docworker_job_duration_seconds_bucket{"le": "0.5", "operation": "ocr"}'
    # Three processes that ended before the scrape, then one more: nothing lost.
    assert first[calls] == 3 and second[calls] == 4
    assert first[runs] == 3 and second[runs] == 4
    assert first[bucket] == 3 and second[bucket] == 4
    assert first['docworker_engine_calls_total{"engine": "ffmpeg", "outcome": "ok"}'] == 1
    # The ended processes' gauges are gone (live sum: only this process, which set none).
    assert first["docworker_workers_busy{}"] == 0 and second["docworker_workers_busy{}"] == 0
    # Their files were folded: the archives and this process's files stay.
    for listing in (result["after_first"], result["after_second"]):
        assert isinstance(listing, list)
        counters = [name for name in listing if name.startswith("counter_")]
        assert sorted(counters) == sorted(["counter_archive.db", f"counter_{_pid(listing)}.db"])
    before = result["before"]
    assert isinstance(before, list) and len([n for n in before if n.startswith("counter_")]) == 4
    # Metrics no process recorded are listed all the same; an ended instance's folder went.
    names = result["names"]
    assert isinstance(names, list) and "docworker_webhook_deliveries" in names
    assert result["stale_removed"] is True


def _pid(listing: list[str]) -> str:
    own = [n for n in listing if n.startswith("counter_") and n != "counter_archive.db"]
    return own[0].removeprefix("counter_").removesuffix(".db") if own else "?"
