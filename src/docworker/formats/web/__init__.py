"""Web pages and books: HTML/XHTML and EPUB."""
