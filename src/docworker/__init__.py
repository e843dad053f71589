"""Documents Worker: text, structure, chunks and conversions from documents."""

__version__ = "2.0.0.dev0"
