"""The ranking policy (chatrec/turn/policy.py): logged slates with propensities, exploration only
among allowed candidates, the bandit learning from feedback, versions and rollback."""

from __future__ import annotations

import json
import random

import pytest

from chatrec.chatbot import Chatbot
from chatrec.llm.fake import FakeLLM
from chatrec.store.sqlite import SQLiteStore
from chatrec.turn.policy import BanditPolicy, FusionPolicy, PolicyStore, choose, policy_kind, update
from chatrec.turn.profile import history_of
from chatrec.turn.state import DialogueState
from tests_support import SlateCandidate, SlateItem, fake_settings


def _cands(n: int = 8) -> list[SlateCandidate]:
    return [
        SlateCandidate(SlateItem(f"I{i}", "good" if i % 4 == 3 else "plain"), 1.0 - i / 10, {"dense": 1.0 - i / 10})
        for i in range(n)
    ]


def test_fusion_policy_without_exploration_shows_the_fused_order_with_propensity_one():
    slate = choose(FusionPolicy(), _cands(), {"user": "u"}, 4)
    assert [c.item.id for c in slate.shown] == ["I0", "I1", "I2", "I3"]
    assert [s["propensity"] for s in slate.record["shown"]] == [1.0] * 4
    assert [c["item_id"] for c in slate.record["candidates"]] == [f"I{i}" for i in range(8)]


def test_exploration_propensities_are_the_probability_of_each_position():
    cands, eps, rng = _cands(), 0.3, random.Random(0)
    firsts: dict[str, int] = {}
    logged: dict[str, float] = {}
    for _ in range(4000):
        s = choose(FusionPolicy(), cands, {}, 2, eps, rng).record["shown"][0]
        firsts[s["item_id"]] = firsts.get(s["item_id"], 0) + 1
        logged[s["item_id"]] = s["propensity"]
    assert logged["I0"] == pytest.approx(0.7 + 0.3 / 8) and logged["I5"] == pytest.approx(0.3 / 8)
    for item, n in firsts.items():  # the empirical frequency matches the logged propensity
        assert abs(n / 4000 - logged[item]) < 0.03, item


def test_the_bandit_learns_from_logged_accepts_and_reranks():
    policy, rng = BanditPolicy(), random.Random(1)
    cands = _cands()
    assert [c.item.id for c in choose(policy, cands, {"user": "u"}, 2).shown] == ["I0", "I1"]  # untrained: fused order
    logs, votes = [], []
    for t in range(1, 301):
        rec = choose(policy, cands, {"user": "u"}, 2, 0.5, rng).record
        logs.append({**rec, "turn_id": t})
        votes += [
            {"turn_id": t, "kind": "accept", "item_id": s["item_id"]}
            for s in rec["shown"]
            if s["item_id"] in ("I3", "I7")
        ]
    assert update(policy, logs, votes) == 600 and policy.learned_turn == 300
    assert {c.item.id for c in choose(policy, cands, {"user": "u"}, 2).shown} == {"I3", "I7"}
    assert update(policy, logs, votes) == 0  # each logged turn is learned once


def test_policy_versions_promote_and_roll_back(tmp_path):
    store = PolicyStore(SQLiteStore(tmp_path / "chatrec.sqlite3"))
    assert store.current() is None and store.load().version == "v0000"
    p = store.load()
    p.learned_turn = 7
    assert store.save(p) == "v0001" and store.current() == "v0001"
    assert store.save(store.load(), promote=False) == "v0002" and store.current() == "v0001"
    assert store.meta("v0002")["parent"] == "v0001" and store.load("v0002").learned_turn == 7
    store.promote("v0002")
    assert store.rollback() == "v0001" and store.current() == "v0001"
    assert store.rollback() is None and store.current() is None


def test_rollback_after_a_blocked_candidate_returns_to_the_parent_not_the_blocked_version(tmp_path):
    """v0001 promoted, v0002 blocked (saved, not promoted), v0003 learned from v0001 and promoted:
    rolling back made the blocked v0002 current (it took the previous number)."""
    store = PolicyStore(SQLiteStore(tmp_path / "chatrec.sqlite3"))
    assert store.save(store.load()) == "v0001"
    assert store.save(store.load(), promote=False) == "v0002"  # the gate blocked it
    assert store.save(store.load()) == "v0003" and store.meta("v0003")["parent"] == "v0001"
    assert store.rollback() == "v0001" and store.current() == "v0001"


