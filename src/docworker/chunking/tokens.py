"""Token counting for chunk sizes: OpenAI's BPE encodings, or plain characters.

Every size bound of the chunkers is counted by a :class:`TokenCounter` on exactly
the text a chunk carries. The BPE encodings come from bpe-openai, which ships
``cl100k_base`` and ``o200k_base`` with the package, so nothing is downloaded.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import ModuleType


class TokenizerName(StrEnum):
    #: GPT-4 / GPT-3.5 and OpenAI's ``text-embedding-3`` models.
    CL100K = "cl100k"
    #: GPT-4o and later OpenAI models.
    O200K = "o200k"
    #: Characters (code points): sizes are lengths of the text.
    CHARS = "chars"


_ENCODINGS = {TokenizerName.CL100K: "cl100k_base", TokenizerName.O200K: "o200k_base"}


class TokenCounter:
    """Counts tokens of one encoding, or characters when ``encoding`` is None.

    The Rust tokenizer inside bpe-openai is used directly (see :func:`_rust_tokenizers`):
    the package's tiktoken-style ``Encoding`` wrapper also refuses texts of more than
    200,000 tokens, which a whole document easily has.
    """

    def __init__(self, name: TokenizerName) -> None:
        self.name = name
        encoding = _ENCODINGS.get(name)
        self._bpe = _rust_tokenizers().tokenizer_for_encoding(encoding) if encoding else None

    def count(self, text: str) -> int:
        """The number of tokens (or characters) of ``text``."""
        if self._bpe is None:
            return len(text)
        try:
            return int(self._bpe.count(text))
        except UnicodeEncodeError:
            return int(self._bpe.count(_without_surrogates(text)))

    def fits(self, text: str, limit: int) -> bool:
        """Whether ``text`` has at most ``limit`` tokens; stops counting past the limit."""
        if self._bpe is None:
            return len(text) <= limit
        try:
            return self._bpe.count_till_limit(text, limit) is not None
        except UnicodeEncodeError:
            return self._bpe.count_till_limit(_without_surrogates(text), limit) is not None

    def pieces(self, text: str) -> list[str]:
        """``text`` cut where the encoding never merges across: the pieces join back to
        ``text`` and their token counts add up to the count of ``text``.

        For characters, every character is a piece.
        """
        if self._bpe is None:
            return list(text)
        try:
            return list(self._bpe.pretokenize(text))
        except UnicodeEncodeError:
            return list(self._bpe.pretokenize(_without_surrogates(text)))

    def longest_prefix(self, text: str, limit: int) -> int:
        """The length of the longest prefix of ``text`` holding at most ``limit`` tokens
        (at least one character, so that splitting always moves on)."""
        if self.fits(text, limit):
            return len(text)
        low, high = 1, len(text)  # the answer lies in [low, high)
        while high - low > 1:
            middle = (low + high) // 2
            if self.fits(text[:middle], limit):
                low = middle
            else:
                high = middle
        return low


_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(text: str) -> str:
    """``text`` with surrogate code points (unencodable in UTF-8) as U+FFFD, same length."""
    return _SURROGATE.sub("\ufffd", text)


@cache
def _rust_tokenizers() -> ModuleType:
    """bpe-openai's Rust extension, loaded without running the package's ``__init__``.

    Importing the package builds Python tables of every encoding it ships, which
    counting never reads: 1.2 s and 34 MB in every process (against 0.09 s and no
    table for the extension alone, measured), and a DeprecationWarning from its
    resource loading. The extension is registered under its own name, so a later
    import of the package finds it loaded.
    """
    name = "bpe_openai._bindings"
    if name in sys.modules:
        return sys.modules[name]
    package = importlib.util.find_spec("bpe_openai")  # finds the package, runs nothing
    if package is None or package.origin is None:
        raise ImportError("bpe-openai is not installed")
    folder = Path(package.origin).parent
    path = next(
        folder / f"_bindings{suffix}"
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (folder / f"_bindings{suffix}").is_file()
    )
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@cache
def token_counter(name: TokenizerName | str) -> TokenCounter:
    """The counter of ``name``, made once per process."""
    return TokenCounter(TokenizerName(name))
