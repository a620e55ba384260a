"""The fine-tuned bi-encoder (issue 19): pairs from the training conversations only, the new
items of a turn as targets, the saved encoder loaded by the live turn, and eval's check that
it learned from the --train file (a 2-step fine-tune on the demo KB; no full training here)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from chatrec.eval.learn import check_encoder, encoder_pairs, file_sha256
from chatrec.eval.options import EvalError, EvalOptions
from chatrec.eval.runner import select_conversations
from chatrec.kb import load_kb
from chatrec.retrieval.encoder_ft import CARD_FILE, ENCODER_DIR, context_text, item_text, read_card
from chatrec.types import Conversation
from tests_support import KB_DIR

LINES = [ln for ln in (KB_DIR / "transcripts.jsonl").read_text().splitlines() if ln.strip()]

SEEKER = "I loved the Sony Alpha 7 IV camera, anything similar?"
CONV = {
    "conversation_id": "CPAIR",
    "user_id": None,
    "turns": [
        {"role": "user", "text": "hello"},
        {"role": "user", "text": SEEKER, "mentions": ["VW-1031"]},
        {
            "role": "agent",
            "text": "The Sony Alpha 7 IV is great; also try the Sony ZV-E10.",
            "recommended": ["VW-1031", "VW-1032"],
            "intent": "recommend_product",
        },
        {"role": "user", "text": "something cheaper?"},
        {
            "role": "agent",
            "text": "Then the Sony ZV-E10 again.",
            "recommended": ["VW-1032"],
            "intent": "recommend_product",
        },
    ],
}


def test_encoder_pairs_target_only_new_items_not_the_triggering_messages_mentions():
    kb = load_kb(KB_DIR)
    assert {"VW-1031", "VW-1032"} <= set(kb.items), "demo ids changed"
    pairs = encoder_pairs([Conversation.model_validate(CONV)], kb)
    # VW-1031 is named in the message being answered, and VW-1032 is not new at the second turn
    assert pairs == [(context_text([f"hello {SEEKER}"]), item_text(kb.items["VW-1032"]))]
    # the context is the dialogue before the reply, most recent message first; never the reply itself
    assert "ZV-E10" not in pairs[0][0]
    assert context_text(["a", "b  c", "", "d"], last=2) == "d | b c"


def test_encoder_pairs_come_from_the_given_conversations_only():
    kb = load_kb(KB_DIR)
    train = [Conversation.model_validate_json(ln) for ln in LINES[:20]]
    scored = [Conversation.model_validate(CONV)]
    contexts = {c for c, _ in encoder_pairs(train, kb)}
    assert contexts and SEEKER not in " ".join(contexts)
    assert encoder_pairs(train, kb) == encoder_pairs(train, kb)  # deterministic
    assert encoder_pairs(train + scored, kb) != encoder_pairs(train, kb)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A demo KB copy with an encoder fine-tuned for 2 steps by ``chatrec fit-encoder``."""
    from chatrec.cli.main import main

    pytest.importorskip("datasets")  # the train extra, which fit-encoder needs
    d = tmp_path_factory.mktemp("enc")
    kb_dir = d / "kb"
    shutil.copytree(KB_DIR, kb_dir)
    train = d / "train.jsonl"
    train.write_text("\n".join(LINES[:40]) + "\n")
    res = CliRunner().invoke(
        main,
        ["--kb", str(kb_dir), "--data-dir", str(d / "s"), "fit-encoder", "--train", str(train)]
        + ["--max-steps", "2", "--batch-size", "4", "--hold-out", "5"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    return d, kb_dir, train


def test_cli_fit_encoder_saves_the_encoder_with_its_card(tuned):
    _, kb_dir, train = tuned
    card = read_card(kb_dir / ENCODER_DIR)
    assert card is not None and (kb_dir / ENCODER_DIR / CARD_FILE).is_file()
    kb = load_kb(kb_dir)
    assert card["train_sha256"] == file_sha256(train) and card["steps"] == 2 and card["epochs"] == 3
    assert 0 < card["epochs_done"] < 1 and card["held_out"] == 5 and card["conversations"] == 35
    # --hold-out 5 leaves out exactly the conversations `fit-ranker --sample 5` replays (same seed)
    held = {cid for _, cid in select_conversations(EvalOptions(str(train), "-", sample=5, seed=7), kb)[0]}
    kept = [c for ln in LINES[:40] if (c := Conversation.model_validate_json(ln)).conversation_id not in held]
    assert len(held) == 5 and card["pairs"] == len(encoder_pairs(kept, kb))
    assert card["base"] and card["seed"] == 7 and card["max_seq_length"] == 128
    assert list((kb_dir / ENCODER_DIR).glob("items-*.npy")), "the catalogue is embedded once, at fit time"


def test_live_turn_ranks_items_with_the_saved_encoder(tuned, tmp_path):
    from chatrec.chatbot import Chatbot
    from chatrec.config import load_settings

    _, kb_dir, _ = tuned
    settings = load_settings(kb_dir=str(kb_dir), data_dir=str(tmp_path / "state"), llm={"backend": "fake"})
    bot = Chatbot(settings)
    enc = bot.ranker.encoder
    assert enc is not None and enc.embedder.model_name == str(kb_dir / ENCODER_DIR)
    # fine-tuned weights, not the base model's: the catalogue embeds differently
    base = bot.planner.retriever.embedder.embed([item_text(bot.kb.items[enc.ids[0]])])[0]
    assert not np.allclose(enc.matrix[0], base, atol=1e-4)
    result = bot.ask("I need a camera for vlogging")
    rank = result.trace["rank"]
    assert rank["dense_encoder"].startswith("fine-tuned")
    # the dense feature of every scored candidate, whichever source found it, is the fine-tuned
    # encoder's similarity, and dense_rank its rank among all the catalogue's items
    scores = enc.similarities(["I need a camera for vlogging"])
    assert rank["scored"] and all(
        abs(x["features"]["dense"] - round(max(0.0, scores.cosine(x["item_id"])), 3)) < 2e-3 for x in rank["scored"]
    )
    assert all(x["features"]["dense_rank"] == round(scores.rank_score(x["item_id"]), 3) for x in rank["scored"])
    # templates keep the base model: the Chroma index was not re-embedded with the fine-tuned one
    assert bot.planner.retriever.embedder.model_name == settings.retrieval.embedder


def test_eval_refuses_an_encoder_fine_tuned_on_another_file(tuned, tmp_path):
    from chatrec.cli.main import main

    d, kb_dir, _ = tuned
    other = tmp_path / "other.jsonl"
    other.write_text("\n".join(LINES[40:60]) + "\n")
    scored = tmp_path / "scored.jsonl"
    scored.write_text("\n".join(LINES[60:62]) + "\n")
    with pytest.raises(EvalError, match="may have learned from the scored conversations"):
        check_encoder(load_kb(kb_dir), file_sha256(other), str(other))
    res = CliRunner().invoke(
        main, ["--kb", str(kb_dir), "--data-dir", str(d / "s"), "eval", str(scored), "--train", str(other)]
    )
    assert res.exit_code != 0 and "fit-encoder --train" in res.output


def test_eval_with_an_encoder_from_its_training_file_refuses_nothing_new_and_live_ask_ranks_the_same(tuned, tmp_path):
    """Eval accepts the encoder fine-tuned on its --train file, and the live turn of a KB holding
    that encoder and the fitted ranker shows the ids eval scored for a conversation's first turn."""
    from chatrec.chatbot import Chatbot
    from chatrec.config import Settings, load_settings
    from chatrec.eval.runner import run_eval
    from chatrec.turn.rank import RANKER_FILE

    _, kb_src, train = tuned
    scored = tmp_path / "scored.jsonl"
    # anonymous, so a live turn sees the same (empty) purchase history as the replay
    scored.write_text("\n".join(json.dumps({**json.loads(ln), "user_id": None}) for ln in LINES[60:70]) + "\n")
    assert check_encoder(load_kb(kb_src), file_sha256(train), str(train)) is not None
    out = tmp_path / "o"
    opts = EvalOptions(transcripts=str(scored), out=str(out), ablations=[], baselines=False, train=str(train))
    summary = run_eval(Settings(kb_dir=kb_src, data_dir=tmp_path / "s"), opts, progress=False)
    assert summary["run"]["conversations"] == 10
    card = json.loads((out / "ranker.json").read_text())["card"]
    assert card["dense_encoder"]["train_sha256"] == file_sha256(train)

    kb_dir = tmp_path / "kb"
    shutil.copytree(kb_src, kb_dir)
    shutil.copy(train, kb_dir / "transcripts.jsonl")  # a KB of the training logs, as imported
    shutil.copy(out / "ranker.json", kb_dir / RANKER_FILE)
    settings = load_settings(
        kb_dir=str(kb_dir), data_dir=str(tmp_path / "live"), llm={"backend": "fake"}, retrieval={"exact_search": True}
    )
    bot = Chatbot(settings)
    assert bot.ranker.encoder is not None and bot.ranker.fitted is not None
    rows = [json.loads(r) for r in (out / "turns.jsonl").read_text().splitlines()]
    firsts = [
        r
        for r in rows
        if r["system"] == "full" and r["kind"] == "rec" and r["turn_index"] == 1 and r["route"] in ("recommend", "both")
    ]
    compared = 0
    for r in firsts:
        result = bot.ask(r["input"])
        if result.route in ("recommend", "both"):  # the live router may ask or answer instead
            assert result.trace["rank"]["dense_encoder"].startswith("fine-tuned")
            assert [x.item_id for x in result.recommendations] == r["shown"], r["conversation_id"]
            compared += 1
    assert compared >= 1


def test_dense_scores_rank_every_item_of_the_catalogue(tuned):
    """DenseScores gives any item (not only the retrieved ones) its cosine and a rank score:
    1 for the most similar item, falling with the log of the rank, 0 for an unknown id."""
    from chatrec.retrieval.encoder_ft import load_item_encoder

    _, kb_dir, _ = tuned
    kb = load_kb(kb_dir)
    enc = load_item_encoder(kb_dir, kb.items)
    assert enc is not None
    scores = enc.similarities(["a fast charger for my phone"])
    order = [i for i, _ in enc.search(scores, len(enc.ids))]
    assert len(order) == len(kb.items)
    assert order == [i for i, _ in enc.search(["a fast charger for my phone"], len(enc.ids))], "same as embedding again"
    ranks = [scores.rank_score(i) for i in order]
    assert ranks[0] == 1.0 and ranks[-1] >= 0.0 and ranks == sorted(ranks, reverse=True)
    assert abs(scores.rank_score(order[9]) - (1 - np.log1p(9) / np.log1p(len(order)))) < 1e-9
    assert [round(scores.cosine(i), 5) for i in order[:3]] == [round(s, 5) for _, s in enc.search(scores, 3)]
    assert scores.cosine("no-such-id") == 0.0 and scores.rank_score("no-such-id") == 0.0
