"""The INSPIRED importer: movie database + dialogue TSVs -> a whole KB, outcomes, bad rows, CLI,
and a round trip through ``chatrec eval``.

The fixture (tests/fixtures/inspired/) is written by the project in the public release's layout
(``dialog_data/*.tsv`` with the release's 19 columns, ``movie_database.tsv``); the movies are invented.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from chatrec.cli.importers import register
from chatrec.importers import IMPORTERS, get_importer
from chatrec.importers.inspired import import_inspired, outcome, title_key
from chatrec.importers.staging import ImportFailed
from chatrec.kb import load_kb
from chatrec.turn.explain import Explainer, load_wording

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "inspired"
TRAIN = FIXTURE / "dialog_data" / "train.tsv"
TEST = FIXTURE / "dialog_data" / "test.tsv"
MOVIES = FIXTURE / "movie_database.tsv"
D1, D2, D3 = "N20201104-101500_11_live", "N20201104-113000_27_live", "N20201105-090000_3_live"
T1, T2 = "N20201106-150000_8_live", "N20201106-161500_19_live"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    out = tmp_path_factory.mktemp("inspired") / "kb"
    report = import_inspired([TRAIN, TEST], MOVIES, out)
    return report, load_kb(out)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_registered_with_the_other_importers():
    assert "inspired" in IMPORTERS and get_importer("inspired") is import_inspired


def test_catalogue_and_graph_from_the_movie_database(imported):
    report, kb = imported
    assert report.items == len(kb.items) == 8
    keeper = kb.items["IvidLH01aaaa"]
    assert keeper.title == "The Lighthouse Keeper (1994)"
    assert keeper.attributes == {"year": 1994, "genre": ["drama"]}
    assert (keeper.category, keeper.brand, keeper.price, keeper.stock) == ("movie", "", None, 1)
    assert kb.shop.title_article is False and "films" in kb.shop.help  # a film site's wording
    assert keeper.description == (
        "A keeper on a remote island writes letters he never sends. Starring Mara Quinn, Theo Brandt. "
        "Directed by Ines Varga."
    )
    tides = kb.items["IvidQT08hhhh"]
    assert tides.title == "Quiet Tides (2008)"  # the database's bare title gets its year column
    assert kb.items["IvidPM05eeee"].description.startswith("A paper girl")  # long_plot when short_plot is empty
    assert kb.items["IvidRT03cccc"].attributes["genre"] == ["comedy", "sci-fi"]
    rows = {(t.subject, t.predicate, t.object) for t in kb.triples}
    assert {
        ("IvidLH01aaaa", "starring", "person:Mara Quinn"),
        ("IvidLH01aaaa", "director", "person:Ines Varga"),
        ("IvidHB02bbbb", "genre", "genre:romance"),
    } <= rows
    assert {p for _, p, _ in rows} == {"starring", "director", "genre"}
    assert report.triples == len(kb.triples)
    assert load_wording(report.out_dir).co_anchor == "often mentioned together with {anchor}"


def test_title_keys_match_the_dialogues_titles():
    assert title_key("The Clockmaker's Night (2019)") == ("the clockmaker s night", 2019)
    assert title_key("Quiet  Tides") == ("quiet tides", None)
    assert title_key("Fast & Furious (2009)") == ("fast and furious", 2009)


def test_transcripts_turns_mentions_and_gold_items(imported):
    report, kb = imported
    convs = {c.conversation_id: c for c in kb.transcripts}
    assert list(convs) == [D1, D2, D3, T1, T2]  # file order; ids from dialog_id, so splits never collide
    d1 = convs[D1]
    assert d1.user_id is None and [t.role for t in d1.turns] == ["user", "agent", "user", "agent", "user", "agent"]
    said = d1.turns[2]
    assert said.text == 'I loved The Lighthouse Keeper, it was so "quiet" and moody Mostly dramas I guess'
    assert said.mentions == ["IvidLH01aaaa"] and not said.liked
    rec = d1.turns[3]
    assert (rec.intent, rec.recommended, rec.mentions) == ("recommend_product", ["IvidHB02bbbb"], ["IvidHB02bbbb"])
    assert d1.turns[4].text == "Oh nice, I accept. Text me at <PHONE> if you find more"
    t2 = convs[T2]
    assert t2.turns[1].recommended == ["IvidQT08hhhh", "IvidCN04dddd"]  # "A;  B" in the movies column
    assert report.leading_agent_turns_dropped == 4 and report.recommendation_turns == 5
    assert dict(report.unknown_mentions) == {"Unknown Film (2000)": 1}
    assert (report.rows_read, report.dialogues_read, report.conversations, report.turns) == (26, 5, 5, 19)
    assert report.skipped == []


def test_accept_and_reject_outcomes_are_mapped(imported):
    report, kb = imported
    convs = {c.conversation_id: c for c in kb.transcripts}
    # accept_rating_good: the recommended movie is accepted on the recommending turn and liked right after
    assert convs[D1].turns[3].accepted == ["IvidHB02bbbb"] and convs[D1].turns[4].liked == ["IvidHB02bbbb"]
    # reject: not accepted, disliked on the seeker's answer
    assert convs[D2].turns[1].accepted == [] and convs[D2].turns[2].disliked == ["IvidRT03cccc"]
    # accept_uninterested is a rejection (coarse label reject_new)
    assert convs[D3].turns[1].accepted == [] and convs[D3].turns[2].disliked == ["Ivid-IO06fff"]
    # the movies column missed the title, the recommender's text names it: still the recommendation
    assert convs[T1].turns[1].recommended == convs[T1].turns[1].accepted == ["IvidPM05eeee"]
    # a trailer id missing from the database: no feedback is invented
    assert not any(t.accepted or t.liked or t.disliked for t in convs[T2].turns)
    assert (report.accepted, report.rejected, report.targets_unknown, report.targets_not_recommended) == (2, 2, 1, 0)


@pytest.mark.parametrize(
    "fine,coarse,taken",
    [
        ("accept_rating_good", "accept_new", True),
        ("accept_rating_mod", "accept_new", True),
        ("accept_others", "accept_new", True),
        ("accept_uninterested", "reject_new", False),
        ("reject", "reject_new", False),
        ("accept_uninterested", "", False),
        ("accept_others", "", True),
        ("", "", None),
    ],
)
def test_outcome_labels(fine, coarse, taken):
    assert outcome(fine, coarse) is taken


def test_bad_rows_reported_with_file_and_line(tmp_path):
    lines = _lines(TRAIN)
    cells = lines[3].split("\t")
    bad_speaker = "\t".join(cells[:2] + ["ROBOT"] + cells[3:])
    bad_utt = "\t".join(cells[:1] + ["x"] + cells[2:])
    dialogues = _write(tmp_path / "train.tsv", [*lines[:4], bad_speaker, bad_utt, "only\ttwo", lines[3], *lines[4:]])
    movies = _lines(MOVIES)
    movie_cells = movies[1].split("\t")
    no_title = "\t".join(movie_cells[:0] + [""] + movie_cells[1:8] + ["vidNEW0000"])
    bad_year = "\t".join(movie_cells[:1] + ["soon"] + movie_cells[2:8] + ["vidNEW1111"])
    db = _write(tmp_path / "movies.tsv", [*movies, movies[1], no_title, bad_year])
    report = import_inspired(dialogues, db, tmp_path / "kb")
    assert report.skipped == [
        f"{db}:10: duplicate video_id vidLH01aaaa",
        f"{db}:11: empty title",
        f"{db}:12: year must be a year, got 'soon'",
        f"{dialogues}:5: speaker must be RECOMMENDER or SEEKER, got 'ROBOT'",
        f"{dialogues}:6: utt_id must be a whole number, got 'x'",
        f"{dialogues}:7: expected 19 fields, got 2",
        f"{dialogues}:8: duplicate utt_id 3 in dialogue 20201104-101500_11_live.pkl",
    ]
    assert report.conversations == 3 and len(load_kb(tmp_path / "kb").transcripts) == 3

    header = lines[0].replace("\tmovies\t", "\tfilms\t")
    with pytest.raises(ImportFailed, match=r"train2\.tsv:1: column\(s\) \['movies'\] not in the header"):
        import_inspired(_write(tmp_path / "train2.tsv", [header, *lines[1:]]), MOVIES, tmp_path / "kb2")
    with pytest.raises(ImportFailed, match="no valid dialogues"):
        import_inspired(_write(tmp_path / "empty.tsv", lines[:1]), MOVIES, tmp_path / "kb3")


def test_no_dialogue_wide_column_is_read(tmp_path, imported):
    """movie_dict and its siblings list every title of the whole dialogue on every row (the later
    recommendation included), and the strategy labels are annotations: changing them changes
    nothing; columns are read by name, so their order does not matter either."""
    lines = _lines(TRAIN)
    header = lines[0].split("\t")
    wide = [header.index(c) for c in ("text_with_placeholder", "genres", "people_names", "expert_label")]
    wide += [header.index(c) for c in ("movie_dict", "genre_dict", "actor_dict", "director_dict", "others_dict")]
    order = list(reversed(range(len(header))))
    changed = []
    for n, line in enumerate(lines):
        cells = line.split("\t")
        if n:
            for i in wide:
                cells[i] = "{'Iron Orchard (2011)': 0}"
        changed.append("\t".join(cells[i] for i in order))
    report = import_inspired(_write(tmp_path / "train.tsv", changed), MOVIES, tmp_path / "kb")
    plain = import_inspired(TRAIN, MOVIES, tmp_path / "plain")
    assert report.skipped == []
    assert (report.out_dir / "transcripts.jsonl").read_bytes() == (plain.out_dir / "transcripts.jsonl").read_bytes()


def test_splits_imported_apart_share_the_catalogue_and_no_conversation(tmp_path):
    train = import_inspired(TRAIN, MOVIES, tmp_path / "train")
    test = import_inspired(TEST, MOVIES, tmp_path / "test")
    for name in ("catalogue.jsonl", "kg.tsv", "reasons.json"):
        assert (train.out_dir / name).read_bytes() == (test.out_dir / name).read_bytes()
    ids = [{c.conversation_id for c in load_kb(r.out_dir).transcripts} for r in (train, test)]
    assert ids[0] == {D1, D2, D3} and ids[1] == {T1, T2}
    with pytest.raises(ImportFailed, match="choose to overwrite"):
        import_inspired(TRAIN, MOVIES, tmp_path / "train")
    limited = import_inspired(TRAIN, MOVIES, tmp_path / "train", overwrite=True, limit=1)
    assert limited.conversations == 1 and limited.dialogues_read == 3


def test_cli(tmp_path):
    @click.group()
    def cli():
        pass

    register(cli)
    out = tmp_path / "kb"
    args = ["import-inspired", str(TRAIN), str(TEST), "--movies", str(MOVIES), "--out", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "26 rows, 5 dialogues read, 5 imported, 0 rows skipped" in res.output
    assert "8 items, 30 triples, 5 conversations, 19 turns, 5 recommendation turns (2 accepted items" in res.output
    assert "1 mentions of 1 titles not in the database dropped, 1 recommended trailer ids" in res.output
    assert len(load_kb(out).transcripts) == 5
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "pass --overwrite" in again.output


def test_round_trip_with_chatrec_eval(tmp_path, monkeypatch):
    """Learn from the imported training split, score the imported test split: the importer's KB
    is what `chatrec eval` reads, gold items included."""
    from chatrec.cli.main import main

    train = import_inspired(TRAIN, MOVIES, tmp_path / "train")
    test = import_inspired(TEST, MOVIES, tmp_path / "test")
    monkeypatch.setenv("CHATREC_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CHATREC_LLM__BACKEND", "fake")
    run = tmp_path / "run"
    res = CliRunner().invoke(
        main,
        [
            "--kb",
            str(test.out_dir),
            "eval",
            str(test.out_dir / "transcripts.jsonl"),
            "--train",
            str(train.out_dir / "transcripts.jsonl"),
            "--out",
            str(run),
            "--ablate",
            "kg",
            "--no-baselines",
            "--bootstrap",
            "100",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["run"]["conversations"] == 2 and summary["run"]["turns"]["rec"] == 2
    assert "rec.recall@10" in summary["systems"]["full"]["metrics"]


def test_film_reasons_on_the_inspired_kb(imported):
    """The film wording on an INSPIRED KB: a shared genre or cast member in words, co-occurrence said
    as mentioned (not bought), and every worded path true in the KG (as for ReDial and the shop)."""
    from reason_checks import check_every_reason

    from chatrec.kg.networkx_graph import NetworkXGraph
    from chatrec.turn.profile import UserHistory

    _, kb = imported
    ex = Explainer(kb, NetworkXGraph(kb.triples, kb.items))
    path = ex.kg.related_items(["IvidLH01aaaa"])["IvidHB02bbbb"]
    said = ex.path_reason(path, UserHistory(), "IvidHB02bbbb")
    assert said in (
        "another film starring Mara Quinn, like The Lighthouse Keeper (1994)",
        "another film directed by Ines Varga, like The Lighthouse Keeper (1994)",
        "another drama film, like The Lighthouse Keeper (1994)",
    )
    rec = ex.explain(kb.items["IvidHB02bbbb"], UserHistory(), co_anchor="IvidLH01aaaa")
    assert rec.reason == "Often mentioned together with The Lighthouse Keeper (1994)."
    check_every_reason(kb)
