"""Local sentence embeddings, also registered as a Chroma embedding function.

Chroma persists the name and config of a collection's embedding function and
rebuilds it on reopen; registering ours means a reopened collection embeds
queries with the same local model instead of Chroma's downloading default.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from chatrec.config import apply_offline_env
from chatrec.models import embedder_path

_lock = threading.Lock()


@lru_cache(maxsize=4)
def _load(model: str) -> Any:
    apply_offline_env()
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(embedder_path(model), device="cpu")


class Embedder:
    """Normalised embeddings from a local sentence-transformers model."""

    def __init__(self, model: str):
        self.model_name = model

    @property
    def model(self) -> Any:
        with _lock:
            return _load(self.model_name)

    def embed(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=progress, convert_to_numpy=True
        ).astype(np.float32)

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def similarity(self, a: str, b: str) -> float:
        va, vb = self.embed([a, b])
        return float(np.dot(va, vb))


@register_embedding_function
class LocalSentenceTransformerEF(EmbeddingFunction[Documents]):
    """Chroma embedding function backed by :class:`Embedder` (never downloads)."""

    def __init__(self, model: str):
        self.model = model
        self._embedder = Embedder(model)

    def __call__(self, input: Documents) -> Embeddings:
        return list(self._embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "chatrec-local-sentence-transformer"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LocalSentenceTransformerEF:
        return LocalSentenceTransformerEF(config["model"])
