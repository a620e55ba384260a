"""The ReDial importer: catalogue, DBpedia graph, dialogues -> a whole KB, bad rows, CLI.

Every fixture is a tiny synthetic file in the ReDial / KGSF layout written into tmp_path.
"""

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from chatrec.cli.importers import register
from chatrec.importers.redial import display_name, entity_name, import_redial
from chatrec.importers.staging import ImportFailed
from chatrec.kb import load_kb
from chatrec.kg.networkx_graph import NetworkXGraph

DBR = "http://dbpedia.org/resource/"
MOVIES = """movieId,movieName,nbMentions
111,Moonlit Harbour Nights  (1993),12
222,Letters You've Kept (1998),9
333,Okja,2
444,"Big, the (1988)",5
bad,Broken Movie (2001),1
555,Island Drift (2000)
"""
URIS = f"""redial_movieId\tdbpedia_uri
111\t<{DBR}Moonlit_Harbour_Nights>
222\t<{DBR}Letters_You've_Kept>
333\t<{DBR}Okja>
444\t<{DBR}Big_(1988_film)>
666\tNone
"""
TRIPLES = [
    ("Moonlit_Harbour_Nights", "68", "Tom_Hanks"),
    ("Moonlit_Harbour_Nights", "68", "Meg_Ryan"),
    ("Moonlit_Harbour_Nights", "121", "Nora_Ephron"),
    ("Moonlit_Harbour_Nights", "86", "Moonlit_Harbour_Nights"),  # self-loop: dropped
    ("Moonlit_Harbour_Nights", "68", "Tom_Hanks"),  # duplicate: dropped
    ("Moonlit_Harbour_Nights", "68", "Rosie_O'Donnell"),
    ("Moonlit_Harbour_Nights", "68", "Bill_Pullman"),  # a 4th actor: not in the description
    ("Moonlit_Harbour_Nights", "113", "Gary_Foster"),
    ("Letters_You've_Kept", "68", "Tom_Hanks"),
    ("Letters_You've_Kept", "121", "Nora_Ephron"),
    ("Letters_You've_Kept", "999", "Caf%C3%A9_Lalo"),  # unnamed relation, URL-encoded name
    ("Big_(1988_film)", "68", "John_Heard_(actor)"),
    ("Okja", "104", "South_Korea"),
    ("Tom_Hanks", "137", "Actor"),  # touches no movie: dropped
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def q(liked: int) -> dict:
    return {"suggested": 1, "seen": 1, "liked": liked}


def msg(sender: int, text: str) -> dict:
    return {"timeOffset": 0, "text": text, "senderWorkerId": sender, "messageId": 1}


DIALOGUE_A = {
    "conversationId": "1001",
    "initiatorWorkerId": 7,
    "respondentWorkerId": 8,
    "movieMentions": {
        "111": "Moonlit Harbour Nights  (1993)",
        "222": "Letters You've Kept (1998)",
        "333": "Okja",
        "444": "Big, the (1988)",
        "999": "Mystery Film (2001)",
    },
    "initiatorQuestions": {"111": q(1), "222": q(1), "444": q(0), "999": q(1)},
    "respondentQuestions": {"444": q(1), "333": q(1)},  # 444: the seeker's own answer wins
    "messages": [
        msg(8, "Hi there! Which films do you enjoy?"),  # a leading recommender turn: dropped
        msg(7, "I loved @111 and @999"),
        msg(7, "Any romance?"),
        msg(8, "Try @222"),
        msg(8, "or @444 , or @222 again"),
        msg(7, "I liked @222 already, not @444"),
        msg(8, "Then @333 maybe"),
        msg(7, "Thanks, call me at 415-555-0134"),
    ],
}
DIALOGUE_B = {
    "conversationId": 1002,
    "initiatorWorkerId": 9,
    "respondentWorkerId": 8,
    "movieMentions": {"444": "Big, the (1988)", "111": "Moonlit Harbour Nights  (1993)"},
    "initiatorQuestions": [],
    "respondentQuestions": {"444": q(2), "111": q(0)},
    "messages": [
        msg(9, "hello"),
        msg(8, "Have you seen @444?"),
        msg(9, "No"),
        msg(8, "ok"),
        msg(9, "I did not like @111"),
    ],
}
NO_MESSAGES = {"conversationId": "1003", "initiatorWorkerId": 7, "respondentWorkerId": 8, "movieMentions": {}}
ONLY_RECOMMENDER = {
    "conversationId": "1004",
    "initiatorWorkerId": 7,
    "respondentWorkerId": 8,
    "messages": [msg(8, "anyone there?")],
}


@pytest.fixture
def src(tmp_path) -> dict[str, Path]:
    lines = [
        json.dumps(DIALOGUE_A),
        '{"conversationId": "1", "messages": [',
        json.dumps(NO_MESSAGES),
        json.dumps(DIALOGUE_B),
        json.dumps(ONLY_RECOMMENDER),
    ]
    triples = (
        "head_uri\trelation_id\ttail_uri\n"
        + "".join(f"<{DBR}{h}>\t{r}\t<{DBR}{t}>\n" for h, r, t in TRIPLES)
        + f"<{DBR}Okja>\t68\n"
    )
    return {
        "dialogues": write(tmp_path / "dialogues.jsonl", "\n".join(lines) + "\n"),
        "movies": write(tmp_path / "movies.csv", MOVIES),
        "triples": write(tmp_path / "triples.tsv", triples),
        "movie_uris": write(tmp_path / "uris.tsv", URIS),
    }


@pytest.fixture
def imported(src, tmp_path):
    out = tmp_path / "kb"
    report = import_redial(src["dialogues"], src["movies"], out, triples=src["triples"], movie_uris=src["movie_uris"])
    return report, load_kb(out)


def test_catalogue_items(imported):
    _, kb = imported
    assert sorted(kb.items) == ["M111", "M222", "M333", "M444"]
    sleepless = kb.items["M111"]
    assert sleepless.title == "Moonlit Harbour Nights (1993)"
    assert sleepless.attributes == {"year": 1993}  # nbMentions (all splits) is never a prior
    assert (sleepless.category, sleepless.brand, sleepless.price, sleepless.stock) == ("movie", "", None, 1)
    assert sleepless.description == "Starring Tom Hanks, Meg Ryan, Rosie O'Donnell. Directed by Nora Ephron."
    assert kb.items["M444"].title == "Big, the (1988)"
    assert kb.items["M444"].description == "Starring John Heard."
    assert kb.items["M333"].attributes == {}  # no "(1999)"-style year
    assert kb.items["M333"].description == ""


def test_kg_translated_filtered_and_deduplicated(imported):
    _, kb = imported
    rows = {(t.subject, t.predicate, t.object) for t in kb.triples}
    assert len(rows) == len(kb.triples) == 11
    assert ("M111", "starring", "dbr:Tom Hanks") in rows
    assert ("M111", "director", "dbr:Nora Ephron") in rows
    assert ("M111", "producer", "dbr:Gary Foster") in rows
    assert ("M222", "rel_999", "dbr:Café Lalo") in rows
    assert ("M444", "starring", "dbr:John Heard (actor)") in rows
    assert ("M333", "country", "dbr:South Korea") in rows
    assert not any(s == o for s, _, o in rows)
    assert not any("Actor" in o for _, _, o in rows)
    path = NetworkXGraph(kb.triples, kb.items).related_items(["M111"])["M222"]
    assert path.support == 2  # Tom Hanks and Nora Ephron


def test_names_from_uris():
    assert entity_name(f"<{DBR}Caf%C3%A9_Lalo>") == "Café Lalo"
    assert entity_name(f"<{DBR}Headhunter_(2009_film)>") == "Headhunter (2009 film)"
    assert display_name("Ben Johnson (actor)") == "Ben Johnson"
    assert display_name("(film)") == "(film)"


def test_transcripts(imported):
    report, kb = imported
    a, b = kb.transcripts
    assert (a.conversation_id, a.user_id, b.conversation_id, b.user_id) == ("R1001", "W7", "R1002", "W9")
    assert [t.role for t in a.turns] == ["user", "agent", "user", "agent", "user"]
    first, rec, answer, rec2, last = a.turns
    assert first.text == "I loved Moonlit Harbour Nights (1993) and Mystery Film (2001) Any romance?"
    assert first.mentions == ["M111"] and first.liked == ["M111"] and first.disliked == []
    assert rec.text == "Try Letters You've Kept (1998) or Big, the (1988) , or Letters You've Kept (1998) again"
    assert rec.intent == "recommend_product"
    assert rec.mentions == rec.recommended == ["M222", "M444"]
    assert rec.accepted == ["M222"]
    assert answer.liked == ["M222"] and answer.disliked == ["M444"]
    assert rec2.recommended == ["M333"] and rec2.accepted == ["M333"]  # the recommender's form as fallback
    assert last.liked == ["M333"] and last.mentions == []
    assert last.text == "Thanks, call me at <PHONE>"

    hello, seen, no, ok, bye = b.turns
    assert seen.recommended == ["M444"] and seen.accepted == []
    assert no.liked == no.disliked == []  # liked 2: did not say
    assert ok.intent is None and ok.recommended == []
    assert bye.disliked == ["M111"]

    assert report.recommendation_turns == 3 and report.accepted == 2
    assert report.leading_agent_turns_dropped == 1
    assert dict(report.unknown_mentions) == {"999": 1}
    assert (report.dialogues_read, report.conversations, report.turns) == (5, 2, 10)


def test_users_shop_and_templates(imported):
    report, kb = imported
    assert sorted(kb.users) == ["W7", "W9"] and report.users == 2
    assert kb.shop.name == "ReDial movies" and kb.shop.currency == "USD"
    assert "films" in kb.shop.help and "shipping" not in kb.shop.help  # the film site's last-resort reply
    assert kb.shop.title_article is False  # "It (2017)", not "the It (2017)"
    assert kb.templates == {}
    assert (report.out_dir / "templates.jsonl").read_text(encoding="utf-8") == ""
    assert report.items == 4 and report.triples == 11


def test_bad_rows_reported_with_file_and_line(imported, src):
    report, _ = imported
    d, m, t = src["dialogues"], src["movies"], src["triples"]
    assert report.skipped == [
        f"{m}:6: movieId must be a whole number, got 'bad'",
        f"{m}:7: expected 3 fields, got 2",
        f"{t}:{len(TRIPLES) + 2}: expected 'head_uri<TAB>relation_id<TAB>tail_uri'",
        f"{d}:2: invalid JSON: Expecting value (column 38)",
        f"{d}:3: no messages",
        f"{d}:5: no message from the seeker (initiator)",
    ]


def test_limit_and_no_graph(src, tmp_path):
    out = tmp_path / "kb"
    report = import_redial(src["dialogues"], src["movies"], out, limit=1)
    kb = load_kb(out)
    assert [c.conversation_id for c in kb.transcripts] == ["R1001"] and report.dialogues_read == 1
    assert kb.triples == [] and kb.items["M111"].description == ""
    assert (out / "kg.tsv").read_text(encoding="utf-8") == "subject\tpredicate\tobject\n"
    with pytest.raises(ImportFailed, match="give both or neither"):
        import_redial(src["dialogues"], src["movies"], tmp_path / "kb2", triples=src["triples"])


def test_existing_folder_needs_overwrite_and_failure_leaves_it_untouched(src, tmp_path):
    out = tmp_path / "kb"
    import_redial(src["dialogues"], src["movies"], out, limit=1)
    with pytest.raises(ImportFailed, match="choose to overwrite"):
        import_redial(src["dialogues"], src["movies"], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    write(out / "events.jsonl", '{"user_id": "W7", "item_id": "M999", "type": "view", "ts": "2026-01-01T10:00:00Z"}\n')
    with pytest.raises(ImportFailed, match="would not load") as exc:
        import_redial(src["dialogues"], src["movies"], out, overwrite=True)
    assert any(e.startswith(f"{out / 'events.jsonl'}:1: unknown item id") for e in exc.value.errors)
    (out / "events.jsonl").unlink()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".kb.redial-")]  # no staging left
    import_redial(src["dialogues"], src["movies"], out, overwrite=True)
    assert len(load_kb(out).transcripts) == 2


