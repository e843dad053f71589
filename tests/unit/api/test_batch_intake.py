"""A batch's intake: the names its children keep, the fields it refuses, and the
references it keeps spooled rather than in memory."""

from __future__ import annotations

import pytest

from docworker.api.batch_intake import child_name
from docworker.api.batch_sources import check_form_field, reference_list
from docworker.errors import InvalidParameter
from docworker.jobs.models import SpooledInputs


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("scans/2024/a.png", "scans/2024/a.png"),
        ("C:\\Users\\me\\a.docx", "Users/me/a.docx"),
        ("/etc/passwd", "etc/passwd"),
        ("../../x/./y.txt", "x/y.txt"),
        ("..", None),
        ("", None),
        (None, None),
    ],
)
def test_a_child_keeps_its_relative_path(sent: str | None, kept: str | None) -> None:
    assert child_name(sent) == kept


def test_a_long_name_keeps_its_end() -> None:
    name = child_name("d/" * 1000 + "end.txt")
    assert name is not None and len(name) == 1024 and name.endswith("/end.txt")


@pytest.mark.parametrize(
    ("field", "is_file"),
    [
        ("archives", True),
        ("url", False),
        ("uri", False),
        ("input_uris", False),
        ("files", True),
        ("file", False),
        ("archive", False),
        ("urls", True),
    ],
)
def test_fields_a_batch_does_not_take(field: str, is_file: bool) -> None:
    with pytest.raises(InvalidParameter) as refused:
        check_form_field(field, is_file)
    assert refused.value.fields["parameter"] == field


def test_a_password_comes_before_the_archives() -> None:
    check_form_field("password", False)
    check_form_field("archive", True)
    with pytest.raises(InvalidParameter, match="before the 'archive' parts"):
        check_form_field("password", False, after_archive=True)


@pytest.mark.parametrize(
    ("sent", "taken"),
    [
        (
            '["https://a.example/1.pdf", " https://a.example/2.pdf "]',
            ["https://a.example/1.pdf", "https://a.example/2.pdf"],
        ),
        (
            "https://a.example/1.pdf\r\n\n  https://a.example/2.pdf\n",
            ["https://a.example/1.pdf", "https://a.example/2.pdf"],
        ),
        ("[]", []),
    ],
)
def test_a_list_is_json_or_lines(sent: str, taken: list[str]) -> None:
    assert reference_list({"urls": sent}, "urls") == taken
    assert reference_list({}, "urls") == []


@pytest.mark.parametrize(
    ("sent", "named"),
    [
        ("[1]", "urls"),
        ('{"a": 1}', "urls"),
        ("[nope", "urls"),
        ('["a", ""]', "urls[1]"),
        ("x" * 3000, "urls[0]"),
    ],
)
def test_a_malformed_list_is_refused(sent: str, named: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        reference_list({"urls": sent}, "urls")
    assert refused.value.fields["parameter"] == named


def test_spooled_inputs_read_back_in_order_as_often_as_needed() -> None:
    inputs = SpooledInputs(max_memory=1024)
    for index in range(500):  # past max_memory: on disk
        inputs.append({"uri": f"blob://inputs/{index:064x}", "size": index, "name": f"{index}"})
    assert len(inputs) == 500 and inputs.total_bytes == sum(range(500))
    first = [each["name"] for each in inputs]
    assert first == [str(i) for i in range(500)] == [each["name"] for each in inputs]
    inputs.close()
