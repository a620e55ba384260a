"""A KG entity the customer rules out ("nothing with Tom Cruise") filters every item linked
to it (issue 19: "not X" constraints). Seen in ReDial validation: "as long as there's no
<actor> in it", "I don't like <franchise> though"; the ranker still offered such films."""

from __future__ import annotations

import json

import pytest

from chatrec.config import RankingSettings
from chatrec.importers.redial import import_redial
from chatrec.kb import load_kb
from chatrec.kg.networkx_graph import NetworkXGraph
from chatrec.turn.profile import UserHistory
from chatrec.turn.rank import Ranker
from chatrec.turn.state import DialogueState, EntityLinker, update_state

DBR = "http://dbpedia.org/resource/"


@pytest.fixture(scope="module")
def films(tmp_path_factory):
    """Four films: Top Gun and Agent Story star Tom Cruise, Big stars Tom Hanks, Okja has neither."""
    d = tmp_path_factory.mktemp("films")
    movies = [(1, "Top Gun (1986)", "Top_Gun"), (2, "Agent Story (1996)", "Agent"), (3, "Big (1988)", "Big")]
    movies.append((4, "Okja (2017)", "Okja"))
    (d / "movies.csv").write_text(
        "movieId,movieName,nbMentions\n" + "".join(f"{m},{t},1\n" for m, t, _ in movies), encoding="utf-8"
    )
    (d / "uris.tsv").write_text(
        "redial_movieId\tdbpedia_uri\n" + "".join(f"{m}\t<{DBR}{u}>\n" for m, _, u in movies), encoding="utf-8"
    )
    triples = [("Top_Gun", "Tom_Cruise"), ("Agent", "Tom_Cruise"), ("Big", "Tom_Hanks")]
    (d / "kg.tsv").write_text(
        "head_uri\trelation_id\ttail_uri\n" + "".join(f"<{DBR}{h}>\t68\t<{DBR}{t}>\n" for h, t in triples),
        encoding="utf-8",
    )
    dialogue = {
        "conversationId": "1",
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "messages": [{"text": "I liked @3", "senderWorkerId": 1}, {"text": "Try @4", "senderWorkerId": 2}],
    }
    (d / "dialogues.jsonl").write_text(json.dumps(dialogue) + "\n", encoding="utf-8")
    import_redial(d / "dialogues.jsonl", d / "movies.csv", d / "kb", triples=d / "kg.tsv", movie_uris=d / "uris.tsv")
    return load_kb(d / "kb")


@pytest.fixture(scope="module")
def linker(films):
    return EntityLinker(films)


@pytest.mark.parametrize(
    "message",
    [
        "any action film, as long as there's no Tom Cruise in it",
        "Nothing with tom cruise please",
        "I don't really like Tom Cruise movies",
        "not a fan of Tom Cruise",
        "anything but Tom Cruise",
        # a comma ends the "seen ..." clause: the negation after it rules out again
        "I don't want anything I've seen, nothing with Tom Cruise",
        "I don't know, nothing with Tom Cruise",
        "stuff I haven't watched, not Tom Cruise",
    ],
)
def test_a_negated_kg_entity_rules_out_every_item_linked_to_it(films, linker, message):
    state = update_state(DialogueState(), message, linker)
    assert state.constraints.entities_out == ["dbr:Tom Cruise"]
    ranker = Ranker(films, NetworkXGraph(films.triples, films.items), None, RankingSettings())  # type: ignore[arg-type]
    why = {i: ranker.allowed(item, state, UserHistory()) for i, item in films.items.items()}
    cruise = {i for i, item in films.items.items() if item.title in ("Top Gun (1986)", "Agent Story (1996)")}
    assert {i for i, w in why.items() if w} == cruise
    assert all(why[i] == "linked to Tom Cruise, ruled out" for i in cruise)


@pytest.mark.parametrize(
    "message",
    [
        "I love Tom Cruise",
        "no, I like Tom Cruise",  # the negation answers something else: the name does not follow it
        "not sure, maybe something like Big (1988)",
        "no Tom",  # one word is no entity name: too many false hits
        "I've seen nothing by Tom Cruise yet",  # what the customer has not met, not what they rule out
        "I've watched no Tom Cruise films",
        "I've heard of no Tom Cruise film",
    ],
)
def test_a_kg_entity_without_a_negation_right_before_it_is_not_ruled_out(linker, message):
    assert update_state(DialogueState(), message, linker).constraints.entities_out == []


def test_a_named_item_is_rejected_itself_not_read_as_an_entity(films, linker):
    """Only the span after the negation is an entity name; a catalogue title there is an item."""
    big = next(i for i, item in films.items.items() if item.title == "Big (1988)")
    state = update_state(DialogueState(), "I don't like Big (1988)", linker)
    assert big in state.rejected_items and state.constraints.entities_out == []


def test_a_logs_annotated_item_is_no_entity_either(films, linker):
    """Replay reads a log's own annotations (no text spans): the title found in the text
    still keeps the entity rule off it, as live linking does."""
    from chatrec.turn.state import TurnAnnotations

    big = next(i for i, item in films.items.items() if item.title == "Big (1988)")
    linker.entities.setdefault("big 1988", ["dbr:Big (franchise)"])  # a KG entity named like the film
    try:
        live = update_state(DialogueState(), "anything but Big (1988)", linker)
        logged = update_state(DialogueState(), "anything but Big (1988)", linker, TurnAnnotations([big], [], [big]))
    finally:
        del linker.entities["big 1988"]
    assert live.constraints.entities_out == logged.constraints.entities_out == []
    assert big in live.rejected_items and big in logged.rejected_items
