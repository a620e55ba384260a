"""Chroma-specific behaviour of ChromaIndex. The Retriever contract (build idempotence, ordering,
filters, HNSW recall against exact search) is in tests/contract/test_retriever_contract.py."""

import json

from chatrec.config import Settings
from chatrec.kb import load_kb
from chatrec.retrieval.chroma import ITEMS, ChromaIndex, where_filter
from tests_support import KB_DIR, TINY


def test_reindex_re_embeds_only_changed_rows(tmp_path):
    """A changed price (filterable metadata, not the embedded text) re-embeds that row only.
    The tiny KB keeps this cheap; first-build and no-op rebuilds are in the contract tests."""
    import shutil

    kb_copy = tmp_path / "kb"
    shutil.copytree(TINY, kb_copy)
    s = Settings(kb_dir=kb_copy, data_dir=tmp_path / "state")
    first = {r.collection: r for r in ChromaIndex(s).build(load_kb(kb_copy))}
    assert first[ITEMS].embedded == len(load_kb(kb_copy).items)
    again = {r.collection: r for r in ChromaIndex(s).build(load_kb(kb_copy))}
    assert all(r.embedded == 0 and r.deleted == 0 for r in again.values())

    lines = (kb_copy / "catalogue.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["price"] = row["price"] + 1
    (kb_copy / "catalogue.jsonl").write_text("\n".join([json.dumps(row)] + lines[1:]) + "\n")
    third = {r.collection: r for r in ChromaIndex(s).build(load_kb(kb_copy))}
    assert third[ITEMS].embedded == 1 and third[ITEMS].deleted == 0
    assert all(r.embedded == 0 for name, r in third.items() if name != ITEMS)


def test_reopened_collection_embeds_queries_locally(shared_index):
    # A fresh client on the same folder rebuilds our registered embedding function
    # from the persisted config: querying by text works offline.
    import chromadb

    client = chromadb.PersistentClient(path=str(shared_index.settings.chroma_dir))
    col = client.get_collection(shared_index.collection_name(ITEMS))
    res = col.query(query_texts=["noise cancelling earbuds"], n_results=3)
    assert len(res["ids"][0]) == 3
    assert col.configuration_json["embedding_function"]["name"] == "chatrec-local-sentence-transformer"


def test_exact_search_agrees_with_hnsw_and_honours_filters(shared_index, kb):
    from chatrec.retrieval.chroma import ChromaIndex

    exact = ChromaIndex(
        shared_index.settings.model_copy(
            update={"retrieval": shared_index.settings.retrieval.model_copy(update={"exact_search": True})}
        )
    )
    where = where_filter(max_price=30, exclude_brands=["Anker"])
    hits = exact.search_items("usb-c charger", 10, where)
    assert len(hits) == 10 and [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    for item_id, _ in hits:
        item = kb.items[item_id]
        assert item.price <= 30 and item.brand != "Anker" and item.in_stock
    approx = shared_index.search_items("usb-c charger", 10, where)
    assert {i for i, _ in hits[:5]} <= {i for i, _ in approx}  # HNSW agrees on the demo catalogue
    again = ChromaIndex(exact.settings)  # a second instance (as in another worker process) reads the same
    assert again.search_items("usb-c charger", 10, where) == hits
    # templates (and the past questions that vote for them) are searched exactly too
    for q in ("where is my order", "I want my money back", "do you ship abroad"):
        assert [t for t, _ in exact.search_templates(q, 3)] == [t for t, _ in shared_index.search_templates(q, 3)]


def test_exact_search_ties_go_to_the_smaller_id(tmp_path):
    from chatrec.retrieval.chroma import ChromaIndex

    s = Settings(kb_dir=KB_DIR, data_dir=tmp_path / "state")
    s = s.model_copy(update={"retrieval": s.retrieval.model_copy(update={"exact_search": True})})
    index = ChromaIndex(s)
    col = index.collection(ITEMS)
    same = [1.0] + [0.0] * 383
    col.add(
        ids=["b", "a", "c"],
        embeddings=[same, same, [0.0, 1.0] + [0.0] * 382],
        metadatas=[{"in_stock": True}, {"in_stock": True}, {"in_stock": True}],
        documents=["x", "x", "y"],
    )
    assert [i for i, _ in index.search_items("", 3, query_embedding=same)] == ["a", "b", "c"]
    col.add(ids=["0"], embeddings=[same], metadatas=[{"in_stock": False}], documents=["x"])  # another writer
    assert [i for i, _ in index.search_items("", 2, query_embedding=same)] == ["0", "a"]  # cache re-read
    assert [i for i, _ in index.search_items("", 2, where_filter(), query_embedding=same)] == ["a", "b"]


def test_where_matcher_agrees_with_chroma(shared_index, kb):
    from chatrec.retrieval.chroma import matches

    col = shared_index.collection(ITEMS)
    metas = dict(zip(*(lambda g: (g["ids"], g["metadatas"]))(col.get(include=["metadatas"]))))
    brands = sorted({i.brand for i in kb.items.values() if i.brand})[:3]
    cats = sorted({i.category for i in kb.items.values()})[:2]
    for where in (
        where_filter(),
        where_filter(max_price=50),
        where_filter(exclude_brands=brands),
        where_filter(max_price=200, exclude_brands=brands[:1], categories=cats),
        {"$or": [{"brand": {"$in": brands}}, {"price": {"$lt": 20}}]},
    ):
        assert {i for i, m in metas.items() if matches(m, where)} == set(col.get(where=where)["ids"]), where


def test_where_matcher_follows_chroma_operators():
    from chatrec.retrieval.chroma import matches

    meta = {"in_stock": True, "price": 25.0, "brand": "Anker", "category": "chargers"}
    assert matches(meta, where_filter(max_price=30, categories=["chargers"]))
    assert not matches(meta, where_filter(max_price=20))
    assert not matches(meta, where_filter(exclude_brands=["Anker"]))
    assert not matches({**meta, "in_stock": False}, where_filter())
    assert matches(meta, {"$or": [{"brand": "Apple"}, {"price": {"$lt": 30}}]})
    assert not matches({"brand": "Anker"}, {"price": {"$lte": 30}})  # a missing field never passes a bound
