"""The worker process of the local executor: runs one job at a time, as told.

The supervisor (:mod:`docworker.jobs.local`) sends a job as a JSON message over
a pipe; the worker reads the input from the blob store, runs the operation,
writes the result back to the blob store and answers with a JSON message. The
worker never touches the job store: every state change is the supervisor's, so
a worker that dies or is killed mid-job cannot leave a half-written job behind.

Messages, supervisor → worker: ``{"type": "run", "job_id", "operation",
"params", "input", "limits"}`` and ``{"type": "stop"}``. Worker → supervisor:
``{"type": "ready"}``, ``{"type": "progress", "job_id", "fraction", "message"}``,
``{"type": "done", "job_id", "result", "errors"}`` and ``{"type": "error",
"job_id", "error", "transient"}``.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from docworker.config import Settings
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.errors import DocworkerError, MemoryLimitExceeded, ProcessingFailed
from docworker.formats.registry import preload
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, operation_context
from docworker.storage import BlobStore
from docworker.telemetry import configure_logging

log = structlog.get_logger(__name__)

#: Progress messages are sent at most this often, so a fast parser does not flood the pipe.
PROGRESS_INTERVAL = 0.25
#: Room above the memory limit for the hard allocation cap: the supervisor's RSS
#: watchdog is the limit that reports cleanly; the cap stops a runaway allocation
#: between two of its looks.
HARD_CAP_HEADROOM_MB = 512


def send(conn: Connection, message: dict[str, Any]) -> None:
    conn.send_bytes(json.dumps(message).encode())


def receive(conn: Connection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(conn.recv_bytes())
    return message


def _cap_memory(limit_mb: int) -> None:
    cap = (limit_mb + HARD_CAP_HEADROOM_MB) * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    except (ValueError, OSError) as exc:  # not permitted here: the watchdog still applies
        log.warning("memory cap not set", error=str(exc))


def worker_main(conn: Connection, config: dict[str, Any]) -> None:
    """Entry point of a worker process: serve jobs until told to stop or the pipe closes.

    ``config`` holds the service's settings as JSON (``{"settings": ...}``), so the
    worker works from exactly what the service was started with.
    """
    # Own process group: the supervisor kills the worker together with any engine it started.
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = Settings.model_validate(config["settings"])
    configure_logging(level=settings.log.level, json_logs=settings.json_logs)
    _cap_memory(settings.executor.memory_limit_mb)
    store = BlobStore(settings.storage_url)
    preload()
    # This worker's own LibreOffice, started by the first job that converts a file.
    libreoffice = LibreOfficeEngine(settings.libreoffice)
    send(conn, {"type": "ready", "pid": os.getpid()})
    try:
        while True:
            try:
                message = receive(conn)
            except (EOFError, OSError):
                return
            if message["type"] == "stop":
                return
            if message["type"] == "run":
                send(conn, run_job(conn, store, message, settings, libreoffice.convert))
    finally:
        libreoffice.stop()


def _progress_sender(conn: Connection, job_id: str) -> Any:
    last = 0.0

    def report(fraction: float, text: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL or fraction >= 1.0:
            last = now
            send(
                conn, {"type": "progress", "job_id": job_id, "fraction": fraction, "message": text}
            )

    return report


def run_job(
    conn: Connection,
    store: BlobStore,
    message: dict[str, Any],
    settings: Settings,
    convert: Callable[[Path, str], Path] | None = None,
) -> dict[str, Any]:
    """Run one job and return the answer message for the supervisor."""
    job_id: str = message["job_id"]
    bound = log.bind(job_id=job_id, operation=message["operation"])
    try:
        operation = get_operation(message["operation"])
        params = validate_params(operation, message["params"])
        ctx = operation_context(settings, progress=_progress_sender(conn, job_id), convert=convert)
        spec = message["input"]
        suffix = PurePosixPath(spec.get("name") or "").suffix[:16]
        with store.local_copy(spec["uri"], suffix) as path:
            source = InputFile(path, spec.get("name"), spec.get("mime"), spec.get("sha256"))
            result = operation.run(ctx, source, params)
        body = json.dumps(result.payload, ensure_ascii=False).encode()
        blob = store.write_bytes(BlobStore.result_uri(job_id, "result.json"), body)
        ref = {"uri": blob.uri, "mime": "application/json", "size": blob.size}
        return {"type": "done", "job_id": job_id, "result": ref, "errors": result.errors}
    except DocworkerError as exc:
        bound.info("job attempt failed", error=exc.code, detail=exc.detail)
        return _error(job_id, exc)
    except MemoryError:
        return _error(job_id, MemoryLimitExceeded(settings.executor.memory_limit_mb))
    except RecursionError:
        return _error(job_id, ProcessingFailed("the document is nested too deeply to process"))
    except Exception as exc:  # noqa: BLE001 - a library failing on odd input must not kill the worker
        bound.exception("job attempt raised an unexpected error")
        return _error(
            job_id, ProcessingFailed(f"the document could not be processed ({type(exc).__name__})")
        )


def _error(job_id: str, exc: DocworkerError) -> dict[str, Any]:
    return {"type": "error", "job_id": job_id, "error": exc.to_dict(), "transient": exc.transient}
