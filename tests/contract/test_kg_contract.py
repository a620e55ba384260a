"""One contract, every knowledge graph (:class:`chatrec.kg.base.KnowledgeGraph`), on the tiny
fixture KB and the demo KB. A new implementation is one more entry in ``GRAPHS``."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from chatrec.kb import KnowledgeBase, load_kb
from chatrec.kg.base import KGPath, KnowledgeGraph

TINY = Path(__file__).resolve().parent.parent / "fixtures" / "kb_tiny"
DEMO = Path(__file__).resolve().parent.parent.parent / "kb"


def _networkx(kb: KnowledgeBase) -> KnowledgeGraph:
    from chatrec.kg.networkx_graph import NetworkXGraph

    return NetworkXGraph(kb.triples, kb.items)


GRAPHS: dict[str, Callable[[KnowledgeBase], KnowledgeGraph]] = {"networkx": _networkx}


@pytest.fixture(
    scope="module", params=[(g, k) for g in sorted(GRAPHS) for k in ("tiny", "demo")], ids=lambda p: "-".join(p)
)
def case(request) -> tuple[KnowledgeGraph, KnowledgeBase]:
    name, which = request.param
    kb = load_kb(TINY if which == "tiny" else DEMO)
    return GRAPHS[name](kb), kb


def _stored(kb: KnowledgeBase) -> set[tuple[str, str, str]]:
    return {(t.subject, t.predicate, t.object) for t in kb.triples}


def test_is_a_knowledge_graph(case):
    kg, _ = case
    assert isinstance(kg, KnowledgeGraph)


def test_facts_are_stored_triples_about_the_entity(case):
    kg, kb = case
    stored = _stored(kb)
    for entity in sorted(kb.items)[:20]:
        facts = kg.facts(entity, limit=5)
        assert len(facts) <= 5
        for t in facts:
            assert (t.subject, t.predicate, t.object) in stored and entity in (t.subject, t.object)
    assert kg.facts("no-such-entity") == []


def test_labels(case):
    kg, kb = case
    for item in list(kb.items.values())[:20]:
        assert kg.label(item.id) == item.title
    assert kg.label("category:phone-cases") == "phone cases"
    assert isinstance(kg.label("no-such-entity"), str)


def test_items_linked_follow_the_stored_direction(case):
    kg, kb = case
    stored = _stored(kb)
    for t in kb.triples[:200]:
        linked = kg.items_linked(t.object, t.predicate)
        assert linked <= set(kb.items)
        if t.subject in kb.items:
            assert t.subject in linked
        for x in linked:
            assert (x, t.predicate, t.object) in stored
    assert kg.items_linked("no-such-entity", "compatible_with") == set()


def test_related_items_carry_valid_paths(case):
    kg, kb = case
    sources = [i for i in sorted(kb.items) if kg.facts(i)][:3]
    assert sources
    stored = _stored(kb)
    for max_hops in (1, 2):
        related = kg.related_items(sources + ["no-such-entity"], max_hops=max_hops)
        assert related
        for item_id, path in related.items():
            assert isinstance(path, KGPath) and item_id in kb.items
            assert path.start in sources and path.start != item_id and path.end == item_id and path.support >= 1
            assert 1 <= len(path.hops) <= max_hops and 0 < path.strength <= 1
            node = path.start
            for hop in path.hops:
                assert (hop.source, hop.predicate, hop.target) in stored
                assert node in (hop.source, hop.target)
                node = hop.target if hop.source == node else hop.source
            assert node == item_id
            assert path.render(kg.label).startswith(kg.label(path.start))
    one = kg.related_items(sources, max_hops=1)
    assert set(one) <= set(kg.related_items(sources, max_hops=2))
