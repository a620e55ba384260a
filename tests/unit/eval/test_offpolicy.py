"""The ranking policy's gate (chatrec/eval/offpolicy.py): a candidate learned from logged accepts
is promoted, one learned from shuffled rewards is blocked; versions roll back."""

from __future__ import annotations

import random

from chatrec.eval.offpolicy import learn_and_gate, report_text
from chatrec.store.sqlite import SQLiteStore
from chatrec.turn.policy import FusionPolicy, PolicyStore, choose
from tests_support import SlateCandidate, SlateItem

GOOD = ("I3", "I7")  # the items simulated customers accept


CANDS = [SlateCandidate(SlateItem(f"I{i}", f"b{i % 3}"), 1.0 - i / 10, {"dense": 1.0 - i / 10}) for i in range(8)]


def _log(policy, first_turn: int, n: int, rng: random.Random) -> tuple[list[dict], list[dict]]:
    """``n`` slates shown by ``policy`` exploring with epsilon 0.5; each good item shown is accepted."""
    logs, votes = [], []
    for t in range(first_turn, first_turn + n):
        rec = choose(policy, CANDS, {"user": f"u{t % 5}"}, 2, 0.5, rng).record
        logs.append({**rec, "turn_id": t})
        votes += [
            {"turn_id": t, "kind": "accept", "item_id": s["item_id"]} for s in rec["shown"] if s["item_id"] in GOOD
        ]
    return logs, votes


def _i7_logs(rng: random.Random, first: int, n: int, look: tuple[float, float] = (1.0, 1.0)):
    """``n`` slates of the fused order exploring with epsilon 0.5; only I7 is wanted, and it is
    accepted with probability ``look[position]``. Returns the logs and the votes by turn."""
    logs, by_turn = [], {}
    for t in range(first, first + n):
        rec = choose(FusionPolicy(), CANDS, {"user": f"u{t % 5}"}, 2, 0.5, rng).record
        logs.append({**rec, "turn_id": t})
        for s in rec["shown"]:
            if s["item_id"] == "I7" and rng.random() < look[s["position"]]:
                by_turn.setdefault(t, []).append({"turn_id": t, "kind": "accept", "item_id": "I7"})
    return logs, by_turn


def _learned(logs: list[dict], by_turn: dict[int, list[dict]]):
    from chatrec.turn.policy import BanditPolicy, update

    candidate = BanditPolicy()
    update(candidate, logs, [v for vs in by_turn.values() for v in vs])
    return candidate


def test_gate_promotes_a_candidate_learned_from_logged_accepts(tmp_path):
    versions = PolicyStore(SQLiteStore(tmp_path / "chatrec.sqlite3"))
    logs, votes = _log(FusionPolicy(), 1, 300, random.Random(0))
    result = learn_and_gate(versions, logs, votes)
    assert result.promoted and versions.current() == result.version == "v0001"
    assert result.report["estimates"]["turns"] == result.report["new_logged_turns"] == 300  # cross-fitted: all scored
    ips = result.report["estimates"]["ips"]
    assert ips["difference"][1] > 0 and ips["candidate"][0] > ips["current"][0]
    assert "promoted v0001" in report_text(result.report)


def test_gate_blocks_a_deliberately_worse_candidate_trained_on_shuffled_rewards(tmp_path):
    versions = PolicyStore(SQLiteStore(tmp_path / "chatrec.sqlite3"))
    logs, votes = _log(FusionPolicy(), 1, 300, random.Random(0))
    assert learn_and_gate(versions, logs, votes).promoted  # v0001 learned what customers accept
    more_logs, more_votes = _log(versions.load(), 301, 300, random.Random(1))  # logged by v0001
    all_logs, all_votes = logs + more_logs, votes + more_votes
    result = learn_and_gate(versions, all_logs, all_votes, shuffle_rewards=True)
    assert not result.promoted and result.version == "v0002"
    assert versions.current() == "v0001"  # the worse candidate is kept as a version, not made current
    assert result.report["estimates"]["ips"]["difference"][2] < 0  # clearly worse, not just uncertain
    assert "blocked v0002" in report_text(result.report) and "SHUFFLED" in report_text(result.report)
    # the same logs with the true rewards: promoted
    versions2 = PolicyStore(SQLiteStore(tmp_path / "other.sqlite3"))
    assert learn_and_gate(versions2, logs, votes).promoted
    assert learn_and_gate(versions2, all_logs, all_votes).promoted
    assert versions2.rollback() == "v0001"


