"""Adapter refresh from feedback (chatrec/train/kto.py, issue 18 item 3): voted turns become KTO
examples with the live prompt, PII masked; the adapter gate promotes a candidate learned from the
logged labels and blocks one trained on shuffled (or flipped) labels; versions roll back."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from chatrec.store.sqlite import SQLiteStore
from chatrec.train import kto
from chatrec.turn.pii import mask_pii
from tests_support import make_tiny_model


def test_feedback_examples_rebuild_the_live_prompts_with_labels_and_pii_masked(fake_bot):
    store = fake_bot.store
    turns = []
    for user, messages in {
        "U001": ["Can you recommend wireless earbuds?", "my email is jane@example.com, where is order #VW-48213?"],
        "U002": ["recommend a gaming mouse", "what is your shipping policy?", "I need a phone case"],
    }.items():
        cid = None
        for m in messages:
            r = fake_bot.ask(m, cid, user)
            cid = r.conversation_id
            turns.append(r)
    earbuds, order, mouse, shipping, case = turns
    assert mouse.recommendations and case.recommendations
    store.add_feedback(earbuds.turn_id, "thumbs_up")
    store.add_feedback(earbuds.turn_id, "reject", earbuds.recommendations[0].item_id)  # thumbs decide
    store.add_feedback(order.turn_id, "thumbs_down")
    store.add_feedback(case.turn_id, "accept", case.recommendations[0].item_id)
    # mouse: shown, no vote, the customer wrote again -> ignored; shipping: no items, no vote -> no label
    examples = kto.feedback_examples(store, fake_bot.planner)
    labels = {e["turn_id"]: e["label"] for e in examples}
    assert labels == {earbuds.turn_id: True, order.turn_id: False, mouse.turn_id: False, case.turn_id: True}

    def masked_history(messages):  # replay masks the logged replies it continues with (the shop's phone too)
        return [{**m, "content": mask_pii(m["content"])} if m["role"] == "assistant" else m for m in messages]

    live = [masked_history(c) for c in fake_bot.llm.calls]
    for e in examples:  # the prompt the live turn had
        assert e["prompt"] in live, e["turn_id"]
        assert e["completion"][0]["content"] == mask_pii(store.turn(e["turn_id"])["reply_text"])
    text = json.dumps(examples)
    assert "jane@example.com" not in text and "<EMAIL>" in text
    later = kto.feedback_examples(store, fake_bot.planner, after_turn=mouse.turn_id)
    assert [e["turn_id"] for e in later] == [case.turn_id]
    assert kto.feedback_examples(store, fake_bot.planner, tenants={12345}) == []


# ------------------------------------------------------------------ the gate, on a tiny model

GOOD = ["Order {i} ships tomorrow; you will get the tracking link by e-mail.", "Your order {i} arrives on Friday."]
BAD = ["I cannot help with that, sorry.", "Please ask somewhere else."]


def synthetic(n: int, start: int) -> list[dict]:
    """Labelled turns whose desirable replies answer the question and undesirable ones do not."""
    rng = random.Random(start)
    system = {"role": "system", "content": "You are the shop's assistant."}
    out = []
    for i in range(start, start + n):
        good = rng.random() < 0.5
        out.append(
            {
                "prompt": [system, {"role": "user", "content": f"Where is my order {i}?"}],
                "completion": [{"role": "assistant", "content": rng.choice(GOOD if good else BAD).format(i=i)}],
                "label": good,
                "turn_id": i,
            }
        )
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llm"))


def test_adapter_gate_promotes_logged_labels_and_blocks_an_adapter_trained_on_shuffled_labels(tmp_path, tiny_model):
    from chatrec.config import load_settings

    settings = load_settings(
        data_dir=str(tmp_path), llm={"backend": "fake", "model": str(tiny_model), "quantization": "none"}
    )
    folder = kto.adapter_folder(tmp_path)
    versions = kto.AdapterVersions(SQLiteStore(tmp_path / "chatrec.sqlite3"), folder=folder)
    params = kto.KTOParams(steps=16, learning_rate=1e-3, seed=0, max_length=128)

    good = kto.gate_adapter(versions, settings, synthetic(40, 0), params=params)
    assert good.promoted and versions.current() == good.version == "v0001"
    m = good.report["estimates"]["reward_margin"]
    assert m["difference"][1] > 0 and m["candidate"][0] > m["current"][0]  # it learned the logged labels
    assert (folder / "adapter_model.safetensors").exists() and (folder / "adapter_config.json").exists()
    assert "promoted v0001" in kto.report_text(good.report)

    more = synthetic(40, 100)
    shuffled = kto.gate_adapter(versions, settings, more, params=params, labels="shuffled")
    assert not shuffled.promoted and shuffled.version == "v0002" and versions.current() == "v0001"
    assert shuffled.report["estimates"]["reward_margin"]["difference"][1] < -0.02
    assert "blocked v0002" in kto.report_text(shuffled.report) and "SHUFFLED" in kto.report_text(shuffled.report)
    assert json.loads((folder / "chatrec_version.json").read_text())["version"] == "v0001"  # the folder kept v0001

    flipped = kto.gate_adapter(versions, settings, more, params=params, labels="flipped")
    assert not flipped.promoted and flipped.report["estimates"]["reward_margin"]["difference"][2] < 0

    again = kto.gate_adapter(versions, settings, more, params=params)  # the same turns, their logged labels
    assert again.promoted and versions.current() == "v0004"
    assert versions.meta("v0004")["parent"] == "v0001" and versions.meta("v0004")["learned_turn"] == 139
    assert versions.rollback() == "v0001"
    assert json.loads((folder / "chatrec_version.json").read_text())["version"] == "v0001"


def test_adapter_gate_waits_for_enough_labelled_turns_of_both_kinds(tmp_path):
    versions = kto.AdapterVersions(SQLiteStore(tmp_path / "chatrec.sqlite3"))
    from chatrec.config import load_settings

    settings = load_settings(data_dir=str(tmp_path), llm={"backend": "fake"})
    few = kto.gate_adapter(versions, settings, synthetic(10, 0), min_turns=20)
    assert not few.promoted and few.version is None and "10 < 20" in few.report["decision"]
    assert versions.versions() == []


def test_margin_intervals_are_paired_and_stratified():
    labels = np.array([True, True, False, False, True, False])
    current = np.array([-1.0, -1.2, -2.0, -2.2, -0.8, -1.9])
    better = current + np.where(labels, 0.5, -0.5)  # every desirable reply up, every undesirable one down
    out = kto.margin_intervals(current, better, labels)
    assert out["difference"] == (1.0, 1.0, 1.0)  # paired: the same turns on both sides, no spread
    assert out["current"][1] <= out["current"][0] <= out["current"][2]


def test_chatrec_learn_rollback_adapter_rewrites_the_served_folder(tmp_path):
    from click.testing import CliRunner

    from chatrec.cli.main import main

    store = SQLiteStore(tmp_path / "chatrec.sqlite3")
    versions = kto.AdapterVersions(store, folder=kto.adapter_folder(tmp_path))
    for n in (1, 2):
        src = tmp_path / f"a{n}"
        src.mkdir()
        (src / "adapter_config.json").write_text(json.dumps({"n": n}))
        versions.save_folder(src, {"parent": versions.current(), "learned_turn": n}, promote=True)
    folder = tmp_path / "adapters" / "feedback"
    assert json.loads((folder / "adapter_config.json").read_text()) == {"n": 2}
    blocked = tmp_path / "a3"
    blocked.mkdir()
    (blocked / "adapter_config.json").write_text(json.dumps({"n": 3}))
    versions.save_folder(blocked, {"parent": "v0002", "learned_turn": 3}, promote=False)
    run = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "learn", "status", "--adapter"])
    assert run.exit_code == 0, run.output
    assert "* v0002" in run.output and "  v0001" in run.output and "  v0003" in run.output
    run = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "learn", "rollback", "--adapter"])
    assert run.exit_code == 0 and "current adapter: v0001" in run.output
    assert json.loads((folder / "adapter_config.json").read_text()) == {"n": 1}
    run = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "learn", "rollback", "--adapter"])
    assert run.exit_code == 0 and "current adapter: none" in run.output and not folder.exists()
    assert store.current_policy("bandit") is None  # the ranking policy's versions are apart


def test_chatrec_learn_adapter_with_nothing_new_says_so_without_loading_anything(tmp_path):
    from click.testing import CliRunner

    from chatrec.cli.main import main

    store = SQLiteStore(tmp_path / "chatrec.sqlite3")
    cid = store.new_conversation("U001")
    tid = store.save_turn(cid, {}, "hello", "Hello! How can I help?", "chitchat", None, [], {})
    store.add_feedback(tid, "thumbs_up")
    run = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "learn", "--adapter", "--after", "0"])
    assert run.exit_code != 0  # no such option: --adapter has its own options only
    run = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "learn", "--adapter", "--min-turns", "5"])
    assert run.exit_code == 0, run.output
    assert "not enough new labelled turns (1 < 5)" in run.output  # counted before any replay or model load
    assert store.policy_versions("adapter") == [] and not (tmp_path / "adapters").exists()