def test_cli(src, tmp_path):
    @click.group()
    def cli():
        pass

    register(cli)
    out = tmp_path / "kb"
    args = [
        "import-redial",
        str(src["dialogues"]),
        "--movies",
        str(src["movies"]),
        "--kg",
        str(src["triples"]),
        "--kg-map",
        str(src["movie_uris"]),
        "--out",
        str(out),
        "--no-progress",
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "5 dialogues read, 2 imported, 6 rows skipped" in res.output
    assert "4 items, 11 triples, 2 users, 2 conversations, 10 turns, 3 recommendation turns" in res.output
    assert "1 leading recommender turns dropped, 1 mentions of 1 movie ids not in the catalogue" in res.output
    assert f"{src['dialogues']}:3: no messages" in res.output
    load_kb(out)

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "pass --overwrite" in again.output
    half = CliRunner().invoke(cli, args[:6] + ["--out", str(tmp_path / "kb2")])
    assert half.exit_code == 2 and "--kg and --kg-map go together" in half.output


def test_empty_templates_index(imported, tmp_path):
    from chatrec.config import Settings
    from chatrec.retrieval.chroma import TEMPLATES, ChromaIndex

    report, kb = imported
    index = ChromaIndex(Settings(kb_dir=report.out_dir, data_dir=tmp_path / "state"))
    built = {r.collection: r for r in index.build(kb)}
    assert built[TEMPLATES].total == 0 and index.is_built(kb)
    found = index.search_templates("any romance films like Moonlit Harbour Nights?", k=3)
    assert {tid for tid, _ in found} <= {"__recommend__"}
