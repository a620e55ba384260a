"""The train/score protocol (issue 19): learn only from --train, refuse overlap, strict "new"
items, the copy-the-mention baseline, and the saved ranker the live turn loads."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from chatrec.config import Settings
from chatrec.eval.learn import content_hash, read_training, training_kb
from chatrec.eval.options import EvalError, EvalOptions
from chatrec.eval.runner import run_eval
from chatrec.kb import is_heldout, load_kb
from chatrec.turn.rank import RANKER_FILE, Behaviour, load_fitted
from chatrec.types import Conversation
from tests_support import KB_DIR

LINES = [ln for ln in (KB_DIR / "transcripts.jsonl").read_text().splitlines() if ln.strip()]
HELDOUT = [ln for ln in LINES if is_heldout(json.loads(ln)["conversation_id"])][:10]


def _hash(line: str) -> str:
    return content_hash(Conversation.model_validate_json(line))


def _train_lines(n: int = 60) -> list[str]:
    """Training conversations: not held out, and no copy of a scored one under another id."""
    scored = {_hash(ln) for ln in HELDOUT}
    return [ln for ln in LINES if not is_heldout(json.loads(ln)["conversation_id"]) and _hash(ln) not in scored][:n]


# A seeker names an item and the recommender answers with it and another one: the named item
# is a gold item, but not a new one (the defect: it used to count as "not yet mentioned").
ECHO = {
    "conversation_id": "CECHO",
    "user_id": None,
    "turns": [
        {"role": "user", "text": "I loved the Sony Alpha 7 IV camera, anything similar?", "mentions": ["VW-1031"]},
        {
            "role": "agent",
            "text": "The Sony Alpha 7 IV is great; also try the Sony ZV-E10.",
            "recommended": ["VW-1031", "VW-1032"],
            "intent": "recommend_product",
        },
    ],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("protocol")
    kb = load_kb(KB_DIR)
    assert all(i in kb.items for i in ECHO["turns"][1]["recommended"]), "demo ids changed"
    # anonymous, so a live turn now sees the same (empty) purchase history as the replay
    anonymous = [json.dumps({**json.loads(ln), "user_id": None}) for ln in HELDOUT]
    (d / "scored.jsonl").write_text("\n".join([*anonymous, json.dumps(ECHO)]) + "\n")
    (d / "train.jsonl").write_text("\n".join(_train_lines()) + "\n")
    return d


@pytest.fixture(scope="module")
def run(files, tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    out = files / "run"
    settings = Settings(kb_dir=KB_DIR, data_dir=state)
    opts = EvalOptions(
        transcripts=str(files / "scored.jsonl"),
        out=str(out),
        ablations=[],
        bootstrap=200,
        train=str(files / "train.jsonl"),
    )
    return run_eval(settings, opts, progress=False), out, state


def _eval(files, tmp_path, train_lines):
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(train_lines) + "\n")
    opts = EvalOptions(transcripts=str(files / "scored.jsonl"), out=str(tmp_path / "o"), train=str(train))
    return run_eval(Settings(kb_dir=KB_DIR, data_dir=tmp_path / "s"), opts, progress=False)


def test_eval_refuses_a_training_conversation_that_is_scored_by_id(files, tmp_path):
    with pytest.raises(EvalError, match=r"share conversations: 1 by id \(" + json.loads(HELDOUT[0])["conversation_id"]):
        _eval(files, tmp_path, [*_train_lines(5), HELDOUT[0]])


def test_eval_refuses_a_training_conversation_that_is_scored_by_content(files, tmp_path):
    copy = json.loads(HELDOUT[1])
    original = copy["conversation_id"]
    copy["conversation_id"] = "CRENAMED"
    for t in copy["turns"]:
        t["text"] = "  " + t["text"].upper() + " "  # case and spacing do not hide a copy
    with pytest.raises(EvalError, match=f"1 by content \\({original} = CRENAMED\\)"):
        _eval(files, tmp_path, [*_train_lines(5), json.dumps(copy)])


def test_train_protocol_learns_statistics_from_the_training_file_only(run, files):
    summary, out, _ = run
    fitted = load_fitted(out / "ranker.json")
    assert fitted is not None
    kb = load_kb(KB_DIR)
    train = read_training(files / "train.jsonl", kb)
    assert fitted["card"]["train_conversations"] == len(train) == 60
    assert fitted["statistics"] == json.loads(json.dumps(Behaviour(training_kb(kb, train)).counts()))
    # the scored conversations taught nothing: counting them too would change the statistics
    scored = [Conversation.model_validate_json(ln) for ln in HELDOUT]
    assert Behaviour(training_kb(kb, train + scored)).counts() != Behaviour(training_kb(kb, train)).counts()
    assert "learn from" in summary["run"]["protocol"] and "full@configured" not in summary["systems"]
    assert summary["run"]["learned_weights"] == {}  # no post-hoc re-ranking: the lists are the live ones


def test_new_items_exclude_the_triggering_message(run):
    _, out, _ = run
    rows = [json.loads(r) for r in (out / "turns.jsonl").read_text().splitlines()]
    echo = {r["system"]: r for r in rows if r["conversation_id"] == "CECHO"}
    assert echo["full"]["gold"] == ["VW-1031", "VW-1032"]
    assert echo["full"]["gold_new"] == ["VW-1032"]  # named in the message it answers: not new
    # copying the customer's mention finds the old item and never a new one
    assert echo["copy_mention"]["ranked"][0] == "VW-1031"
    assert echo["copy_mention"]["metrics"]["rec.recall@1"] == 0.5
    assert echo["copy_mention"]["metrics"]["rec_new.recall@10"] == 0.0


def test_copy_mention_scores_nothing_on_new_items(run):
    summary, _, _ = run
    m = summary["systems"]["copy_mention"]["metrics"]
    assert m["rec_new.recall@50"]["value"] == 0.0 and m["rec.recall@1"]["value"] > 0


def test_live_ask_ranks_what_eval_scored(run, files, tmp_path):
    """The fitted ranker saved in the KB folder is what the live turn ranks with: the ids
    ``Chatbot.ask`` shows for a conversation's first message equal those eval recorded."""
    from chatrec.chatbot import Chatbot
    from chatrec.config import load_settings

    _, out, _ = run
    kb_dir = tmp_path / "kb"
    shutil.copytree(KB_DIR, kb_dir)
    shutil.copy(files / "train.jsonl", kb_dir / "transcripts.jsonl")  # a KB of the training logs, as imported
    (kb_dir / RANKER_FILE).parent.mkdir()
    shutil.copy(out / "ranker.json", kb_dir / RANKER_FILE)
    rows = [json.loads(r) for r in (out / "turns.jsonl").read_text().splitlines()]
    firsts = {}
    for r in rows:
        if r["system"] == "full" and r["kind"] == "rec" and r["route"] in ("recommend", "both"):
            firsts.setdefault(r["conversation_id"], r)
    first_turn = [r for cid, r in firsts.items() if r["turn_index"] == 1 and cid != "CECHO"]
    assert first_turn
    settings = load_settings(
        kb_dir=str(kb_dir), data_dir=str(tmp_path / "state"), llm={"backend": "fake"}, retrieval={"exact_search": True}
    )
    bot = Chatbot(settings)
    assert bot.ranker.fitted is not None and bot.ranker.fitted["card"] == load_fitted(out / "ranker.json")["card"]
    compared = 0
    for r in first_turn:
        result = bot.ask(r["input"])
        if result.route in ("recommend", "both"):  # the live router may ask or answer instead
            assert [x.item_id for x in result.recommendations] == r["shown"], r["conversation_id"]
            compared += 1
    assert compared >= 1


def test_cli_fit_ranker_saves_a_ranker_with_its_card(files, tmp_path):
    from chatrec.cli.main import main

    kb_dir = tmp_path / "kb"
    shutil.copytree(KB_DIR, kb_dir)
    train = tmp_path / "t.jsonl"
    train.write_text("\n".join(_train_lines(8)) + "\n")
    res = CliRunner().invoke(
        main,
        ["--kb", str(kb_dir), "--data-dir", str(tmp_path / "s"), "fit-ranker", "--train", str(train)],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    fitted = load_fitted(kb_dir / RANKER_FILE)
    assert fitted is not None and fitted["version"] == 1
    card = fitted["card"]
    assert card["train_conversations"] == 8 and len(card["train_sha256"]) == 64 and card["created_at"]
    assert set(fitted["weights"]) >= {"dense", "cooccur", "popular"}
