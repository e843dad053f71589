"""Writers: every output file made from a document or its pages (text, Markdown, HTML,
JSON, searchable PDF, PDF, images, DOCX)."""
