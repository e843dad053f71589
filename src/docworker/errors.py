"""The one exception tree of the service, and its serialised form.

Every error the service raises on purpose is a :class:`DocworkerError`::

    DocworkerError
    ├── InputError                 the request or the document is at fault (4xx)
    │   ├── UnsupportedFormat      no parser for the detected type
    │   ├── CorruptDocument        the parser could not read the file
    │   ├── PasswordRequired       encrypted, and no password was given
    │   │   └── WrongPassword      encrypted, and the password did not open it
    │   ├── LimitExceeded          a configured limit (size, pages, ...) was passed
    │   ├── HostileInput           the file looks like an attack (bomb, traversal)
    │   │   ├── ArchiveBomb        an archive made to expand without end (overlap, quine)
    │   │   └── ContentRefused     the guard's policy refuses what the scan found
    │   ├── ProcessingFailed       a parser failed in a way it did not foresee
    │   ├── InvalidParameter       a parameter was missing or out of range
    │   ├── NotFound               a job, result or operation does not exist
    │   ├── Conflict               the request contradicts the stored state
    │   ├── Unauthorized           no API key, or one that is not valid
    │   ├── Forbidden              the API key lacks the scope the request needs
    │   │   └── FeatureDisabled    a feature flag keeps the caller from it
    │   └── RateLimited            too many requests, or a quota is spent (429)
    │       ├── QuotaExceeded      a daily quota of the key is spent
    │       └── ActiveJobsLimit    the tenant has as many jobs queued or running as allowed
    └── ServiceError               the service is at fault (5xx / 429)
        ├── EngineFailed           an external engine or worker crashed
        ├── EngineTimeout          an external engine took longer than its limit
        ├── JobTimeout             the job ran past its wall-clock limit
        ├── MemoryLimitExceeded    the job's worker passed its memory limit
        ├── QueueFull              too much work queued; retry later
        ├── InsufficientStorage    the disk is too full to accept work; retry later
        ├── ServiceDraining        the service is stopping and takes no new work
        ├── DependencyDown         a database, store or engine is unreachable
        ├── EngineUnavailable      an engine's circuit breaker is open: it fails fast
        └── SecretUnreadable       no configured key opens a stored secret

Errors carry fields, not only strings, and travel between processes as the
plain mapping built by :meth:`DocworkerError.to_dict` (a worker process stores
it in the job row; the API turns it into RFC 9457 problem+json by ``code``).

What becomes of a job whose attempt ended with an error is the error class's
:attr:`~DocworkerError.after_failure`, decided here and nowhere else (the executor
applies it, by the stored ``code``):

* ``retry``: every ``ServiceError`` but those below (an engine or the worker crashed,
  a dependency was down, an engine's circuit breaker was open): the fault was the
  service's, and a later attempt may succeed. The job is queued again after a delay
  that doubles with each attempt, with jitter (``executor.retry_delay`` to
  ``executor.retry_max_delay``, see :mod:`docworker.jobs.retries`), while it has
  attempts left (``executor.max_attempts``), then ``dead``.
* ``dead`` at once: ``JobTimeout``, ``EngineTimeout`` and ``MemoryLimitExceeded``.
  The attempt ran past a limit of time or memory, and the same document would run
  past it again, holding a worker for the whole limit each time: a poison document.
  It goes on the dead-letter list after one attempt, its reason in its error, to be
  looked at (and run again with higher limits, if it deserves them). An engine's
  time limit counts as the job's: the engine was killed and starts afresh for the
  next job, so what timed out was this document's work, not the engine.
* ``failed`` at once: every ``InputError`` (every attempt would fail the same way),
  and ``SecretUnreadable`` (no key the service holds opens the job's secrets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar


def figure(value: float) -> str:
    """A number as a message prints it: a whole number in full (``52428800``, never
    ``5.2429e+07``), any other to the few digits that matter (``0.25``)."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:g}"


class AfterFailure(StrEnum):
    """What becomes of a job whose attempt ended with an error (see the module docstring)."""

    #: Queued again while the job has attempts left, then ``dead``.
    RETRY = "retry"
    #: ``dead`` at once: the document would fail the same way again (a poison document).
    DEAD = "dead"
    #: ``failed`` at once: the input is at fault.
    FAILED = "failed"


