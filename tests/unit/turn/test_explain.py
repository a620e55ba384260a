"""Reasons in the KB's own words, and only reasons that are true (issue 19, item 4).

A film KB imported from ReDial and the demo shop are explained with their own
wording (``reasons.json``); relation ids never reach a reason, and every KG reason's path is
made of stored triples that end at the item.
"""

from __future__ import annotations

import json

import pytest
from reason_checks import check_every_reason

from chatrec.importers.redial import import_redial
from chatrec.kb import KBError, load_kb
from chatrec.kg.base import Hop, KGPath
from chatrec.kg.networkx_graph import NetworkXGraph
from chatrec.turn.explain import Explainer, ReasonWording, load_wording
from chatrec.turn.profile import UserHistory
from tests_support import KB_DIR

DBR = "http://dbpedia.org/resource/"
GUEST = UserHistory()


@pytest.fixture(scope="module")
def redial_kb(tmp_path_factory):
    """A tiny ReDial import: Sleepless and Mail share Tom Hanks and Nora Ephron; Okja and Big share
    only an unnamed relation (999); Big stars Penny Marshall, who directed Mail."""
    d = tmp_path_factory.mktemp("redial")
    (d / "movies.csv").write_text(
        "movieId,movieName,nbMentions\n111,Moonlit Harbour Nights (1993),3\n222,Letters You've Kept (1998),2\n"
        "333,Okja (2017),1\n444,Big (1988),1\n",
        encoding="utf-8",
    )
    (d / "uris.tsv").write_text(
        "redial_movieId\tdbpedia_uri\n"
        + "".join(f"{m}\t<{DBR}{n}>\n" for m, n in [(111, "Sleepless"), (222, "Mail"), (333, "Okja"), (444, "Big")]),
        encoding="utf-8",
    )
    triples = [
        ("Sleepless", "68", "Tom_Hanks"),
        ("Mail", "68", "Tom_Hanks"),
        ("Sleepless", "121", "Nora_Ephron"),
        ("Mail", "121", "Nora_Ephron"),
        ("Okja", "999", "Cafe_Lalo"),
        ("Big", "999", "Cafe_Lalo"),
        ("Big", "68", "Penny_Marshall"),
        ("Mail", "121", "Penny_Marshall"),
    ]
    (d / "kg.tsv").write_text(
        "head_uri\trelation_id\ttail_uri\n" + "".join(f"<{DBR}{h}>\t{r}\t<{DBR}{t}>\n" for h, r, t in triples),
        encoding="utf-8",
    )
    dialogue = {
        "conversationId": "1",
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "messages": [
            {"text": "I liked @111", "senderWorkerId": 1},
            {"text": "Try @222", "senderWorkerId": 2},
        ],
    }
    (d / "dialogues.jsonl").write_text(json.dumps(dialogue) + "\n", encoding="utf-8")
    import_redial(d / "dialogues.jsonl", d / "movies.csv", d / "kb", triples=d / "kg.tsv", movie_uris=d / "uris.tsv")
    return load_kb(d / "kb")


def _explainer(kb, wording=None):
    return Explainer(kb, NetworkXGraph(kb.triples, kb.items), wording)


def test_reason_shows_no_raw_relation_id(redial_kb):
    ex = _explainer(redial_kb)
    path = ex.kg.related_items(["M333"])["M444"]  # Okja -rel_999-> Cafe Lalo <-rel_999- Big
    assert {h.predicate for h in path.hops} == {"rel_999"}
    rec = ex.explain(redial_kb.items["M444"], GUEST, path=path)
    assert "rel_" not in rec.reason and "999" not in rec.reason
    assert rec.reason == "Relevant to your request."
    assert ex.path_reason(path, GUEST, "M444") is None
    # without a reasons.json either: an id-like predicate, a number or a URI is never worded
    default = _explainer(redial_kb, ReasonWording())
    assert default.path_reason(path, GUEST, "M444") is None
    for predicate in ("30", "rel_30", "http://dbpedia.org/ontology/starring", "P161"):
        assert ReasonWording().relation(predicate) is None, predicate
    assert ReasonWording().label("compatible_with") == "compatible with"


def test_reason_uses_the_kgs_relation_label(redial_kb):
    ex = _explainer(redial_kb)
    rec = ex.explain(redial_kb.items["M222"], GUEST, path=ex.kg.related_items(["M111"])["M222"])
    assert rec.reason in (
        "Another film starring Tom Hanks, like Moonlit Harbour Nights (1993).",
        "Another film directed by Nora Ephron, like Moonlit Harbour Nights (1993).",
    )
    labels = load_wording(redial_kb.root)
    assert labels.label("starring") == "starring" and labels.label("rel_999") is None  # only listed relations


def test_reason_of_a_mixed_relation_path_claims_no_shared_role(redial_kb):
    ex = _explainer(redial_kb)
    path = KGPath(
        "M444", "M222", [Hop("M444", "starring", "dbr:Penny Marshall"), Hop("M222", "director", "dbr:Penny Marshall")]
    )
    assert ex.holds(path, "M222")
    assert ex.path_reason(path, GUEST, "M222") == "connected to Big (1988) through Penny Marshall"


def test_reason_for_a_path_not_in_the_kg_is_not_shown(redial_kb):
    ex = _explainer(redial_kb)
    invented = KGPath(
        "M333", "M222", [Hop("M333", "starring", "dbr:Tom Hanks"), Hop("M222", "starring", "dbr:Tom Hanks")]
    )
    assert not ex.holds(invented)
    assert ex.path_reason(invented, GUEST, "M222") is None
    real = ex.kg.related_items(["M111"])["M222"]
    assert ex.path_reason(real, GUEST, "M444") is None  # a true path, but to another item


def test_film_site_reasons_say_mentioned_together_not_bought_together(redial_kb):
    for kb, anchor, item in ((redial_kb, "M111", "M222"),):
        ex = _explainer(kb)
        rec = ex.explain(kb.items[item], GUEST, co_anchor=anchor)
        assert rec.reason == f"Often mentioned together with {kb.items[anchor].title}."
        assert "bought" not in rec.reason
        assert ex.explain(kb.items[item], GUEST, popular=True).reason == "Popular with other movie fans."
    shop = load_kb(KB_DIR)
    assert not (KB_DIR / "reasons.json").exists()  # the demo shop keeps the default (shop) wording
    ex = _explainer(shop)
    case, phone = "VW-1042", "VW-1001"
    assert ex.explain(shop.items[case], GUEST, co_anchor=phone).reason.startswith("Often bought together with the ")


@pytest.mark.parametrize("which", ["redial", "demo"])
def test_every_reason_path_exists_in_the_kg_and_fields_match_the_item(which, redial_kb):
    check_every_reason(redial_kb if which == "redial" else load_kb(KB_DIR))


def test_a_bad_reasons_file_is_reported_with_its_file(tmp_path):
    (tmp_path / "reasons.json").write_text('{"co_anchor": "bought with {item}", "colour": "red"}', encoding="utf-8")
    with pytest.raises(KBError) as err:
        load_wording(tmp_path)
    text = str(err.value)
    assert f"{tmp_path / 'reasons.json'}:1: co_anchor:" in text and "unknown placeholder(s) ['item']" in text
    assert "colour" in text
    (tmp_path / "reasons.json").write_text("{", encoding="utf-8")
    with pytest.raises(KBError, match="invalid JSON"):
        load_wording(tmp_path)
    assert load_wording(tmp_path / "missing") == ReasonWording()
