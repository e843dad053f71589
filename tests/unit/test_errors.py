"""The exception tree: codes, what a failed job becomes, and the round trip through a job row."""

from __future__ import annotations

from docworker import errors


def test_codes_are_unique_and_registered() -> None:
    codes = [cls.code for cls in errors.ERROR_CLASSES.values()]
    assert len(codes) == len(set(codes))
    assert errors.error_class("password-required") is errors.PasswordRequired
    assert errors.error_class("no-such-code") is errors.DocworkerError


def test_only_service_faults_are_retried_and_limits_bury_the_job() -> None:
    retry, dead, failed = errors.AfterFailure
    assert errors.CorruptDocument("pdf", "bad xref").after_failure is failed
    assert errors.SecretUnreadable().after_failure is failed
    assert errors.EngineFailed("crashed").after_failure is retry
    assert errors.DependencyDown("store unreachable").after_failure is retry
    assert errors.JobTimeout(3).after_failure is dead
    assert errors.EngineTimeout("LibreOffice", 120).after_failure is dead
    assert errors.MemoryLimitExceeded(512).after_failure is dead
    # A code no class has (an older or newer service's) fails the job.
    assert errors.error_class("no-such-code").after_failure is failed


def test_an_error_survives_the_trip_through_a_dict() -> None:
    original = errors.LimitExceeded("pages", 6000, 5000)
    rebuilt = errors.error_from_dict(original.to_dict())
    assert type(rebuilt) is errors.LimitExceeded
    assert rebuilt.detail == original.detail
    assert rebuilt.fields == {"limit": "pages", "value": 6000, "maximum": 5000}
    assert rebuilt.to_dict() == original.to_dict()


def test_limits_print_whole_numbers_in_full() -> None:
    too_large = errors.PayloadTooLarge("request body size", 52_428_801, 52_428_800)
    assert too_large.detail == (
        "request body size is 52428801, over the configured limit of 52428800"
    )
    assert errors.JobTimeout(1_000_000).detail.endswith("limit of 1000000 s")
    assert errors.EngineTimeout("tesseract", 2.5).detail.endswith("limit of 2.5 s")
    assert errors.figure(0.25) == "0.25" and errors.figure(3.0) == "3"


def test_the_first_validation_error_names_its_field() -> None:
    first = errors.InvalidParameter.first_of(
        [{"loc": ("options", 0), "msg": "bad"}, {"loc": ("other",), "msg": "worse"}], "body"
    )
    assert first.fields == {"parameter": "options.0"}
    assert first.detail == "parameter 'options.0': bad"
    whole = errors.InvalidParameter.first_of([{"loc": (), "msg": "not an object"}], "body")
    assert whole.fields == {"parameter": "body"}
