"""The worker process of the local executor: runs one job at a time, as told.

The supervisor (:mod:`docworker.jobs.local`) sends a job as a JSON message over
a pipe; the worker reads the input from the blob store, runs the operation,
writes the result back to the blob store and answers with a JSON message. The
worker never touches the job store: every state change is the supervisor's, so
a worker that dies or is killed mid-job cannot leave a half-written job behind.

Messages, supervisor → worker: ``{"type": "run", "job_id", "operation",
"params", "input", "parent_id", "part", "parts", "tenant", "key_id", "attempt", "trace"}``
(``trace``: the job's trace context and request id, see :mod:`docworker.tracing`) and
``{"type": "stop"}``. Worker →
supervisor: ``{"type": "ready"}``, ``{"type": "progress", "job_id", "fraction",
"message"}``, ``{"type": "done", "job_id", "result", "errors", "pages"}``, ``{"type":
"error", "job_id", "error"}`` and ``{"type": "split", "job_id", "parts"}``. What
becomes of a failed job is the supervisor's decision, from the error's ``code``
(:class:`~docworker.errors.AfterFailure`).

Files: a worker writes only in its own folder under the data folder (given by the
supervisor, see :mod:`docworker.jobs.workdirs`), made its temporary folder, so that
everything its jobs, engines and libraries leave behind is deleted with the folder
once the worker is ended.

Splitting: a job of a :class:`~docworker.operations.base.Splittable` operation
that is not itself a part may answer ``split`` with the parameters of its parts
instead of running; the supervisor makes them child jobs. When they have all
ended, the job runs again with ``parts`` (each part's status, result and error)
and merges them.

The content guard: before the operation runs, the job's input (and its further
inputs) are scanned (:mod:`docworker.guard`) under the policy of the job's tenant; a
refused finding fails the job, the others go into the result's ``security`` section.
A part is not scanned: its parent scanned the same input before it split, and kept the
section for its merge.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import resource
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import orjson
import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from docworker import metrics_store
from docworker.config import Settings, settings_of
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.errors import DocworkerError, MemoryLimitExceeded, ProcessingFailed
from docworker.files import restrict_umask
from docworker.formats.registry import preload
from docworker.guard import YaraUnavailable, load_rules, security_section
from docworker.jobs.results import read_payload, store_result
from docworker.operations import get_operation, open_params, seal_params
from docworker.operations.base import (
    InputFile,
    OperationContext,
    PartResult,
    Result,
    SplitPart,
    SplitPlan,
    Splittable,
    operation_context,
    pages_processed,
)
from docworker.result_cache import CACHE_KEY, ResultCache, capture
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore
from docworker.telemetry import configure_logging
from docworker.tracing import (
    configure_tracing,
    engine_span,
    flush,
    job_attributes,
    job_scope,
    mark_failed,
    set_attributes,
    with_span,
)
from docworker.tracing import shutdown as shutdown_tracing

log = structlog.get_logger(__name__)

#: Progress messages are sent at most this often, so a fast parser does not flood the pipe.
PROGRESS_INTERVAL = 0.25
#: Where a job that splits keeps its ``security`` section for its merge, beside its
#: result (a name no artifact can take: artifact names never start with a dot).
SECURITY_BLOB = ".security.json"
#: Room above the memory limit for the hard allocation cap: the supervisor's RSS
#: watchdog is the limit that reports cleanly; the cap stops a runaway allocation
#: between two of its looks.
HARD_CAP_HEADROOM_MB = 512


def send(conn: Connection, message: dict[str, Any]) -> None:
    conn.send_bytes(orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS))


def receive(conn: Connection) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(conn.recv_bytes())
    return message


def _cap_memory(limit_mb: int) -> None:
    cap = (limit_mb + HARD_CAP_HEADROOM_MB) * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    except (ValueError, OSError) as exc:  # not permitted here: the watchdog still applies
        log.warning("memory cap not set", error=str(exc))


def _die_with_supervisor(lifeline: Connection) -> None:
    """End this worker's process group (the worker and the engines it started) as soon as
    its supervisor is gone, however it went (a SIGKILL leaves no time to stop workers):
    no worker runs on without the limits the supervisor enforces.

    A thread that waits on the lifeline, a pipe whose only writing end the supervisor
    holds and never writes to: the read ends as soon as the supervisor closes it or its
    process is gone. Neither the parent process id (a worker forked from the template
    has the fork server for parent, not the supervisor) nor ``PR_SET_PDEATHSIG`` (the
    signal follows the thread that started the worker, and the supervisor starts
    workers from threads that end while the workers live on) would tell.
    """

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv_bytes()
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def _work_in(folder: Path, environ: dict[str, str]) -> None:
    """Take the service's environment, with ``folder`` as the temporary folder of this
    process and of every program it starts; and keep the pipes this process inherited
    (the job pipe, the lifeline, the fork server's) from the programs it starts."""
    os.environ.clear()
    os.environ.update(environ)
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2:
            with contextlib.suppress(OSError):  # the listing's own descriptor, closed since
                os.set_inheritable(int(name), False)


def worker_settings(config: dict[str, Any]) -> Settings:
    """The service's settings in a worker, from the executor's ``config``
    (:func:`~docworker.jobs.template.worker_config`), the stores' credentials put back."""
    settings = settings_of(config["settings"])
    for name, value in config.get("storage_secrets", {}).items():
        setattr(settings.storage.s3, name, SecretStr(value))
    if config.get("tracing_headers") is not None:
        settings.tracing.headers = SecretStr(config["tracing_headers"])
    return settings


def worker_main(
    conn: Connection, lifeline: Connection, config: dict[str, Any], folder: str
) -> None:
    """Entry point of a worker process: serve jobs until told to stop or the pipe closes.

    ``config`` holds the service's settings as JSON (``{"settings": ...}``), so the
    worker works from exactly what the service was started with, the keys that open
    the jobs' secret parameters (``"secret_keys"``, handed over the pipe only) and the
    service's environment (``"environ"``). ``folder`` is the worker's own folder, where
    everything it writes goes; ``lifeline`` ends the worker when the supervisor is gone.
    """
    # What this process inherited (from the template, its modules) is never garbage: frozen,
    # the collector never walks it, so its memory pages stay shared with the template
    # instead of being copied into every worker by the first full collection.
    gc.freeze()
    # Own process group: the supervisor kills the worker together with any engine it started.
    os.setpgrp()
    _die_with_supervisor(lifeline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _work_in(Path(folder), config["environ"])
    metrics_store.adopt()
    settings = worker_settings(config)
    keys = SecretKeys(config["secret_keys"])
    tools = prepare_process(settings)
    send(conn, {"type": "ready", "pid": os.getpid()})
    jobs = 0
    try:
        while True:
            try:
                message = receive(conn)
            except (EOFError, OSError):
                return
            if message["type"] == "stop":
                return
            if message["type"] == "run":
                answer = run_job(
                    conn,
                    tools.blobs,
                    message,
                    settings,
                    keys,
                    tools.libreoffice.convert,
                    cache=tools.cache,
                )
                jobs += 1
                if jobs >= settings.executor.jobs_per_worker:
                    # The supervisor replaces this worker (kills it) once it answers: the
                    # spans are exported first, not by the exporter's next round.
                    flush()
                send(conn, answer)
    finally:
        tools.close()


class WorkerTools(NamedTuple):
    """What a worker process runs jobs with (:func:`prepare_process`)."""

    #: The blob store the settings name.
    blobs: BlobStore
    #: The process's own LibreOffice, started by the first job that converts a file.
    libreoffice: LibreOfficeEngine
    #: The shared tier of the result cache, where results are kept (no memory tier: a
    #: worker never looks results up); None when the cache is disabled.
    cache: ResultCache | None

    def close(self) -> None:
        """Stop the LibreOffice, close the cache and export the spans left: the process
        is ending."""
        self.libreoffice.stop()
        if self.cache is not None:
            self.cache.close()
        shutdown_tracing()


def prepare_process(settings: Settings) -> WorkerTools:
    """Make this process a worker (the local executor's, or a Celery worker process): a
    private umask, logging, the memory cap, every parser and the guard's rules loaded;
    returns the blob store, the process's own LibreOffice and the result cache's shared
    tier (close them with :meth:`WorkerTools.close` when the process ends).

    ``settings`` must hold the stores' credentials: a local worker's are put back by
    :func:`worker_settings`; ``docworker worker`` loads its settings itself."""
    restrict_umask()
    configure_logging(level=settings.log.level, json_logs=settings.json_logs)
    configure_tracing(settings.tracing)
    _cap_memory(settings.executor.memory_limit_mb)
    blobs = BlobStore.of(settings)
    preload()
    _preload_rules(settings)
    libreoffice = LibreOfficeEngine(settings.libreoffice, settings.sandbox)
    return WorkerTools(blobs, libreoffice, ResultCache.from_settings(settings, memory=False))


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
    keys: SecretKeys,
    convert: Callable[[Path, str], Path] | None = None,
    cache: ResultCache | None = None,
) -> dict[str, Any]:
    """Run one job and return the answer message for the supervisor, its progress sent
    over ``conn`` (see :func:`execute_job`)."""
    progress = _progress_sender(conn, message["job_id"])
    return execute_job(progress, store, message, settings, keys, convert, cache=cache)


def execute_job(
    progress: Callable[[float, str], None],
    store: BlobStore,
    message: dict[str, Any],
    settings: Settings,
    keys: SecretKeys,
    convert: Callable[[Path, str], Path] | None = None,
    cache: ResultCache | None = None,
) -> dict[str, Any]:
    """Run one job (a ``run`` message) and return its answer message (``done``, ``split``
    or ``error``), ``progress`` told how far it is. The job's secret parameters are
    opened here, just before it runs, and the parts of a split job are answered with
    theirs sealed again. A result that succeeded whole is kept in ``cache`` under the
    key its input names (see :mod:`docworker.result_cache`). Every executor runs jobs
    through here.

    The attempt is the span ``job run``, continuing the job's trace (``message["trace"]``,
    see :mod:`docworker.tracing`), with the job's id, tenant, key id and request id bound
    to every line logged meanwhile."""
    spec = message.get("input") or {}
    attributes = job_attributes(
        message["job_id"],
        message["operation"],
        attempt=message.get("attempt"),
        **{
            "job.parent_id": message.get("parent_id"),
            "job.part": message.get("part"),
            "input.bytes": spec.get("size"),
            "input.mime": spec.get("mime"),
        },
    )
    context = {
        "job_id": message["job_id"],
        "tenant": message.get("tenant"),
        "key_id": message.get("key_id"),
    }
    with job_scope(
        "job run",
        message.get("trace"),
        kind=SpanKind.CONSUMER,
        log_context={name: value for name, value in context.items() if value},
        attributes=attributes,
    ) as span:
        answer = _execute(progress, store, message, settings, keys, convert, cache)
        set_attributes(span, outcome=answer["type"], pages=answer.get("pages"))
        if answer["type"] == "error":
            error = answer["error"]
            mark_failed(span, str(error.get("code")), str(error.get("detail")))
        return answer


def _execute(
    progress: Callable[[float, str], None],
    store: BlobStore,
    message: dict[str, Any],
    settings: Settings,
    keys: SecretKeys,
    convert: Callable[[Path, str], Path] | None,
    cache: ResultCache | None,
) -> dict[str, Any]:
    """:func:`execute_job`'s work, in the job's span."""
    job_id: str = message["job_id"]
    bound = log.bind(operation=message["operation"])
    attempt_span = trace.get_current_span()
    try:
        operation = get_operation(message["operation"])
        params = open_params(operation, message["params"], keys)
        spec = message["input"]
        suffix = PurePosixPath(spec.get("name") or "").suffix[:16]
        with (
            tempfile.TemporaryDirectory(prefix="docworker-job-") as workdir,
            store.local_copy(spec["uri"], suffix) as path,
            contextlib.ExitStack() as stack,
        ):
            ctx = operation_context(
                settings,
                progress=progress,
                convert=convert,
                workdir=Path(workdir),
                tenant=message.get("tenant"),
            )
            others = tuple(_other_input(stack, store, other) for other in spec.get("others") or [])
            source = InputFile(
                path, spec.get("name"), spec.get("mime"), spec.get("sha256"), others=others
            )
            security = _security(store, job_id, message, source, ctx)
            if message.get("parts") is not None:
                if not isinstance(operation, Splittable):
                    raise ProcessingFailed(f"the {operation.name} operation cannot merge parts")
                parts = [_part_result(stack, store, item) for item in message["parts"]]
                with _operation_span(operation.name, "merge", parts=len(parts)):
                    result = operation.merge(ctx, source, params, parts)
            else:
                plan = split_plan(settings)
                if message.get("parent_id") is None and plan and isinstance(operation, Splittable):
                    with _operation_span(operation.name, "split") as span:
                        split = operation.split(ctx, source, params, plan)
                        set_attributes(span, parts=len(split) if split else 0)
                    if split:
                        if security is not None:
                            uri = BlobStore.result_uri(job_id, SECURITY_BLOB)
                            store.write_bytes(uri, json.dumps(security).encode())
                        # The parts' spans continue this attempt's.
                        carrier = with_span(message.get("trace"), attempt_span)
                        wire = [
                            _sealed_part(operation.name, part, keys) | {"trace": carrier}
                            for part in split
                        ]
                        return {"type": "split", "job_id": job_id, "parts": wire}
                with _operation_span(operation.name, "run") as span:
                    result = operation.run(ctx, source, params)
                    set_attributes(span, pages=pages_processed(result.payload))
            if security is not None:
                result.payload = result.payload | {"security": security}
            ref = store_result(store, job_id, result, max_bytes=settings.limits.max_output_bytes)
        if cache is not None:
            _keep(cache, store, message, ref, result)
        return {
            "type": "done",
            "job_id": job_id,
            "result": ref,
            "errors": result.errors,
            # The pages the result names, for usage and quotas (the supervisor measures
            # the CPU time: see docworker.jobs.cost).
            "pages": pages_processed(result.payload),
        }
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


def _operation_span(name: str, step: str, **attributes: Any) -> Any:
    """The span of the operation's ``step`` (run, split or merge)."""
    return engine_span(f"operation {name}", **{"operation.step": step}, **attributes)


def _keep(
    cache: ResultCache,
    store: BlobStore,
    message: dict[str, Any],
    ref: dict[str, Any],
    result: Result,
) -> None:
    """Keep the job's result in the cache's shared tier, when its input names a key, it
    is not a part (its job is kept whole) and it lost nothing (a partial result never is).
    Whatever fails here is logged, never raised: the job has succeeded all the same."""
    key = message["input"].get(CACHE_KEY)
    if key is None or message.get("parent_id") is not None or result.errors:
        return
    try:
        entry = capture(
            store,
            message["job_id"],
            ref,
            message["operation"],
            pages_processed(result.payload),
            cache.config.max_entry_bytes,
        )
        if entry is not None:
            cache.put(key, entry)
    except Exception as exc:  # noqa: BLE001 - the cache is an optimisation: the job is done
        log.warning("result not kept in the cache", job_id=message["job_id"], error=repr(exc))


def _sealed_part(operation: str, part: SplitPart, keys: SecretKeys) -> dict[str, Any]:
    """A part as the supervisor stores it: its secret parameters sealed, as the job's are."""
    return {
        "params": seal_params(part.operation or operation, part.params, keys),
        "operation": part.operation,
    }


def _preload_rules(settings: Settings) -> None:
    """Compile the guard's YARA rules once, before the first job needs them."""
    if settings.guard.enabled and settings.guard.yara_rules is not None:
        try:
            load_rules(settings.guard.yara_rules)
        except YaraUnavailable as exc:  # every scan reports it as a scan_error finding
            log.error("YARA rules unusable", error=str(exc))


def _security(
    store: BlobStore,
    job_id: str,
    message: dict[str, Any],
    source: InputFile,
    ctx: OperationContext,
) -> dict[str, Any] | None:
    """The job's ``security`` section (None: the guard is off, or the job is a part);
    raises :class:`~docworker.errors.ContentRefused` when the policy refuses a finding."""
    guard = ctx.settings.guard
    if not guard.enabled or message.get("parent_id") is not None:
        return None
    if message.get("parts") is not None:
        uri = BlobStore.result_uri(job_id, SECURITY_BLOB)
        if store.exists(uri):
            kept: dict[str, Any] = json.loads(store.read_bytes(uri))
            return kept
    files = [(item.path, item.name, item.mime) for item in (source, *source.others)]
    return security_section(files, guard, ctx.tenant)


def split_plan(settings: Settings) -> SplitPlan | None:
    """How far this service splits jobs, from its settings; None: it does not."""
    executor = settings.executor
    parts = executor.split_parts or (2 * executor.workers if executor.workers > 1 else 0)
    if parts < 2 or executor.split_min_pages < 1:
        return None
    return SplitPlan(parts=parts, min_pages=executor.split_min_pages)


def _other_input(stack: contextlib.ExitStack, store: BlobStore, spec: dict[str, Any]) -> InputFile:
    """One of the job's further input files, copied to local disk for the job's life."""
    suffix = PurePosixPath(spec.get("name") or "").suffix[:16]
    path = stack.enter_context(store.local_copy(spec["uri"], suffix))
    return InputFile(path, spec.get("name"), spec.get("mime"), spec.get("sha256"))


def _part_result(stack: contextlib.ExitStack, store: BlobStore, item: dict[str, Any]) -> PartResult:
    """A part's outcome as the supervisor described it, its payload and artifacts read."""
    ref = item.get("result")
    payload = read_payload(store, ref) if ref else None
    artifacts = {
        entry["name"]: stack.enter_context(
            store.local_copy(entry["uri"], PurePosixPath(entry["name"]).suffix[:16])
        )
        for entry in (ref or {}).get("artifacts") or []
    }
    return PartResult(
        part=int(item["part"]),
        params=item.get("params") or {},
        status=item["status"],
        payload=payload,
        artifacts=artifacts,
        error=item.get("error"),
    )


def _error(job_id: str, exc: DocworkerError) -> dict[str, Any]:
    return {"type": "error", "job_id": job_id, "error": exc.to_dict()}
