"""Image downsampling of :mod:`docworker.render.pdf_compress` on PDFs the tests make: the
size an image is drawn at comes from the content streams (through form XObjects), and
an image is resampled to the resolution asked for, never above it, never bigger."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import pikepdf
import pypdfium2
from PIL import Image

from docworker.render.pdf_compress import Resampling, downsample_images, lossless_options


def _noise_image(pdf: pikepdf.Pdf, width: int, height: int) -> pikepdf.Stream:
    """An RGB image of noise over a gradient, Flate-compressed: a photo-like image that
    lossless compression does not shrink much."""
    noise = Image.effect_noise((width, height), 40)
    gradient = Image.linear_gradient("L").resize((width, height))
    picture = Image.merge("RGB", (noise, gradient, noise))
    stream = pikepdf.Stream(pdf, zlib.compress(picture.tobytes()))
    stream.Type, stream.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    stream.Width, stream.Height = width, height
    stream.ColorSpace, stream.BitsPerComponent = pikepdf.Name.DeviceRGB, 8
    stream.Filter = pikepdf.Name.FlateDecode
    return stream


def _make_pdf(path: Path) -> None:
    """Page 1 draws image A over 2 × 2 inches; page 2 draws image B through a form
    XObject scaled by one half (1 × 1 inch on the page) and image A small (0.5 inch)."""
    pdf = pikepdf.new()
    a = pdf.make_indirect(_noise_image(pdf, 600, 600))
    b = pdf.make_indirect(_noise_image(pdf, 450, 450))
    form = pikepdf.Stream(pdf, b"q 144 0 0 144 0 0 cm /B Do Q")
    form.Type, form.Subtype = pikepdf.Name.XObject, pikepdf.Name.Form
    form.BBox = [0, 0, 144, 144]
    form.Matrix = [0.5, 0, 0, 0.5, 0, 0]
    form.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(B=b))
    pdf.add_blank_page(page_size=(612, 792))
    pdf.add_blank_page(page_size=(612, 792))
    first, second = pdf.pages
    first.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(A=a))
    first.Contents = pdf.make_stream(b"q 144 0 0 144 72 72 cm /A Do Q")
    second.Resources = pikepdf.Dictionary(
        XObject=pikepdf.Dictionary(F=pdf.make_indirect(form), A=a)
    )
    second.Contents = pdf.make_stream(b"q 1 0 0 1 100 100 cm /F Do Q q 36 0 0 36 0 0 cm /A Do Q")
    pdf.save(path)


def test_images_are_resampled_to_the_resolution_they_are_drawn_at(tmp_path: Path) -> None:
    source, target = tmp_path / "images.pdf", tmp_path / "smaller.pdf"
    _make_pdf(source)
    with pikepdf.open(source) as pdf:
        report = downsample_images(pdf, Resampling(max_dpi=150, quality=80))
        pdf.save(target, **lossless_options())
    assert report.seen == 2 and report.resampled == 2
    with pikepdf.open(target) as pdf:
        first = pdf.pages[0].Resources.XObject.A
        inner = pdf.pages[1].Resources.XObject.F.Resources.XObject.B
        # A: its largest use is 2 inches → 300 px; B: 1 inch on the page → 150 px.
        assert (int(first.Width), int(first.Height)) == (300, 300)
        assert (int(inner.Width), int(inner.Height)) == (150, 150)
        assert first.Filter == pikepdf.Name.DCTDecode
        decoded = Image.open(io.BytesIO(first.read_raw_bytes()))
        assert decoded.format == "JPEG" and decoded.size == (300, 300)
    assert target.stat().st_size < source.stat().st_size / 4
    rendered = pypdfium2.PdfDocument(str(target))
    try:
        assert len(rendered) == 2
        assert rendered[0].render(scale=0.25).to_pil().size == (153, 198)
    finally:
        rendered.close()


def test_images_at_or_under_the_resolution_and_over_the_pixel_limit_are_kept(
    tmp_path: Path,
) -> None:
    source = tmp_path / "images.pdf"
    _make_pdf(source)
    with pikepdf.open(source) as pdf:
        high = downsample_images(pdf, Resampling(max_dpi=600))
        assert high.resampled == 0 and high.skipped == {"at or under the resolution": 2}
        capped = downsample_images(pdf, Resampling(max_dpi=72, max_pixels=300_000))
        assert capped.skipped == {"over the pixel limit": 1}
        assert capped.resampled == 1
