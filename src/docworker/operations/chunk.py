"""The ``chunk`` operation: any document → chunks for retrieval, with their provenance.

The document is read exactly as ``extract`` reads it (same input parameters,
same parse, the same split of long OCR into parts), then cut by
:mod:`docworker.chunking`. The semantic strategy gets
its sentence embeddings from :mod:`docworker.engines.embeddings` and is refused
when no embedding model is installed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from docworker.chunking import ChunkOptions, Strategy, chunk_document
from docworker.document import Document
from docworker.engines.embeddings import default_embedder
from docworker.operations.base import Family, OperationParams
from docworker.operations.extract import DocumentInput, DocumentOperation, selected_blocks


class ChunkParams(DocumentInput, ChunkOptions):
    """The input document's parameters and the chunking options."""


class ChunkOperation(DocumentOperation):
    name: ClassVar[str] = "chunk"
    summary: ClassVar[str] = (
        "Chunks for retrieval: fixed, recursive, structure, page or semantic, "
        "with heading paths, pages, boxes and neighbours."
    )
    queue: ClassVar[Family] = Family.DOCUMENTS
    Params: ClassVar[type[OperationParams]] = ChunkParams

    def payload(self, doc: Document, params: OperationParams) -> dict[str, Any]:
        assert isinstance(params, ChunkParams)
        return chunk_payload(doc, params)


def chunk_payload(doc: Document, params: ChunkParams) -> dict[str, Any]:
    """The JSON body of a chunk result."""
    chosen = doc.model_copy(update={"blocks": selected_blocks(doc, params)})
    embed = default_embedder() if params.strategy is Strategy.SEMANTIC else None
    chunks = chunk_document(chosen, params, embed)
    return {
        "strategy": params.strategy.value,
        "tokenizer": params.tokenizer.value,
        "max_tokens": params.max_tokens,
        "format": doc.format,
        "mime": doc.mime,
        "chunks": [c.model_dump(mode="json") for c in chunks],
        "metadata": doc.metadata.model_dump(mode="json", exclude_none=True),
        "warnings": [w.model_dump(mode="json", exclude_none=True) for w in doc.warnings],
    }
