"""The ``extract`` operation's ``content`` parameter: validated, and carried to the HTML
reader through the parse context as the other reader options are."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from docworker.operations.base import InputFile, OperationContext
from docworker.operations.chunk import ChunkOperation
from docworker.operations.extract import ExtractOperation, ExtractParams, document_context

PAGE = Path(__file__).resolve().parents[2] / "fixtures" / "web" / "news-article.html"


def test_content_is_full_unless_asked() -> None:
    assert ExtractParams().content == "full"
    assert document_context(OperationContext(), ExtractParams()).html_content == "full"
    asked = ExtractParams(content="main")
    assert document_context(OperationContext(), asked).html_content == "main"


@pytest.mark.parametrize("value", ["article", "Main", "", None, 1])
def test_other_values_are_refused_naming_content(value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        ExtractParams.model_validate({"content": value})
    assert [error["loc"] for error in refused.value.errors()] == [("content",)]


def test_main_reaches_the_html_reader() -> None:
    extract = ExtractOperation()
    source = InputFile(PAGE, name=PAGE.name)
    main = extract.run(OperationContext(), source, ExtractParams(content="main")).payload
    full = extract.run(OperationContext(), source, ExtractParams()).payload
    assert "We use cookies" in full["content"]
    assert "We use cookies" not in main["content"]
    assert main["content"].startswith("# River otters return to the Tamar\n")
    assert main["metadata"]["extra"]["site_name"] == "The Valley Courier"
    assert "site_name" not in full["metadata"]["extra"]


def test_operations_without_the_parameter_read_the_whole_page() -> None:
    with pytest.raises(ValidationError):
        ChunkOperation.Params.model_validate({"content": "main"})
