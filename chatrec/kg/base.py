"""The knowledge-graph seam: the :class:`KnowledgeGraph` protocol and the path types it returns.

A graph holds ``(subject, predicate, object)`` triples over catalogue items
(their KB ids) and concept entities (``brand:Google``, ``category:phone-cases``,
URIs). The turn asks it for facts about an entity, display labels, items linked
to an entity by one predicate, and short labelled paths from the user's items
to candidate items. :class:`chatrec.kg.networkx_graph.NetworkXGraph` is the
embedded implementation; an RDF/SPARQL store can implement the same four methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, runtime_checkable

from chatrec.types import Triple

# How much one hop along a predicate says about relatedness (product along a path).
PREDICATE_WEIGHT = {
    "compatible_with": 1.0,
    "accessory_of": 0.6,
    "successor_of": 0.8,
    "in_series": 0.7,
    "suits_need": 0.5,
    "category": 0.35,
    "subcategory_of": 0.3,
    "brand": 0.3,
}
DEFAULT_WEIGHT = 0.3


@dataclass(frozen=True)
class Hop:
    source: str
    predicate: str
    target: str  # the triple is always (source, predicate, target) as stored


@dataclass
class KGPath:
    start: str
    end: str
    hops: list[Hop] = field(default_factory=list)
    support: int = 1  # how many distinct paths (from all sources) reach ``end``

    @property
    def strength(self) -> float:
        s = 1.0
        for h in self.hops:
            s *= PREDICATE_WEIGHT.get(h.predicate, DEFAULT_WEIGHT)
        return s

    def render(self, label: Callable[[str], str]) -> str:
        """E.g. ``Google Pixel 8 <-compatible_with- Spigen Thin Fit``, following stored direction."""
        out = label(self.start)
        node = self.start
        for h in self.hops:
            if h.source == node:
                out += f" -{h.predicate}-> {label(h.target)}"
                node = h.target
            else:
                out += f" <-{h.predicate}- {label(h.source)}"
                node = h.source
        return out


def readable(entity: str) -> str:
    """A readable form of a non-item entity id: ``category:phone-cases`` -> ``phone cases``,
    ``dbr:Tom Cruise`` -> ``Tom Cruise``, a URI -> its last segment with spaces."""
    if ":" in entity and not entity.startswith("http"):
        return entity.split(":", 1)[1].replace("-", " ")
    return entity.rstrip("/").rsplit("/", 1)[-1].replace("_", " ")


@runtime_checkable
class KnowledgeGraph(Protocol):
    """What the turn (ranker, chatbot) uses of a knowledge graph. Checked by
    ``tests/contract/test_kg_contract.py`` for every implementation."""

    def facts(self, entity: str, limit: int = 12) -> list[Triple]:
        """At most ``limit`` stored triples that have ``entity`` as subject or object
        (outgoing first); ``[]`` for an unknown entity. Never invents triples."""
        ...

    def label(self, entity: str) -> str:
        """A display name: an item's title, else a readable form of the entity id
        (``category:phone-cases`` -> ``phone cases``). Never raises, also for unknown entities."""
        ...

    def related_items(self, sources: Iterable[str], max_hops: int = 2) -> dict[str, KGPath]:
        """Catalogue items reachable from any of ``sources`` within ``max_hops`` hops (either
        direction), each with its strongest path (of equally strong ones, the shortest):
        ``path.start`` is a source, ``path.end`` the item, ``1 <= len(path.hops) <= max_hops``,
        consecutive hops share a node, and ``path.support`` (>= 1) counts the paths that reach
        it. No path ends where it starts (a source is a key only when reached from another
        source); unknown sources are ignored."""
        ...

    def items_linked(self, entity: str, predicate: str) -> set[str]:
        """Catalogue items ``x`` with a stored ``(x, predicate, entity)`` triple (directional:
        the accessories ``compatible_with`` a device, not the reverse); empty if none."""
        ...
