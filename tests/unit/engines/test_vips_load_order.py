"""libvips loaded first must not break the libraries loaded after it (see engines/vips.py).

Each case runs in a fresh interpreter, since what a process has loaded cannot be
undone: libvips is loaded through the service's one import of it, then Pillow draws
text and writes a PNG, lxml reads a UTF-16 document of the corpus, pillow-heif writes and reads
a HEIC, and Tesseract reads the drawing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.scoring import corpus_root

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

SCRIPT = f"""
import io
import docworker.engines.vips  # libvips, as a worker that rendered an image has it
from PIL import Image, ImageDraw, ImageFont
from docworker.engines.ocr import recognize
font = ImageFont.truetype({str(FONT)!r}, 40)
image = Image.new("L", (1000, 160), 255)
ImageDraw.Draw(image).text((40, 50), "The quick brown fox jumps", font=font, fill=0)
buffer = io.BytesIO()
image.save(buffer, "PNG")
assert Image.open(io.BytesIO(buffer.getvalue())).size == (1000, 160)
import sys
from pathlib import Path
from docworker.formats.base import ParseContext
from docworker.formats.registry import parse_path
if len(sys.argv) > 1:  # lxml's own libxml2 tells UTF-16 by its byte order mark
    xml = parse_path(Path(sys.argv[1]), ParseContext())
    assert xml.metadata.encoding == "UTF-16LE", xml.metadata.encoding
import pillow_heif
pillow_heif.register_heif_opener()
heic = io.BytesIO()
Image.new("RGB", (64, 48), "red").save(heic, "HEIF")
assert Image.open(io.BytesIO(heic.getvalue())).size == (64, 48)
result = recognize(image, languages="eng")
print(" ".join(w.text for p in result.paragraphs for w in p.words))
"""


@pytest.mark.skipif(not FONT.is_file(), reason="DejaVu Sans (fonts-dejavu-core) missing")
def test_libraries_work_in_a_process_that_loaded_libvips_first() -> None:
    xml = corpus_root() / "web" / "factbook-utf16.xml"
    command = [sys.executable, "-c", SCRIPT, *([str(xml)] if xml.is_file() else [])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["The", "quick", "brown", "fox", "jumps"]
