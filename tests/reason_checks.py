"""Checks that every reason a KB's explainer gives is true (tests/unit/turn/test_explain.py and
tests/unit/importers/test_inspired.py use them)."""

from __future__ import annotations

from chatrec.kg.base import KGPath
from chatrec.kg.networkx_graph import NetworkXGraph
from chatrec.turn.explain import Explainer
from chatrec.turn.profile import UserHistory

GUEST = UserHistory()


def hops_hold(kb, path: KGPath, item_id: str) -> bool:
    """Every hop of ``path`` is a stored triple of ``kb``, hops chain, and the path ends at ``item_id``."""
    stored = {(t.subject, t.predicate, t.object) for t in kb.triples}
    node = path.start
    for h in path.hops:
        if (h.source, h.predicate, h.target) not in stored or node not in (h.source, h.target):
            return False
        node = h.target if h.source == node else h.source
    return node == item_id == path.end


def check_every_reason(kb) -> None:
    """Explain every item the KG reaches from each of 40 items: a worded path holds in the KG and
    names its middle node, no reason carries a raw relation id, the evidence fields are the item's."""
    ex = Explainer(kb, NetworkXGraph(kb.triples, kb.items))
    anchors = sorted(kb.items)[:40]
    worded = 0
    for anchor in anchors:
        for item_id, path in ex.kg.related_items([anchor]).items():
            item = kb.items[item_id]
            rec = ex.explain(item, GUEST, path=path)
            said = ex.path_reason(path, GUEST, item_id)
            if said is not None:
                worded += 1
                assert hops_hold(kb, path, item_id), (anchor, item_id, path)
                first = path.hops[0]
                middle = first.target if first.source == path.start else first.source
                assert len(path.hops) == 1 or ex.kg.label(middle) in said, said
                assert rec.reason.lower().startswith(said.lower())
            assert "rel_" not in rec.reason
            f = rec.evidence.fields
            assert f["category"] == item.category and f["stock"] == item.stock
            assert f.get("price") == item.price and f.get("brand", "") == item.brand
            assert all(
                item.attributes[k] == v for k, v in f.items() if k not in ("price", "brand", "category", "stock")
            )
            assert rec.title == item.title and rec.item_id == item.id
    assert worded > 0
