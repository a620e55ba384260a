"""The knowledge graph: an embedded, labelled multigraph over items and concepts.

networkx was chosen over an RDF store for the embedded default: the two queries
the turn needs are "facts about an entity" and "short labelled paths from the
user's items to candidate items", both bounded breadth-first walks that are
direct in networkx and would be multi-join SPARQL property paths with no path
output. The :class:`~chatrec.kg.base.KnowledgeGraph` protocol (``chatrec.kg.base``, re-exported
here with the path types) keeps a SPARQL store swappable.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

import networkx as nx

from chatrec.kg.base import DEFAULT_WEIGHT, PREDICATE_WEIGHT, Hop, KGPath, KnowledgeGraph, readable
from chatrec.types import Item, Triple

__all__ = ["NetworkXGraph", "KnowledgeGraph", "KGPath", "Hop", "PREDICATE_WEIGHT", "DEFAULT_WEIGHT"]


class NetworkXGraph:
    """Default :class:`KnowledgeGraph`, built from KB triples."""

    def __init__(self, triples: Iterable[Triple], items: dict[str, Item], hub_degree: int = 60):
        self.g = nx.MultiDiGraph()
        for t in triples:
            self.g.add_edge(t.subject, t.object, key=t.predicate)
        self.items = items
        self.hub_degree = hub_degree  # walk *through* no node with more neighbours than this

    def __len__(self) -> int:
        return self.g.number_of_edges()

    def label(self, entity: str) -> str:
        if entity in self.items:
            return self.items[entity].title
        return readable(entity)

    def facts(self, entity: str, limit: int = 12) -> list[Triple]:
        if entity not in self.g:
            return []
        out = [Triple(subject=entity, predicate=k, object=v) for _, v, k in self.g.out_edges(entity, keys=True)]
        inc = [Triple(subject=u, predicate=k, object=entity) for u, _, k in self.g.in_edges(entity, keys=True)]
        return (out + inc)[:limit]

    def items_linked(self, entity: str, predicate: str) -> set[str]:
        """Items ``x`` with a ``(x, predicate, entity)`` triple, e.g. accessories compatible with a device."""
        if entity not in self.g:
            return set()
        return {u for u, _, k in self.g.in_edges(entity, keys=True) if k == predicate and u in self.items}

    def _neighbours(self, node: str) -> Iterable[tuple[str, Hop]]:
        for _, v, k in self.g.out_edges(node, keys=True):
            yield v, Hop(node, k, v)
        for u, _, k in self.g.in_edges(node, keys=True):
            yield u, Hop(u, k, node)

    def related_items(self, sources: Iterable[str], max_hops: int = 2) -> dict[str, KGPath]:
        """Best-strength path from any source to each catalogue item within ``max_hops``.

        Each path's ``support`` counts the distinct paths that reach its item: two films
        sharing three actors with the user's favourites are better supported than one."""
        best: dict[str, KGPath] = {}
        support: dict[str, int] = {}
        for src in dict.fromkeys(sources):
            if src not in self.g:
                continue
            queue = deque([(src, KGPath(src, src))])
            seen = {src}
            while queue:
                node, path = queue.popleft()
                if len(path.hops) >= max_hops:
                    continue
                if node != src and self.g.degree(node) > self.hub_degree:
                    continue
                for nxt, hop in self._neighbours(node):
                    p = KGPath(src, nxt, path.hops + [hop])
                    if nxt in self.items and nxt != src and nxt != node:
                        support[nxt] = support.get(nxt, 0) + 1
                        if nxt not in best or (p.strength, -len(p.hops)) > (best[nxt].strength, -len(best[nxt].hops)):
                            best[nxt] = p  # the strongest path; of equally strong ones, the shortest
                    if nxt in seen:
                        continue
                    seen.add(nxt)
                    queue.append((nxt, p))
        for item_id, p in best.items():
            p.support = support[item_id]
        return best
