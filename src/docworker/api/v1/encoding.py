"""How v1 wrote values in JSON: Go timestamps, Go duration strings, nanoseconds.

v1 was a Go service, and its clients parse what Go's encoders printed: times as
RFC 3339 with up to nine fractional digits (trailing zeros trimmed), durations
inside results as integer nanoseconds, and a few durations (``uptime``, the
cache ``ttl``) as Go duration strings such as ``1h30m45.5s`` or ``250ms``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

#: Go's zero time, which v1 printed for an unset time field it always emitted.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"

_SUB_SECOND_UNITS = (("ms", 1_000_000), ("µs", 1_000), ("ns", 1))


def v1_time(moment: datetime | None = None) -> str:
    """``moment`` (default: now) in UTC as Go's JSON encoder writes a time:
    ``2025-08-26T15:01:51.123456Z``, without a fraction when it is zero."""
    value = (moment or datetime.now(UTC)).astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def nanoseconds(seconds: float) -> int:
    """A duration in seconds as Go's ``time.Duration`` in JSON: integer nanoseconds."""
    return round(seconds * 1e9)


def go_duration(seconds: float) -> str:
    """A duration the way Go's ``Duration.String`` prints it.

    ``24h0m0s``, ``1h30m45.5s``, ``2m0s``, ``1.5s``; under a second ``250ms``,
    ``1.5µs`` or ``12ns``; zero is ``0s``. Precision is the nanosecond, as in Go.
    """
    total = nanoseconds(seconds)
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < 1_000_000_000:
        for unit, scale in _SUB_SECOND_UNITS:
            if total >= scale:
                return sign + _decimal(total, scale) + unit
    hours, rest = divmod(total, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _decimal(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _decimal(value: int, scale: int) -> str:
    """``value / scale`` exactly, without trailing zeros (``1500, 1000`` → ``1.5``)."""
    quotient = Decimal(value) / Decimal(scale)
    text = format(quotient, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
