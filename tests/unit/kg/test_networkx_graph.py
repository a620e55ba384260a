from chatrec.kb import load_kb
from chatrec.kg.networkx_graph import NetworkXGraph
from tests_support import TINY


def _kg():
    kb = load_kb(TINY)
    return NetworkXGraph(kb.triples, kb.items)


def test_facts_and_labels():
    kg = _kg()
    facts = {(t.subject, t.predicate, t.object) for t in kg.facts("P8")}
    assert ("P8", "brand", "brand:Google") in facts and ("C1", "compatible_with", "P8") in facts
    assert kg.label("C1") == "Spigen Thin Fit Case for Pixel 8" and kg.label("category:phone-cases") == "phone cases"


def test_items_linked_is_directional():
    kg = _kg()
    assert kg.items_linked("P8", "compatible_with") == {"C1", "C2", "C3"}
    assert kg.items_linked("C1", "compatible_with") == set()


def test_related_items_carry_renderable_paths():
    kg = _kg()
    rel = kg.related_items(["P8"])
    assert rel["C1"].render(kg.label) == "Google Pixel 8 128GB <-compatible_with- Spigen Thin Fit Case for Pixel 8"
    assert rel["C1"].strength > rel["S24"].strength * 0.5
    # two hops: the S24 case is reached through the successor link
    assert [h.predicate for h in rel["C4"].hops] == ["successor_of", "compatible_with"]
    assert "P8" not in rel


def test_of_equally_strong_paths_the_shortest_explains():
    """Owning a phone and its case: a charger for the phone is explained by the phone
    (one compatible_with hop), not by case -> phone -> charger (two hops, same strength)."""
    from chatrec.types import Item, Triple

    items = {i: Item(id=i, title=i, category="x", price=1.0, stock=1) for i in ("PHONE", "CASE", "CHARGER")}
    triples = [
        Triple(subject="CASE", predicate="compatible_with", object="PHONE"),
        Triple(subject="CHARGER", predicate="compatible_with", object="PHONE"),
    ]
    kg = NetworkXGraph(triples, items)
    path = kg.related_items(["CASE", "PHONE"])["CHARGER"]
    assert path.start == "PHONE" and len(path.hops) == 1


def test_the_protocol_and_path_types_live_in_kg_base_and_are_re_exported():
    from chatrec.kg import base, networkx_graph

    assert networkx_graph.KGPath is base.KGPath and networkx_graph.Hop is base.Hop
    assert networkx_graph.KnowledgeGraph is base.KnowledgeGraph
    assert isinstance(_kg(), base.KnowledgeGraph)