class DocworkerError(Exception):
    """Root of every error the service raises on purpose."""

    code: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"
    #: What becomes of a job whose attempt ends with this error.
    after_failure: ClassVar[AfterFailure] = AfterFailure.FAILED

    def __init__(self, detail: str, **fields: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields: dict[str, Any] = fields

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored with a failed job and rebuilt by :func:`from_dict`."""
        return {"code": self.code, "title": self.title, "detail": self.detail, **self.fields}


class InputError(DocworkerError):
    """The request or the document is at fault; retrying the same input fails again."""

    code = "bad-input"
    title = "Bad input"


class UnsupportedFormat(InputError):
    code = "unsupported-format"
    title = "Unsupported format"

    def __init__(self, mime: str, detail: str | None = None) -> None:
        super().__init__(detail or f"no parser handles documents of type {mime}", mime=mime)


class CorruptDocument(InputError):
    code = "corrupt-document"
    title = "Corrupt document"

    def __init__(self, fmt: str, reason: str) -> None:
        super().__init__(f"the {fmt} document could not be read: {reason}", format=fmt)


class PasswordRequired(InputError):
    code = "password-required"
    title = "Password required"

    def __init__(self, fmt: str, detail: str | None = None) -> None:
        super().__init__(
            detail or f"the {fmt} document is encrypted: pass its password as 'password'",
            format=fmt,
        )


class WrongPassword(PasswordRequired):
    code = "wrong-password"
    title = "Wrong password"

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt, f"the password given does not open the {fmt} document")


class LimitExceeded(InputError):
    code = "limit-exceeded"
    title = "Limit exceeded"

    def __init__(self, limit: str, value: float, maximum: float, detail: str | None = None) -> None:
        super().__init__(
            detail or f"{limit} is {figure(value)}, over the configured limit of {figure(maximum)}",
            limit=limit,
            value=value,
            maximum=maximum,
        )


class PayloadTooLarge(LimitExceeded):
    code = "payload-too-large"
    title = "Payload too large"


class HostileInput(InputError):
    code = "hostile-input"
    title = "Hostile input refused"


class ArchiveBomb(HostileInput):
    """An archive made to expand without end: entries sharing one compressed kernel, an
    archive holding itself (a quine). Unlike a hostile name, the whole archive is at
    fault, not one entry."""


class ContentRefused(HostileInput):
    """The hostile-content guard found what its policy refuses (EICAR, a YARA match, ...).

    ``findings`` are the refused findings as the result's ``security`` section lists
    them (``{"kind", "detail", "location"?, "count"}``).
    """

    code = "content-refused"
    title = "Content refused"

    def __init__(self, findings: list[dict[str, Any]]) -> None:
        named = "; ".join(f"{f['kind']} ({f['detail']})" for f in findings[:5])
        more = f" and {len(findings) - 5} more" if len(findings) > 5 else ""
        super().__init__(
            f"the input was refused by the content policy: {named}{more}", findings=findings
        )


class ProcessingFailed(InputError):
    """A parser or library failed unexpectedly on this input.

    Such failures come from documents that a library cannot cope with far more
    often than from anything else, so they answer 422 and are not retried; the
    traceback goes to the log, where the fault can be found and fixed.
    """

    code = "processing-failed"
    title = "Processing failed"


class InvalidParameter(InputError):
    code = "invalid-parameter"
    title = "Invalid parameter"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"parameter '{name}': {reason}", parameter=name)

    @classmethod
    def first_of(cls, errors: Sequence[Mapping[str, Any]], whole: str) -> InvalidParameter:
        """The first of a validation's ``errors`` (pydantic's ``exc.errors()``), named by its
        location; ``whole`` names the value itself when the fault is not in one field."""
        if not errors:
            return cls(whole, "invalid")
        first = errors[0]
        name = ".".join(str(part) for part in first.get("loc", ())) or whole
        return cls(name, str(first.get("msg", "invalid")))


class NotFound(InputError):
    code = "not-found"
    title = "Not found"

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} '{ident}' does not exist", kind=kind, id=ident)


class Conflict(InputError):
    code = "conflict"
    title = "Conflict"


class Unauthorized(InputError):
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(InputError):
    code = "forbidden"
    title = "Forbidden"


class FeatureDisabled(Forbidden):
    """A feature flag keeps the caller from what it asked for (docs/flags.md)."""

    code = "feature-disabled"
    title = "Feature disabled"

    def __init__(self, flag: str, what: str) -> None:
        super().__init__(
            f"{what} is not enabled for this caller (feature flag '{flag}')", flag=flag
        )


class RateLimited(InputError):
    """The caller sent more than its limit allows; ``retry_after`` says when to retry."""

    code = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int, **fields: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **fields)


class QuotaExceeded(RateLimited):
    code = "quota-exceeded"
    title = "Quota exceeded"


class ActiveJobsLimit(RateLimited):
    """A tenant may have only so many jobs queued or running at once (so that it cannot
    fill the queue); a new one waits until some of them end."""

    code = "active-jobs-limit"
    title = "Too many active jobs"

    def __init__(self, active: int, maximum: int, retry_after: int = 5) -> None:
        super().__init__(
            f"the tenant has {active} jobs queued or running and may have at most {maximum} "
            "at once: submit again when some have finished",
            retry_after=retry_after,
            active_jobs=active,
            max_active_jobs=maximum,
        )


class ServiceError(DocworkerError):
    """The service is at fault; the same request may succeed later."""

    code = "service-error"
    title = "Service error"
    after_failure = AfterFailure.RETRY


class EngineFailed(ServiceError):
    code = "engine-failed"
    title = "Engine failed"


class EngineTimeout(ServiceError):
    code = "engine-timeout"
    title = "Engine timed out"
    after_failure = AfterFailure.DEAD

    def __init__(self, engine: str, seconds: float) -> None:
        super().__init__(
            f"{engine} took longer than its limit of {figure(seconds)} s",
            engine=engine,
            limit_seconds=seconds,
        )


class JobTimeout(ServiceError):
    code = "job-timeout"
    title = "Job timed out"
    after_failure = AfterFailure.DEAD

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the job ran longer than its limit of {figure(seconds)} s", limit_seconds=seconds
        )


class MemoryLimitExceeded(ServiceError):
    code = "memory-limit-exceeded"
    title = "Memory limit exceeded"
    after_failure = AfterFailure.DEAD

    def __init__(self, limit_mb: float) -> None:
        super().__init__(
            f"the job's worker used more than its limit of {figure(limit_mb)} MiB",
            limit_mb=limit_mb,
        )


class QueueFull(ServiceError):
    """Too much work waits already (for an engine, or in the job's family); ``fields`` say
    which queue and how full it is."""

    code = "queue-full"
    title = "Queue full"

    def __init__(self, detail: str, retry_after: int = 5, **fields: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **fields)


class InsufficientStorage(ServiceError):
    code = "insufficient-storage"
    title = "Insufficient storage"

    def __init__(self, path: str, free_mb: float, floor_mb: float, retry_after: int = 60) -> None:
        super().__init__(
            f"the disk holding {path} has {free_mb:.0f} MiB free, under the floor of "
            f"{floor_mb:.0f} MiB (server.min_free_disk_mb): no work is accepted until "
            "space is freed; retry later",
            free_mb=round(free_mb),
            floor_mb=floor_mb,
            retry_after=retry_after,
        )


class ServiceDraining(ServiceError):
    """The service is stopping: it finishes the work it holds and takes no more, so a
    client sends new work again later (to another replica, or to this one restarted)."""

    code = "draining"
    title = "Service draining"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "the service is shutting down: it finishes the jobs it runs and accepts no new "
            "ones; submit again later",
            retry_after=retry_after,
        )


class DependencyDown(ServiceError):
    code = "dependency-down"
    title = "Dependency unavailable"


class EngineUnavailable(ServiceError):
    """An engine failed so many times in a row that its circuit breaker opened: work that
    needs it is refused at once, without trying it, until the breaker's cool-down has
    passed (see :mod:`docworker.engines.breaker`)."""

    code = "engine-unavailable"
    title = "Engine unavailable"

    def __init__(self, engine: str, retry_after: int, failures: int) -> None:
        super().__init__(
            f"{engine} failed {failures} times in a row and is not used for "
            f"{retry_after} s: work that needs it is refused until then",
            engine=engine,
            retry_after=retry_after,
            failures=failures,
        )


class SecretUnreadable(ServiceError):
    """A sealed secret parameter of a job that none of ``secrets.keys`` opens (the key
    that sealed it was removed before ``docworker secrets rotate`` re-sealed it)."""

    code = "secret-unreadable"
    title = "Secret unreadable"
    # The same keys will not open it on the next attempt either.
    after_failure = AfterFailure.FAILED

    def __init__(self) -> None:
        super().__init__(
            "a secret parameter of the job was sealed with a key the service no longer has "
            "(secrets.keys)"
        )


def _all_subclasses(cls: type[DocworkerError]) -> list[type[DocworkerError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


ERROR_CLASSES: dict[str, type[DocworkerError]] = {
    c.code: c for c in _all_subclasses(DocworkerError)
}


def error_class(code: str) -> type[DocworkerError]:
    """The class registered for ``code``; the root class when the code is unknown."""
    return ERROR_CLASSES.get(code, DocworkerError)


def error_from_dict(data: dict[str, Any]) -> DocworkerError:
    """Rebuild the error that :meth:`DocworkerError.to_dict` stored (in another process).

    The subclasses' constructors take different arguments, so the instance is made
    without them and given the stored detail and fields directly.
    """
    cls = error_class(str(data.get("code")))
    exc = cls.__new__(cls)
    fields = {k: v for k, v in data.items() if k not in {"code", "title", "detail"}}
    DocworkerError.__init__(exc, str(data.get("detail", "")), **fields)
    return exc
