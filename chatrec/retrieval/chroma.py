"""Chroma collections for answer templates and catalogue items.

Indexing is idempotent: each row's id is its KB id and its metadata carries a
hash of the embedded text and the filterable fields, so a re-run re-embeds only
rows whose content changed and deletes rows that left the KB.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from chatrec.config import Settings, apply_offline_env
from chatrec.kb import KnowledgeBase, template_examples
from chatrec.retrieval.base import IndexReport, Where, matches, where_filter
from chatrec.retrieval.embeddings import Embedder, LocalSentenceTransformerEF
from chatrec.types import Item, Template, Unavailable

__all__ = [
    "ChromaIndex",
    "IndexUnavailable",
    "IndexReport",
    "matches",
    "where_filter",
    "item_row",
    "template_row",
    "ITEMS",
    "TEMPLATES",
    "EXAMPLES",
]

log = logging.getLogger(__name__)

ITEMS = "items"
TEMPLATES = "templates"
EXAMPLES = "examples"  # past customer messages -> the template that answered them
BATCH = 128


def _hash(doc: str, meta: dict[str, Any]) -> str:
    return hashlib.sha256((doc + json.dumps(meta, sort_keys=True)).encode()).hexdigest()[:16]


def item_row(item: Item) -> tuple[str, dict[str, Any]]:
    meta: dict[str, Any] = {
        "brand": item.brand,
        "category": item.category,
        "stock": int(item.stock),
        "in_stock": item.in_stock,
    }
    if item.price is not None:  # a budget filter then leaves unpriced items out
        meta["price"] = float(item.price)
    return item.document(), meta


def template_row(tpl: Template) -> tuple[str, dict[str, Any]]:
    return f"{tpl.intent.replace('_', ' ')}: {tpl.text}", {"intent": tpl.intent}


class IndexUnavailable(Unavailable):
    """The Chroma index cannot be read (its folder deleted or corrupt, or the Chroma server down);
    the message names the fix. The HTTP edge answers 503; the CLI prints the message and exits 2."""


def index_fix(settings: Settings) -> str:
    """The command that fixes an unreadable index of ``settings``."""
    r = settings.retrieval
    if r.chroma_host:
        return f"check the Chroma server at {r.chroma_host}:{r.chroma_port}, then run `chatrec index`"
    return f"rebuild it: rm -rf {settings.chroma_dir} && chatrec index"


# What a Chroma client raises when its files or server fail (rust bindings: ChromaError; hnswlib: RuntimeError).
_CHROMA_FAULTS: tuple[type[BaseException], ...] = (sqlite3.Error, OSError, RuntimeError)


class ChromaIndex:
    """Owns the Chroma client and the item, template and example collections; the default
    :class:`~chatrec.retrieval.base.Retriever`."""

    def __init__(self, settings: Settings):
        apply_offline_env()
        import chromadb
        from chromadb.errors import ChromaError

        self.settings = settings
        self._faults: tuple[type[BaseException], ...] = (*_CHROMA_FAULTS, ChromaError)
        r = settings.retrieval
        with self._chroma():
            if r.chroma_host:
                # a Chroma server (`chroma run`) shared by replicas; docs/scaling.md
                self.client = chromadb.HttpClient(
                    host=r.chroma_host, port=r.chroma_port, settings=chromadb.Settings(anonymized_telemetry=False)
                )
            else:
                settings.chroma_dir.mkdir(parents=True, exist_ok=True)
                self.client = chromadb.PersistentClient(
                    path=str(settings.chroma_dir), settings=chromadb.Settings(anonymized_telemetry=False)
                )
        self.embedder = Embedder(r.embedder)
        self._ef = LocalSentenceTransformerEF(r.embedder)
        self._collections: dict[str, Any] = {}
        self._exact: dict[str, tuple[list[str], Any, list[dict[str, Any]]]] = {}

    @contextlib.contextmanager
    def _chroma(self) -> Iterator[None]:
        """Chroma's own failures as :class:`IndexUnavailable`, with the command that fixes them."""
        try:
            yield
        except IndexUnavailable:
            raise
        except self._faults as exc:
            where = (
                f"the Chroma server {self.settings.retrieval.chroma_host}"
                if self.settings.retrieval.chroma_host
                else f"the index in {self.settings.chroma_dir}"
            )
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise IndexUnavailable(f"{where} cannot be read ({first}); {index_fix(self.settings)}") from exc

    def collection_name(self, name: str) -> str:
        """Chroma's name for our collection ``name`` of this KB: ``items-<8 hex>``, keyed by the
        KB folder, so two KBs sharing a data folder or a Chroma server never overwrite (and
        re-embed) each other's rows."""
        kb = str(Path(self.settings.kb_dir).resolve())
        return f"{name}-{hashlib.sha256(kb.encode()).hexdigest()[:8]}"

    def collection(self, name: str) -> Any:
        if name not in self._collections:
            with self._chroma():
                self._collections[name] = self._open(name)
        return self._collections[name]

    def _open(self, name: str) -> Any:
        return self.client.get_or_create_collection(
            self.collection_name(name),
            embedding_function=self._ef,  # type: ignore[arg-type]  # chroma's generic is narrower
            configuration={
                "hnsw": {
                    "space": "cosine",
                    "ef_construction": 200,
                    "ef_search": self.settings.retrieval.hnsw_ef_search,
                    "max_neighbors": 32,
                }
            },
        )

    # ------------------------------------------------------------ building

    def build(self, kb: KnowledgeBase, progress: bool = False) -> list[IndexReport]:
        self._exact = {}
        return [
            self._sync(ITEMS, {i.id: item_row(i) for i in kb.items.values()}, progress),
            self._sync(TEMPLATES, {t.id: template_row(t) for t in kb.templates.values()}, progress),
            self._sync(
                EXAMPLES, {i: (q, {"template_id": tid}) for i, (q, tid) in template_examples(kb).items()}, progress
            ),
        ]

    def _sync(self, name: str, rows: dict[str, tuple[str, dict[str, Any]]], progress: bool) -> IndexReport:
        from tqdm.auto import tqdm

        col = self.collection(name)
        existing = col.get(include=["metadatas"])
        have = {i: (m or {}).get("content_hash") for i, m in zip(existing["ids"], existing["metadatas"])}
        stale = [i for i in have if i not in rows]
        if stale:
            col.delete(ids=stale)
        todo = [(i, doc, {**meta, "content_hash": _hash(doc, meta)}) for i, (doc, meta) in rows.items()]
        todo = [t for t in todo if have.get(t[0]) != t[2]["content_hash"]]
        bar = tqdm(total=len(todo), desc=f"embedding {name}", disable=not progress or not todo, unit="row")
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            docs = [d for _, d, _ in chunk]
            col.upsert(
                ids=[i for i, _, _ in chunk],
                documents=docs,
                metadatas=[m for _, _, m in chunk],
                embeddings=self.embedder.embed(docs),
            )
            bar.update(len(chunk))
        bar.close()
        return IndexReport(name, len(rows), len(todo), len(stale))

    def is_built(self, kb: KnowledgeBase) -> bool:
        with self._chroma():
            return (
                self.collection(ITEMS).count() == len(kb.items)
                and self.collection(TEMPLATES).count() == len(kb.templates)
                and self.collection(EXAMPLES).count() == len(template_examples(kb))
            )

    # ------------------------------------------------------------ querying

    def search_items(
        self, query: str, k: int, where: Where | None = None, query_embedding: Any = None
    ) -> list[tuple[str, float]]:
        with self._chroma():
            if self.collection(ITEMS).count() == 0:
                return []
        emb = query_embedding if query_embedding is not None else self.embedder.embed([query])[0]
        return [(i, sim) for i, sim, _ in self._query(ITEMS, emb, k, where)]

    def _query(
        self, name: str, emb: Any, k: int, where: Where | None = None
    ) -> list[tuple[str, float, dict[str, Any]]]:
        """Top-``k`` (id, cosine similarity, metadata) of collection ``name``: Chroma's HNSW
        search, or with ``retrieval.exact_search`` an exact one. Empty for an empty collection.
        Chroma's failures raise :class:`IndexUnavailable`."""
        with self._chroma():
            return self._query_chroma(name, emb, k, where)

    def _query_chroma(
        self, name: str, emb: Any, k: int, where: Where | None = None
    ) -> list[tuple[str, float, dict[str, Any]]]:
        col = self.collection(name)
        n = col.count()
        if n == 0:
            return []
        if self.settings.retrieval.exact_search:
            return self._exact_query(name, n, emb, k, where)
        res = col.query(
            query_embeddings=[emb], n_results=min(k, n), where=where or None, include=["distances", "metadatas"]
        )
        return [
            (i, 1.0 - float(d), m or {}) for i, d, m in zip(res["ids"][0], res["distances"][0], res["metadatas"][0])
        ]

    def _exact_query(
        self, name: str, count: int, emb: Any, k: int, where: Where | None
    ) -> list[tuple[str, float, dict[str, Any]]]:
        """Exact cosine top-``k`` over every stored vector of ``name`` that passes ``where``;
        ties go to the smaller id. HNSW graphs loaded in different processes can return
        different near-ties; this cannot, so replays are reproducible (and exact). The
        vectors are cached and re-read when the collection's size changes (another process
        re-indexed) or this instance rebuilds."""
        cached = self._exact.get(name)
        if cached is None or len(cached[0]) != count:
            got = self.collection(name).get(include=["embeddings", "metadatas"])
            order = sorted(range(len(got["ids"])), key=lambda j: got["ids"][j])
            mat = np.asarray([got["embeddings"][j] for j in order], dtype=np.float32).reshape(len(order), -1)
            mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
            cached = self._exact[name] = (
                [got["ids"][j] for j in order],
                mat,
                [got["metadatas"][j] or {} for j in order],
            )
        ids, mat, metas = cached
        q = np.asarray(emb, dtype=np.float32)
        sims = mat @ (q / max(float(np.linalg.norm(q)), 1e-12))
        if where:
            sims = np.where(np.fromiter((matches(m, where) for m in metas), bool, len(metas)), sims, -np.inf)
        top = np.argsort(-sims, kind="stable")[:k]
        return [(ids[j], float(sims[j]), metas[j]) for j in top if np.isfinite(sims[j])]

    def item_vectors(self) -> dict[str, np.ndarray]:
        """Every stored item embedding (float32), by item id."""
        with self._chroma():
            got = self.collection(ITEMS).get(include=["embeddings"])
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], got["embeddings"])}

    def search_templates(
        self, query: str, k: int, query_embedding: Any = None, examples_k: int = 8
    ) -> list[tuple[str, float]]:
        """Templates ranked by the best of: similarity to the template text, and
        similarity-weighted votes of the nearest past customer messages it answered."""
        emb = query_embedding if query_embedding is not None else self.embedder.embed([query])[0]
        scores: dict[str, float] = {}
        for i, sim, _ in self._query(TEMPLATES, emb, k):
            scores[i] = sim
        votes: dict[str, list[float]] = {}
        for _, sim, m in self._query(EXAMPLES, emb, examples_k):
            votes.setdefault(m["template_id"], []).append(sim)
        total = sum(sum(v) for v in votes.values()) or 1.0
        for tid, sims in votes.items():
            # the nearest example's similarity, discounted when neighbours disagree
            score = max(sims) * (0.5 + 0.5 * sum(sims) / total)
            scores[tid] = max(scores.get(tid, 0.0), score)
        return sorted(scores.items(), key=lambda kv: -kv[1])[:k]
