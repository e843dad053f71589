"""PDF: pdfium text in reading order, layout, tables, OCR of pages, metadata."""
