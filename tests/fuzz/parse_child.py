"""The child process of the parser fuzzer: parses what it is sent, says how that ended.

Run as ``python -m tests.fuzz.parse_child MEMORY_MB [FOLDER]``. Requests come on stdin, one
JSON header line (``{"size", "mime", "name"}``) followed by ``size`` bytes; each gets
one JSON line back on the original stdout. Anything a library prints goes to stderr.
The input goes through the project's own entry point, :func:`parse_path` with the
default :class:`ParseLimits`, and the document is then rendered as the ``extract``
operation does (Markdown and JSON); web pages, e-mails and EPUBs are read again for
their main content alone (``content=main``). No OCR and no LibreOffice run here: parsers that
need them must refuse or degrade clearly.

Outcomes: ``parsed``; ``refused`` (an input error, with its code); ``unexpected``
(any other exception, with its traceback); ``memory`` (a MemoryError under the memory
cap). A hang or a crash is seen by the parent (no answer in time, or no child).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

#: Formats whose HTML the reader can take for its main content alone.
_READ_AS_PAGES = frozenset(["html", "epub", "eml", "msg"])


def _serve(memory_mb: int, folder: Path) -> None:
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # what libraries print must not mix with the answers
    cap = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    import docworker.engines.vips  # noqa: F401 - the import order the service keeps
    from docworker.errors import DocworkerError, InputError
    from docworker.formats.base import ParseContext, ParseLimits
    from docworker.formats.registry import parse_path, preload
    from docworker.render.document import OutputFormat, render

    preload()
    folder.mkdir(parents=True, exist_ok=True)
    answers.write(b'{"outcome": "ready"}\n')
    requests = sys.stdin.buffer
    while header := requests.readline():
        request = json.loads(header)
        data = requests.read(request["size"])
        path = folder / f"input{Path(request.get('name') or '').suffix[:16]}"
        path.write_bytes(data)
        answer: dict[str, Any]
        try:
            document = parse_path(
                path, ParseContext(limits=ParseLimits()), name=request["name"], mime=request["mime"]
            )
            render(document, OutputFormat.MARKDOWN)
            render(document, OutputFormat.JSON)
            if document.format in _READ_AS_PAGES:
                # Their HTML read again for its main content alone (content=main).
                main = ParseContext(limits=ParseLimits(), html_content="main")
                document = parse_path(path, main, name=request["name"], mime=request["mime"])
                render(document, OutputFormat.MARKDOWN)
            answer = {"outcome": "parsed"}
        except InputError as exc:
            answer = {"outcome": "refused", "code": exc.code}
        except DocworkerError as exc:
            answer = {"outcome": "unexpected", "error": f"{type(exc).__name__}: {exc.detail}"}
        except MemoryError:
            answer = {"outcome": "memory"}
        except BaseException:  # noqa: BLE001 - every other ending is what the fuzzer looks for
            answer = {"outcome": "unexpected", "error": traceback.format_exc(limit=-12)}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
        answers.write(json.dumps(answer).encode() + b"\n")


if __name__ == "__main__":
    given = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="docworker-fuzz-")
    _serve(int(sys.argv[1]), Path(given))
