"""Images: metadata, EXIF and OCR text."""