def test_live_turns_log_slates_and_exploration_never_shows_a_filtered_item(tmp_path, kb, shared_index):
    settings = fake_settings(tmp_path, ranking={"explore": 0.5})
    bot = Chatbot(settings, llm=FakeLLM(), kb=kb, index=shared_index)
    bot.ranker.rng = random.Random(3)
    explored = 0
    for msg in ("Can you recommend a phone case under $30, not OtterBox?", "Any earbuds under $100?"):
        for user in ("U001", "U002", None):
            r = bot.ask(msg, user_id=user)
            assert "policy_log" not in r.trace.get("rank", {})  # moved to the store's log
            rec = bot.store.ranking_log(r.turn_id - 1)[0]
            assert rec["turn_id"] == r.turn_id and rec["policy"] == "fusion" and rec["epsilon"] == 0.5
            assert [s["item_id"] for s in rec["shown"]] == [x.item_id for x in r.recommendations]
            state = DialogueState.model_validate(bot.store.load_state(r.conversation_id))
            history = history_of(kb, user)
            for s in rec["shown"]:
                assert 0 < s["propensity"] <= 1
                assert bot.ranker.allowed(kb.items[s["item_id"]], state, history) is None
                explored += s["explored"]
            assert {s["item_id"] for s in rec["shown"]} <= {c["item_id"] for c in rec["candidates"]}
            assert all(set(c["features"]) >= {"dense", "popular"} for c in rec["candidates"])
    assert explored > 0


def test_the_policy_scores_and_logs_the_stored_form_of_a_personal_user_id(tmp_path, kb, shared_index):
    """An email as user id: the bandit must score the context that is logged and learned (the
    keyed hash the store keeps), never the address itself."""
    bot = Chatbot(fake_settings(tmp_path, ranking={"explore": 0.1}), llm=FakeLLM(), kb=kb, index=shared_index)
    r = bot.ask("Any earbuds under $100?", user_id="jane.doe@example.com")
    rec = bot.store.ranking_log(r.turn_id - 1)[0]
    assert rec["context"]["user"] == bot.owner_key("jane.doe@example.com") and rec["context"]["user"].startswith("uid:")
    assert "jane" not in json.dumps(rec)


def test_policy_promoted_on_one_replica_is_used_by_the_other(tmp_path, kb, shared_index):
    """Two chatbots (two replicas) on one store: a version saved and promoted through one is what the
    other ranks with on its next turn, and a rollback through the other reaches the first."""
    store_path = tmp_path / "chatrec.sqlite3"
    settings = fake_settings(tmp_path, ranking={"policy": "bandit"})
    a = Chatbot(settings, llm=FakeLLM(), kb=kb, index=shared_index, store=SQLiteStore(store_path))
    b = Chatbot(settings, llm=FakeLLM(), kb=kb, index=shared_index, store=SQLiteStore(store_path))
    msg = "Any earbuds under $100?"
    first = b.ask(msg, user_id="U001")
    assert b.store.ranking_log(first.turn_id - 1)[0]["version"] == "v0000"  # untrained: nothing saved yet

    versions = PolicyStore(a.store)  # `chatrec learn` on replica a's machine
    trained = versions.load()
    trained.learned_turn = first.turn_id
    assert versions.save(trained) == "v0001"
    r = b.ask(msg, user_id="U001")
    assert b.ranker.policy.version == "v0001"
    assert b.store.ranking_log(r.turn_id - 1)[0]["version"] == "v0001"  # logged as ranked by the new version
    assert b.ranker.policy.learned_turn == first.turn_id  # the model and meta came from the store

    assert PolicyStore(b.store).rollback() is None  # `chatrec learn rollback` elsewhere
    r = a.ask(msg, user_id="U002")
    assert a.store.ranking_log(r.turn_id - 1)[0]["version"] == "v0000"


def test_policy_versions_of_two_shops_are_kept_apart(tmp_path):
    store = SQLiteStore(tmp_path / "chatrec.sqlite3")
    shop, other = PolicyStore(store, policy_kind()), PolicyStore(store, policy_kind("outdoor"))
    assert shop.save(shop.load()) == "v0001" and other.versions() == [] and other.current() is None
    assert other.save(other.load()) == "v0001" and shop.versions() == ["v0001"]
