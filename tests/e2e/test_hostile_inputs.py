"""Small hostile inputs through the real server: each answered with a problem naming the
fault, or with its text, and the job ended; never a job held running, a worker lost, or
an empty answer where the input had text. (Files that need no server, the guard's and
the archives', are in tests/unit/guard, tests/fuzz and test_hostile_walk.py.)"""

from __future__ import annotations

import io
import json
import socket
import time
import zipfile

import httpx
import pikepdf
import pytest

from tests.e2e.server import Server

PROBLEM = "application/problem+json"
SHEET = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE = "http://schemas.openxmlformats.org/package/2006/relationships"


def _xlsx(sheet_data: str) -> bytes:
    """A workbook of one sheet whose ``sheetData`` is ``sheet_data``."""
    types = "http://schemas.openxmlformats.org/package/2006/content-types"
    main = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    parts = {
        "[Content_Types].xml": f'<Types xmlns="{types}">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{main}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{main}.worksheet+xml"/>'
        "</Types>",
        "_rels/.rels": f'<Relationships xmlns="{PACKAGE}"><Relationship Id="rId1" '
        f'Type="{RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{SHEET}" xmlns:r="{RELS}"><sheets>'
        '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{PACKAGE}"><Relationship '
        f'Id="rId1" Type="{RELS}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{SHEET}"><sheetData>{sheet_data}'
        "</sheetData></worksheet>",
    }
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as package:
        for name, text in parts.items():
            package.writestr(name, text)
    return data.getvalue()


def _pdf(pages: int) -> bytes:
    data = io.BytesIO()
    with pikepdf.new() as doc:
        for _ in range(pages):
            doc.add_blank_page()
        doc.save(data)
    return data.getvalue()


SPARSE = _xlsx(
    '<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c></row>'
    '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
)

MANY_PARTS = b"Content-Type: multipart/mixed; boundary=b\n\n" + b"--b\n\nx\n" * 50_000 + b"--b--\n"
MANY_WORDS = b"Subject: " + b"=?utf-8?q?x?= " * 20_000 + b"\n\nhi\n"
WIDE_TABLE = b"".join(b"|" + cell * 100_000 + b"\n" for cell in (b" a |", b"---|", b" 1 |"))


@pytest.mark.parametrize(
    ("route", "name", "content", "form", "code", "parameter"),
    [
        # Held a worker until the job timeout, attempt after attempt.
        (
            "/api/v2/render",
            "a.pdf",
            _pdf(1),
            {"width": "1" + "0" * 30},
            "invalid-parameter",
            "width",
        ),
        ("/api/v2/pdf/split", "a.pdf", _pdf(1), {"every": "9" * 25}, "invalid-parameter", "every"),
        # Answered 200 with no text.
        ("/api/v2/extract", "a.pdf", _pdf(2), {"pages": "5"}, "invalid-parameter", "pages"),
        ("/api/v2/ocr", "a.pdf", _pdf(2), {"pages": "3-"}, "invalid-parameter", "pages"),
        # Made calamine abort the worker: 503 engine-failed, and retried.
        ("/api/v2/extract", "sparse.xlsx", SPARSE, {}, "limit-exceeded", None),
        # Read for 23 s, 11 s and 5.7 s, bounded only by the job timeout.
        ("/api/v2/extract", "parts.eml", MANY_PARTS, {}, "limit-exceeded", "MIME parts"),
        (
            "/api/v2/extract",
            "words.eml",
            MANY_WORDS,
            {},
            "limit-exceeded",
            "encoded words in a header",
        ),
        ("/api/v2/extract", "wide.md", WIDE_TABLE, {}, "limit-exceeded", "table columns"),
    ],
    ids=[
        "huge-width",
        "huge-every",
        "pages-past-the-end",
        "ocr-pages-past-the-end",
        "sparse-xlsx",
        "mime-parts",
        "encoded-words",
        "markdown-columns",
    ],
)
def test_hostile_inputs_are_refused_at_once(
    client: httpx.Client,
    route: str,
    name: str,
    content: bytes,
    form: dict[str, str],
    code: str,
    parameter: str | None,
) -> None:
    started = time.monotonic()
    answer = client.post(route, files={"file": (name, content)}, data=form, params={"wait": 30})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = answer.json()
    assert body["code"] == code, body
    if parameter is not None:
        assert body["parameter" if code == "invalid-parameter" else "limit"] == parameter
    assert time.monotonic() - started < 20


def test_deeply_nested_markdown_keeps_its_text(client: httpx.Client) -> None:
    page = ">" * 30 + " quoted\n\n" + "".join("  " * i + f"- item{i}\n" for i in range(12))
    answer = client.post("/api/v2/extract", files={"file": ("deep.md", page.encode())})
    assert answer.status_code == 200, answer.text
    content = answer.json()["content"]
    assert "quoted" in content and "item11" in content


@pytest.mark.parametrize(
    ("path", "lengths", "media_type"),
    [
        ("/api/v2/extract", ["-1"], "application/problem+json"),
        ("/api/v2/extract", ["5", "6"], "application/problem+json"),
        # v1's framework answered in plain text, and so does uvicorn.
        ("/api/v1/extract", ["-1"], "text/plain"),
    ],
    ids=["negative", "conflicting", "v1"],
)
def test_a_request_that_is_not_valid_http_is_refused_in_the_routes_shape(
    server: Server, path: str, lengths: list[str], media_type: str
) -> None:
    """Refused by the HTTP parser before the application sees it, the connection closed."""
    declared = "".join(f"Content-Length: {length}\r\n" for length in lengths)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{declared}\r\nhello".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert f"content-type: {media_type}".encode() in head.lower()
    if media_type == PROBLEM:
        problem = json.loads(body)
        assert (problem["status"], problem["type"]) == (
            400,
            "urn:docworker:problem:invalid-request",
        )
