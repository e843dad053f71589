"""Pieces of the health routes that v1 clients parse."""

from __future__ import annotations

import pytest

from docworker.api.v1.encoding import go_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.25, "250ms"),
        (1.5, "1.5s"),
        (120, "2m0s"),
        (86400, "24h0m0s"),
        (5445.5, "1h30m45.5s"),
        (0.0000015, "1.5µs"),
        (3723.123456789, "1h2m3.123456789s"),
    ],
)
def test_durations_print_as_go_prints_them(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