def test_gate_waits_for_enough_new_logged_turns(tmp_path):
    versions = PolicyStore(SQLiteStore(tmp_path / "chatrec.sqlite3"))
    logs, votes = _log(FusionPolicy(), 1, 10, random.Random(0))
    result = learn_and_gate(versions, logs, votes, min_turns=20)
    assert not result.promoted and result.version is None and versions.versions() == []


def _store_with_logs(data_dir, logs, votes):
    store = SQLiteStore(data_dir / "chatrec.sqlite3")
    cid = store.new_conversation("u")
    ids = {}
    for rec in logs:
        shown = [s["item_id"] for s in rec["shown"]]
        ids[rec["turn_id"]] = store.save_turn(cid, {}, "q", "a", "recommend", None, shown, {})
        store.log_ranking(ids[rec["turn_id"]], {k: v for k, v in rec.items() if k != "turn_id"})
    for f in votes:
        store.add_feedback(ids[f["turn_id"]], f["kind"], f["item_id"])


def test_chatrec_learn_promotes_blocks_shuffled_and_rolls_back(tmp_path):
    from click.testing import CliRunner

    from chatrec.cli.main import main

    data = tmp_path / "state"
    logs, votes = _log(FusionPolicy(), 1, 300, random.Random(0))
    _store_with_logs(data, logs, votes)
    run = CliRunner()
    r = run.invoke(main, ["--data-dir", str(data), "learn"])
    assert r.exit_code == 0 and "decision: promoted v0001" in r.output, r.output
    more_logs, more_votes = _log(PolicyStore(SQLiteStore(data / "chatrec.sqlite3")).load(), 301, 300, random.Random(1))
    _store_with_logs(data, more_logs, more_votes)
    r = run.invoke(main, ["--data-dir", str(data), "learn", "--shuffle-rewards"])
    assert r.exit_code == 0 and "decision: blocked v0002" in r.output, r.output
    assert PolicyStore(SQLiteStore(data / "chatrec.sqlite3")).meta("v0002")["gate"]["shuffled_rewards"] is True
    r = run.invoke(main, ["--data-dir", str(data), "learn", "status"])
    assert "* v0001" in r.output and "  v0002" in r.output
    r = run.invoke(main, ["--data-dir", str(data), "learn", "status", "--tenant", "nope"])
    assert r.exit_code != 0 and "unknown tenant 'nope'" in r.output
    r = run.invoke(main, ["--data-dir", str(data), "learn", "rollback"])
    assert (
        r.exit_code == 0
        and "untrained" in r.output
        and PolicyStore(SQLiteStore(data / "chatrec.sqlite3")).current() is None
    )


def test_ips_values_a_reordering_candidate_at_what_its_own_slate_earns():
    """Only I7 is ever accepted. A candidate that learned to show I7 first earns 1 per slate (I7,
    then an item nobody accepts). The estimate must say about 1: an earlier estimator compared the
    policy at every position with the logged *remaining* candidates, so it showed I7 again at
    position 1 whenever the log had not, and valued the candidate at almost 2."""
    from chatrec.eval.offpolicy import marginal_propensities, turn_values

    rng = random.Random(3)
    candidate = _learned(*_i7_logs(rng, 1, 300))
    held, by_turn = _i7_logs(rng, 301, 2000)
    first = candidate.scores(CANDS, {"user": "u0"})
    assert max(range(len(CANDS)), key=lambda i: first[i]) == 7  # it learned to show I7 first
    for policy, truth in ((candidate, 1.0), (FusionPolicy(), 0.0)):  # the fused order shows I0, I1
        ips = sum(turn_values(policy, rec, by_turn.get(rec["turn_id"], []))[0] for rec in held) / len(held)
        assert abs(ips - truth) < 0.25, (policy.name, ips)
    # the logging propensities are the epsilon-greedy draw's marginals, computed exactly
    m = marginal_propensities(tuple(range(8)), 0.5, 2)
    assert abs(m[(0, 0)] - (0.5 + 0.5 / 8)) < 1e-12 and abs(m[(0, 7)] - 0.5 / 8) < 1e-12
    # position 1, item 0 (first in the order): position 0 took another one (0.5 * 7/8), then greedy or drawn
    assert abs(m[(1, 0)] - 0.5 * 7 / 8 * (0.5 + 0.5 / 7)) < 1e-12
    assert abs(sum(p for (k, _), p in m.items() if k == 1) - 1.0) < 1e-9


