"""The sentence embedder: the installed MiniLM model, real vectors, clear failures."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from docworker.engines.embeddings import (
    DIMENSION,
    ModelFiles,
    SentenceEmbedder,
    default_embedder,
    find_model,
)
from docworker.errors import EngineFailed

SENTENCES = [
    "The duck swims across the pond.",
    "A duck is paddling on the lake.",
    "The database index speeds up queries.",
    "Row permissions restrict which rows a user may read.",
    "Ducks eat plants, insects and small fish.",
]


def embedder() -> SentenceEmbedder:
    found = default_embedder()
    if found is None:
        pytest.skip("no embedding model installed")
    return found


def test_the_model_and_its_tokenizer_come_from_installed_packages() -> None:
    files = find_model()
    assert files is not None
    assert files.model.name == "model.onnx" and files.tokenizer.name == "tokenizer.json"
    assert default_embedder() is default_embedder()


def test_vectors_are_normalised_and_close_for_close_meanings() -> None:
    vectors = embedder()(SENTENCES)
    assert vectors.shape == (len(SENTENCES), DIMENSION) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.6
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert similarity[2, 3] > similarity[2, 4]


def test_a_text_gets_the_same_vector_whatever_its_batch() -> None:
    together = embedder()(SENTENCES)
    alone = np.vstack([embedder()([s]) for s in SENTENCES])
    assert np.allclose(together, alone, atol=1e-4)
    assert embedder()([]).shape == (0, DIMENSION)


def test_long_texts_are_cut_at_the_models_length() -> None:
    vector = embedder()(["duck " * 2000])
    assert vector.shape == (1, DIMENSION) and np.isfinite(vector).all()


def test_damaged_model_files_fail_as_an_engine(tmp_path: Path) -> None:
    files = find_model()
    assert files is not None
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(EngineFailed):
        SentenceEmbedder(ModelFiles(model=broken, tokenizer=files.tokenizer))(["text"])
    with pytest.raises(EngineFailed):
        SentenceEmbedder(ModelFiles(model=files.model, tokenizer=broken))(["text"])


def test_speed() -> None:
    sentences = [f"{s} Sentence number {i} adds a little." for i, s in enumerate(SENTENCES * 8)]
    embedder()(sentences[:2])  # loads the model
    started = time.perf_counter()
    embedder()(sentences)
    rate = len(sentences) / (time.perf_counter() - started)
    assert rate > 10  # about 100 sentences/s on one core of the reference machine
