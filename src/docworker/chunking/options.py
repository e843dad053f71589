"""What a chunking run may be asked for: the strategy, the tokenizer and the bounds.

The options are checked together: a bound that contradicts another, or a setting
the chosen strategy does not use, is refused with :class:`InvalidParameter`
rather than silently ignored.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from docworker.chunking.tokens import TokenizerName
from docworker.errors import InvalidParameter


class Strategy(StrEnum):
    #: Windows of ``max_tokens`` over the document's text, ``overlap`` tokens shared.
    FIXED = "fixed"
    #: Text split by a hierarchy of separators, pieces merged up to ``max_tokens``.
    RECURSIVE = "recursive"
    #: One or more chunks per section: headings start chunks, tables and lists stay whole.
    STRUCTURE = "structure"
    #: One chunk per page, split further when a page is over ``max_tokens``.
    PAGE = "page"
    #: Chunks end where the topic changes, found from sentence embeddings.
    SEMANTIC = "semantic"


DEFAULT_SEPARATORS = ("\n\n", "\n", ". ", " ", "")
DEFAULT_MIN_TOKENS = 50

#: The strategies each strategy-specific setting applies to.
_USED_BY: dict[str, frozenset[Strategy]] = {
    "overlap": frozenset({Strategy.FIXED, Strategy.RECURSIVE}),
    "separators": frozenset({Strategy.RECURSIVE}),
    "min_tokens": frozenset({Strategy.STRUCTURE, Strategy.SEMANTIC}),
    "threshold_percentile": frozenset({Strategy.SEMANTIC}),
}


class ChunkOptions(BaseModel):
    """How to cut a document into chunks."""

    model_config = ConfigDict(extra="forbid")

    strategy: Strategy = Field(
        Strategy.STRUCTURE, description="fixed, recursive, structure, page or semantic."
    )
    tokenizer: TokenizerName = Field(
        TokenizerName.CL100K,
        description="How sizes are counted: cl100k or o200k tokens, or chars (characters).",
    )
    max_tokens: int = Field(
        512,
        ge=16,
        le=100_000,
        description="No chunk is larger than this, counted in the tokenizer on the chunk's text.",
    )
    min_tokens: int | None = Field(
        None,
        ge=0,
        description="structure and semantic: a chunk smaller than this is merged with a "
        "neighbour of the same top-level section when the two fit together. Default: 50, "
        "or a quarter of max_tokens when that is less.",
    )
    overlap: int = Field(
        0, ge=0, description="fixed and recursive: tokens a chunk repeats from the one before."
    )
    separators: list[str] | None = Field(
        None,
        description="recursive: separators tried in order, most significant first; "
        "default: paragraph, line, sentence, word, character.",
        examples=[list(DEFAULT_SEPARATORS)],
    )
    threshold_percentile: float = Field(
        90.0,
        gt=0,
        lt=100,
        description="semantic: a chunk ends where the distance between neighbouring "
        "sentences is above this percentile of all such distances (90: at the 10% "
        "least similar places).",
    )

    @model_validator(mode="after")
    def _check_together(self) -> ChunkOptions:
        if self.overlap >= self.max_tokens:
            raise InvalidParameter("overlap", "must be smaller than max_tokens")
        if self.min_tokens is not None and self.min_tokens > self.max_tokens:
            raise InvalidParameter("min_tokens", "must not be larger than max_tokens")
        if self.separators is not None and not self.separators:
            raise InvalidParameter("separators", "give at least one separator")
        for name, strategies in _USED_BY.items():
            if self.strategy not in strategies and _changed(self, name):
                *others, last = sorted(strategies)
                used = f"{', '.join(others)} and {last}" if others else last
                raise InvalidParameter(name, f"applies to the {used} strategies only")
        return self

    def smallest(self) -> int:
        """The ``min_tokens`` in force."""
        if self.min_tokens is not None:
            return self.min_tokens
        return min(DEFAULT_MIN_TOKENS, self.max_tokens // 4)

    def separator_list(self) -> list[str]:
        """The separators of the recursive strategy, ending with "" (characters) so
        that any text can be split under the bound."""
        chosen = list(DEFAULT_SEPARATORS if self.separators is None else self.separators)
        return chosen if chosen[-1] == "" else [*chosen, ""]


def _changed(options: ChunkOptions, name: str) -> bool:
    """Whether ``name`` was given with a value other than its default."""
    default = ChunkOptions.model_fields[name].default
    return name in options.model_fields_set and getattr(options, name) != default


class V1Method(NamedTuple):
    strategy: Strategy
    tokenizer: TokenizerName


#: v1's chunk methods (``--method`` of ``convert chunk``) as v2 options. V1_API.md §13:
#: v1 split with a recursive *character* splitter, except ``semantic``, which was a
#: token-based splitter sized in tokens (fixed token windows with overlap, not
#: embeddings); ``smart`` becomes the structure strategy, still sized in characters.
V1_METHODS: dict[str, V1Method] = {
    "text": V1Method(Strategy.RECURSIVE, TokenizerName.CHARS),
    "recursive": V1Method(Strategy.RECURSIVE, TokenizerName.CHARS),
    "semantic": V1Method(Strategy.FIXED, TokenizerName.CL100K),
    "smart": V1Method(Strategy.STRUCTURE, TokenizerName.CHARS),
}
