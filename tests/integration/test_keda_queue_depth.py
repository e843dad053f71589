"""What KEDA's ScaledObjects read (deploy/kubernetes/components/keda): on a real Redis, the
messages the API publishes at every priority land in the lists the family's ScaledObject
names, and the sum of their lengths is the family's number of jobs waiting."""

from __future__ import annotations

import uuid
from pathlib import Path

import redis
import yaml

from docworker.config import load_settings
from docworker.jobs.distributed import CeleryDispatch
from docworker.jobs.models import NewJob
from docworker.jobs.store import JobStore

SCALED_OBJECTS = (
    Path(__file__).resolve().parents[2]
    / "deploy"
    / "kubernetes"
    / "components"
    / "keda"
    / "scaledobjects.yaml"
)
#: Operations of two families, and priorities from below the lowest level to above the
#: highest.
OPERATIONS = {"extract": "documents", "ocr": "ocr"}
PRIORITIES = [-10, -4, -1, 0, 1, 3, 5, 10]


def _list_names() -> dict[str, list[str]]:
    found = {}
    for doc in yaml.safe_load_all(SCALED_OBJECTS.read_text()):
        family = doc["metadata"]["labels"]["docworker/queue"]
        found[family] = [trigger["metadata"]["listName"] for trigger in doc["spec"]["triggers"]]
    return found


def test_the_scaled_objects_lists_hold_every_waiting_job(tmp_path: Path, redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex}-"
    settings = load_settings(
        data_dir=tmp_path,
        executor={"kind": "celery"},
        celery={"broker_url": redis_url, "queue_prefix": prefix},
    )
    store = JobStore(settings.database_url)
    store.migrate()
    dispatch = CeleryDispatch(settings)
    client = redis.Redis.from_url(redis_url)
    names = _list_names()
    assert sorted(names) == ["convert", "documents", "media", "ocr"]
    try:
        for operation in OPERATIONS:
            for priority in PRIORITIES:
                record, _ = store.create(NewJob(operation, {}, None, priority=priority))
                dispatch.publish(record)
        for family in OPERATIONS.values():
            # With a queue prefix, the Redis keys carry it twice: once in the queue's
            # name, once as the transport's key prefix (docs/deployment.md).
            keys = [prefix + name.replace(family, prefix + family, 1) for name in names[family]]
            assert sum(client.llen(key) for key in keys) == len(PRIORITIES), family
            held = {
                key.decode()
                for key in client.scan_iter(match=f"{prefix}{prefix}{family}*")
                if client.type(key) == b"list"
            }
            assert held <= set(keys), held - set(keys)
            # A job of normal priority waits in level 5 (the ScaledObject's sixth list).
            assert client.llen(keys[5]) >= 1
    finally:
        dispatch.stop()
        store.close()
        client.delete(*client.scan_iter(match=f"{prefix}*"))
        client.close()
