"""The exception tree: codes, transience, and the round trip through a job row."""

from __future__ import annotations

from docworker import errors


def test_codes_are_unique_and_registered() -> None:
    codes = [cls.code for cls in errors.ERROR_CLASSES.values()]
    assert len(codes) == len(set(codes))
    assert errors.error_class("password-required") is errors.PasswordRequired
    assert errors.error_class("no-such-code") is errors.DocworkerError


def test_input_errors_are_not_transient_and_service_errors_are() -> None:
    assert not errors.CorruptDocument("pdf", "bad xref").transient
    assert errors.EngineFailed("crashed").transient
    assert errors.JobTimeout(3).transient
    assert not errors.MemoryLimitExceeded(512).transient


def test_an_error_survives_the_trip_through_a_dict() -> None:
    original = errors.LimitExceeded("pages", 6000, 5000)
    rebuilt = errors.error_from_dict(original.to_dict())
    assert type(rebuilt) is errors.LimitExceeded
    assert rebuilt.detail == original.detail
    assert rebuilt.fields == {"limit": "pages", "value": 6000, "maximum": 5000}
    assert rebuilt.to_dict() == original.to_dict()
