"""How the local executor starts a worker process: forked from a preloaded template.

A worker started in a fresh interpreter ("spawn") imports the service's modules, every
parser and engine binding among them, before it can take a job: over a CPU-second
each time a worker is replaced (after ``executor.jobs_per_worker`` jobs, or after a
job killed at its limits). With ``executor.worker_start`` "forkserver" (the default)
workers are forked instead from a template process, multiprocessing's fork server,
that imported those modules once (:func:`~docworker.jobs.preload.preloaded_modules`): a
replaced worker is ready in milliseconds (``bench/worker_start.py`` measures both).

What the template holds, and what it does not:

* modules only. It is started, once per service process, by the first worker's
  start (``docworker serve`` starts it before importing its own modules, so that the
  two import side by side: :mod:`docworker.launch`), from the service's interpreter
  and its import path; no settings, keys,
  database or network connections are made in it, so every executor of the process
  (tests run several, each with its own settings) forks from the same template and
  sends its worker the settings, the keys, the environment and the work folder
  over the pipe that starts it, as "spawn" does;
* no threads when it forks. Importing numpy and OpenCV starts OpenBLAS's thread
  pools, but OpenBLAS stops its pools before every fork (its ``pthread_atfork``
  handler) and a worker starts its own when it first needs them; nothing else
  starts a thread at import;
* not the service's lifetime. The fork server ends when its pipe from the service
  closes and no worker holds it any more: the service gone, its workers end
  (:func:`~docworker.jobs.worker.worker_main` watches a lifeline pipe whose only
  writing end the supervisor holds), and the template with them.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from docworker.config import Settings, WorkerStart
from docworker.jobs.preload import forkserver_context
from docworker.jobs.worker import worker_main
from docworker.sealing import SecretKeys


def worker_context(start: WorkerStart) -> BaseContext:
    """The multiprocessing context workers are started with."""
    if start is WorkerStart.FORKSERVER:
        return forkserver_context()
    return multiprocessing.get_context(start.value)


#: The secrets of the settings a worker needs (the stores' credentials), by field of
#: ``storage.s3``: the settings' JSON form masks them.
_STORAGE_SECRETS = ("secret_access_key", "session_token")


def worker_config(settings: Settings, keys: SecretKeys) -> dict[str, Any]:
    """What each worker of an executor is sent when it starts: the settings as JSON, and
    outside them (their JSON form masks secrets) the keys that open the jobs' secret
    parameters, the credentials of the stores and the trace collector's headers
    (:func:`~docworker.jobs.worker.worker_settings` puts them back)."""
    s3 = settings.storage.s3
    headers = settings.tracing.headers
    return {
        "settings": settings.model_dump(mode="json", exclude={"secrets"}),
        "secret_keys": keys.export(),
        "storage_secrets": {
            name: value.get_secret_value()
            for name in _STORAGE_SECRETS
            if (value := getattr(s3, name)) is not None
        },
        "tracing_headers": headers.get_secret_value() if headers is not None else None,
    }


def start_worker(
    context: BaseContext, config: dict[str, Any], folder: Path
) -> tuple[BaseProcess, Connection, Connection]:
    """Start one worker process working in ``folder``; returns the process, the job
    pipe and the writing end of its lifeline (closing it ends the worker).

    The worker gets the service's environment as it is now (a forked worker would
    otherwise have the template's, as it was when the template started).
    """
    ours, theirs = context.Pipe(duplex=True)
    lifeline_r, lifeline_w = context.Pipe(duplex=False)
    process = context.Process(  # type: ignore[attr-defined]
        target=worker_main,
        args=(theirs, lifeline_r, config | {"environ": dict(os.environ)}, str(folder)),
        name="docworker-worker",
        daemon=True,
    )
    try:
        process.start()
    except BaseException:
        ours.close()
        lifeline_w.close()
        raise
    finally:
        theirs.close()
        lifeline_r.close()
    return process, ours, lifeline_w