def test_position_bias_corrects_for_where_the_logs_showed_an_item():
    """Customers look at position 1 half as often as at the top: I7, the only item anyone wants,
    is accepted with probability 1 at the top and 0.5 below it. A candidate that shows I7 first
    earns 1 per slate. Read flat, the logs undervalue I7 (it was often shown second); with the
    position bias (1, 0.5) the estimate is about 1."""
    from chatrec.eval.offpolicy import turn_values

    rng = random.Random(5)
    candidate = _learned(*_i7_logs(rng, 1, 300, look=(1.0, 0.5)))
    held, by_turn = _i7_logs(rng, 301, 3000, look=(1.0, 0.5))

    def value(bias: tuple[float, ...]) -> float:
        vals = [turn_values(candidate, r, by_turn.get(r["turn_id"], []), position_bias=bias)[0] for r in held]
        return sum(vals) / len(vals)

    assert abs(value((1.0, 0.5)) - 1.0) < 0.15
    assert value(()) < 0.85  # flat: I7's accepts at position 1 count as what it earns at the top


def test_the_gate_reads_the_logged_order_not_a_recomputed_one():
    """Two scores that round to the same logged value: ``choose`` drew from the unrounded order
    (b first); recomputing it from the rounded log would put a first and give b a probability of 0
    (an earlier version clipped that to 1e-3: a weight of 1000). The record keeps the order."""
    from chatrec.eval.offpolicy import turn_values

    cands = [SlateCandidate(SlateItem("a", "x"), 0.123451, {}), SlateCandidate(SlateItem("b", "x"), 0.123453, {})]
    rec = {**choose(FusionPolicy(), cands, {"user": "u"}, 1, 0.0, random.Random(0)).record, "turn_id": 1}
    assert rec["order"] == ["b", "a"] and rec["depth"] == 1 and rec["shown"][0]["item_id"] == "b"
    assert rec["candidates"][0]["fused"] == rec["candidates"][1]["fused"]  # tied once rounded
    prefers_b = {**rec, "candidates": [{**c, "fused": 0.2 if c["item_id"] == "b" else 0.1} for c in rec["candidates"]]}
    ips, dr, shown = turn_values(FusionPolicy(), prefers_b, [{"turn_id": 1, "kind": "accept", "item_id": "b"}])
    assert (ips, dr, shown) == (1.0, 1.0, 1)


def test_chatrec_learn_reads_only_its_own_shops_ranking_log(tmp_path):
    """Shops share one store; a shop's gate must not learn from (or replay with the versions of)
    another shop's slates."""
    from chatrec.cli.learn import _shop_ranking_log
    from chatrec.store import open_keys, open_store
    from tests_support import TINY, fake_settings

    settings = fake_settings(tmp_path, tenants={"tiny": {"kb_dir": str(TINY)}})
    store = open_store(settings)
    _, key = open_keys(settings, store).add([], "t", "tiny")
    rec = choose(FusionPolicy(), CANDS, {"user": "u"}, 2).record
    turns = {}
    for shop, tenant_id in (("default", None), ("tiny", key.id)):
        cid = store.new_conversation("u", tenant=tenant_id)
        turns[shop] = store.save_turn(cid, {}, "q", "a", "recommend", None, ["I0"], {})
        store.log_ranking(turns[shop], rec)
    assert [r["turn_id"] for r in _shop_ranking_log(settings, store, None)] == [turns["default"]]
    assert [r["turn_id"] for r in _shop_ranking_log(settings, store, "tiny")] == [turns["tiny"]]
