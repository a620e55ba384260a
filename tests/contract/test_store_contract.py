"""One contract, every store (:class:`chatrec.store.base.Store`). A new implementation is one
more entry in ``STORES``: a name and a factory ``(request, folder) -> open``, where every call of
``open`` gives another handle on the same data (another process, or the same one after a restart).

- ``sqlite``: :class:`~chatrec.store.sqlite.SQLiteStore` on a file in the test's folder.
- ``postgres``: :class:`~chatrec.store.postgres.PostgresStore` on a fresh database of a real
  PostgreSQL server (``tests/contract/conftest.py``: started once per session; skipped where
  PostgreSQL is not installed, failed instead under ``CHATREC_REQUIRE_SERVERS=1``, as in CI).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Callable

import pytest

from chatrec.store.base import COUNTED, FEEDBACK_KINDS, TURN_STATUSES, Store


def _sqlite(request: pytest.FixtureRequest, folder: Path) -> Callable[[], Store]:
    from chatrec.store.sqlite import SQLiteStore

    return lambda: SQLiteStore(folder / "chatrec.sqlite3")


def _postgres(request: pytest.FixtureRequest, folder: Path) -> Callable[[], Store]:
    from chatrec.store.postgres import PostgresStore

    url = request.getfixturevalue("pg_url")
    opened: list[PostgresStore] = []
    request.addfinalizer(lambda: [s.close() for s in opened])  # before pg_url drops the database

    def open_() -> Store:
        opened.append(PostgresStore(url, pool_size=4))
        return opened[-1]

    return open_


STORES: dict[str, Callable[[pytest.FixtureRequest, Path], Callable[[], Store]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(STORES))
def opener(request, tmp_path) -> Callable[[], Store]:
    """Opens the store under test; every call is a new handle on the same data."""
    return STORES[request.param](request, tmp_path)


@pytest.fixture
def store(opener) -> Store:
    return opener()


def _turn(store: Store, cid: str, n: int, state: dict | None = None, recommended: list[str] | None = None, **kw) -> int:
    return store.save_turn(
        cid,
        state if state is not None else {"turn": n},
        f"user {n}",
        f"reply {n}",
        "service" if n % 2 else "recommend",
        f"T{n}" if n % 2 else None,
        recommended or [],
        {"text": f"reply {n}", "n": n},
        **kw,
    )


def test_is_a_store(store):
    assert isinstance(store, Store)


def test_a_new_conversation_has_an_id_a_user_a_time_and_no_state(store):
    cid = store.new_conversation("U001")
    assert isinstance(cid, str) and cid
    conv = store.conversation(cid)
    assert conv is not None and conv["id"] == cid and conv["user_id"] == "U001"
    assert datetime.fromisoformat(conv["created_at"]).tzinfo is not None
    assert store.load_state(cid) == {} and store.turns(cid) == []
    assert store.new_conversation("U001") != cid  # fresh ids
    guest = store.new_conversation(None)
    assert store.conversation(guest)["user_id"] is None


def test_conversation_ids_are_server_issued_unguessable_and_carry_tenant_and_owner(store):
    ids = {store.new_conversation("U1", tenant=7) for _ in range(50)}
    assert len(ids) == 50 and all(len(i) >= 22 for i in ids)  # 128 random bits, url-safe
    cid = next(iter(ids))
    conv = store.conversation(cid)
    assert conv["tenant_id"] == 7 and conv["user_id"] == "U1"
    assert store.conversation(store.new_conversation(None))["tenant_id"] is None  # keyless / local
    with pytest.raises(TypeError):
        store.new_conversation("U1", "client-chosen")  # no way to choose an id


def test_turn_status_is_kept_and_checked(store):
    cid = store.new_conversation(None)
    ok, gone = _turn(store, cid, 1), _turn(store, cid, 2, status="cancelled")
    assert [(t["id"], t["status"]) for t in store.turns(cid)] == [(ok, "ok"), (gone, "cancelled")]
    assert set(TURN_STATUSES) == {"ok", "cancelled"}
    with pytest.raises(ValueError):
        _turn(store, cid, 3, status="weird")


def test_unknown_ids_read_as_nothing(store):
    assert store.conversation("nope") is None
    assert store.load_state("nope") == {}
    assert store.turns("nope") == []
    assert store.turn(987654) is None
    assert store.feedback(987654) == []


def test_save_turn_appends_and_replaces_the_state(store):
    cid = store.new_conversation("U003")
    state = {"constraints": {"max_price": 30.0, "brands_out": ["Anker"]}, "mentioned": ["P8"], "n": 1}
    t1 = _turn(store, cid, 1, state, ["C1", "C2"])
    t2 = _turn(store, cid, 2, {"n": 2})
    assert isinstance(t1, int) and t2 > t1
    assert store.load_state(cid) == {"n": 2}
    rows = store.turns(cid)
    assert [r["id"] for r in rows] == [t1, t2]
    first = rows[0]
    assert first["conversation_id"] == cid and first["user_text"] == "user 1" and first["reply_text"] == "reply 1"
    assert first["route"] == "service" and first["template_id"] == "T1"
    assert json.loads(first["recommended_json"]) == ["C1", "C2"]
    assert json.loads(first["result_json"]) == {"text": "reply 1", "n": 1}
    assert rows[1]["template_id"] is None
    assert store.turn(t1) == first


def test_turns_stay_with_their_conversation(store):
    a, b = store.new_conversation("U1"), store.new_conversation("U2")
    ta = _turn(store, a, 1)
    tb = _turn(store, b, 1)
    _turn(store, a, 2)
    assert [r["id"] for r in store.turns(b)] == [tb]
    assert store.turns(a)[0]["id"] == ta and len(store.turns(a)) == 2


def test_save_turn_for_an_unknown_conversation_fails_and_saves_nothing(store):
    with pytest.raises(KeyError):
        _turn(store, "never-created", 1)
    assert store.turns("never-created") == [] and store.count("turns") == 0


def test_feedback_is_recorded_in_order_and_validated(store):
    cid = store.new_conversation(None)
    t1, t2 = _turn(store, cid, 1), _turn(store, cid, 2, recommended=["A", "B"])
    ids = [
        store.add_feedback(t1, "thumbs_up"),
        store.add_feedback(t2, "click", "A"),
        store.add_feedback(t2, "accept", "A"),
    ]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(set(ids))
    assert [(f["kind"], f["item_id"]) for f in store.feedback(t2)] == [("click", "A"), ("accept", "A")]
    assert [f["turn_id"] for f in store.feedback()] == [t1, t2, t2]
    assert all(f["created_at"] for f in store.feedback())
    with pytest.raises(ValueError):
        store.add_feedback(t1, "love")
    with pytest.raises(KeyError):
        store.add_feedback(t2 + 1000, "thumbs_up")
    assert store.count("feedback") == 3
    assert set(FEEDBACK_KINDS) >= {"thumbs_up", "thumbs_down", "click", "accept", "reject"}


def test_feedback_accept_or_reject_of_an_item_the_turn_never_showed_is_refused(store):
    cid = store.new_conversation(None)
    tid = _turn(store, cid, 1, recommended=["A"])
    for kind, item in [("accept", "Z"), ("reject", "Z"), ("accept", None), ("reject", None), ("click", "Z")]:
        with pytest.raises(ValueError):
            store.add_feedback(tid, kind, item)
    assert store.count("feedback") == 0
    assert store.add_feedback(tid, "reject", "A") > 0


def test_feedback_duplicates_are_idempotent_one_vote_per_turn_item_kind(store):
    cid = store.new_conversation(None)
    tid = _turn(store, cid, 1, recommended=["A", "B"])
    first = store.add_feedback(tid, "accept", "A")
    assert store.add_feedback(tid, "accept", "A") == first  # the same vote again: same id, nothing new
    thumbs = store.add_feedback(tid, "thumbs_up")
    assert store.add_feedback(tid, "thumbs_up") == thumbs
    assert store.add_feedback(tid, "accept", "B") not in (first, thumbs)  # another item is another vote
    assert store.add_feedback(tid, "reject", "A") not in (first, thumbs)  # another kind too
    assert store.count("feedback") == 4


def test_a_server_secret_is_made_once_and_kept(opener):
    a = opener()
    s = a.secret("x")
    assert isinstance(s, bytes) and len(s) >= 16 and a.secret("x") == s and opener().secret("x") == s
    assert a.secret("y") != s


def test_ping_passes_on_a_healthy_store(store):
    store.ping()


def test_count(store):
    assert {t: store.count(t) for t in COUNTED} == {"conversations": 0, "turns": 0, "feedback": 0}
    cid = store.new_conversation("U1")
    store.add_feedback(_turn(store, cid, 1), "thumbs_down")
    _turn(store, cid, 2)
    assert {t: store.count(t) for t in COUNTED} == {"conversations": 1, "turns": 2, "feedback": 1}
    with pytest.raises(ValueError):
        store.count("site_keys")


def test_everything_survives_a_reopen(opener):
    first = opener()
    cid = first.new_conversation("U9")
    tid = _turn(first, cid, 1, {"x": [1, 2]}, ["Z"])
    first.add_feedback(tid, "accept", "Z")
    again = opener()
    assert again.conversation(cid)["user_id"] == "U9"
    assert again.load_state(cid) == {"x": [1, 2]}
    assert [r["id"] for r in again.turns(cid)] == [tid]
    assert [f["kind"] for f in again.feedback(tid)] == ["accept"]
    assert _turn(again, cid, 2) > tid  # ids keep growing across handles


def test_handles_on_the_same_data_see_each_others_writes(opener):
    a, b = opener(), opener()
    cid = a.new_conversation("U5")
    _turn(b, cid, 1, {"by": "b"})
    assert a.load_state(cid) == {"by": "b"} and len(a.turns(cid)) == 1


def test_concurrent_writers_lose_no_turn(opener):
    import threading

    store = opener()
    cid = store.new_conversation("U7")
    errors: list[BaseException] = []

    def write(start: int) -> None:
        try:
            for n in range(start, start + 10):
                _turn(store, cid, n)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = [r["id"] for r in store.turns(cid)]
    assert len(ids) == 40 and ids == sorted(set(ids))


_WRITER = """
import json, sys, time
from pathlib import Path
target, cid, tag, shared, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
if target.startswith("postgresql://"):
    from chatrec.store.postgres import PostgresStore
    store = PostgresStore(target, busy_timeout_s=10)
else:
    from chatrec.store.sqlite import SQLiteStore
    store = SQLiteStore(target, busy_timeout_s=10)
go.with_name("ready-" + tag).touch()
while not go.exists():
    time.sleep(0.01)
ids = []
for n in range(25):
    state = {"by": tag, "n": n}
    tid = store.save_turn(cid, state, f"{tag} {n}", "reply", "service", None, ["A"], {"state": state})
    store.add_feedback(tid, "thumbs_up")
    ids.append([tid, store.add_feedback(shared, "accept", "A")])  # both processes cast the same vote
print(json.dumps(ids))
"""


def test_two_processes_writing_one_conversation_lose_nothing(opener, tmp_path):
    """Two OS processes append turns and feedback to one conversation at the same time: every
    acknowledged turn is stored once, in id order; the state is the last stored turn's; a vote
    both cast on one turn is stored once and both got its id."""
    import subprocess
    import sys

    store = opener()
    target = str(getattr(store, "url", None) or store.path)  # type: ignore[attr-defined]
    cid = store.new_conversation("U1")
    shared = _turn(store, cid, 0, recommended=["A"])
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, target, cid, tag, str(shared), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    import time

    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{tag}").exists() for tag in ("a", "b")) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both have the store open: they start writing together
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    acked = [json.loads(out) for out, _ in outs]
    turns = store.turns(cid)
    ids = [t["id"] for t in turns]
    assert ids == sorted(set(ids)) and len(ids) == 1 + 2 * 25
    assert {tid for got in acked for tid, _ in got} == set(ids[1:])  # every acknowledged turn, nothing else
    assert {vote for got in acked for _, vote in got} == {store.feedback(shared)[0]["id"]}
    assert store.load_state(cid) == json.loads(turns[-1]["result_json"])["state"]  # the last stored turn's
    assert store.count("feedback") == 2 * 25 + 1
    for who in ("a", "b"):  # each process's turns in the order it saved them
        mine = [json.loads(t["result_json"])["state"]["n"] for t in turns[1:] if t["user_text"].startswith(who)]
        assert mine == list(range(25))


def test_turn_log_lists_turns_without_texts_in_id_order(store):
    cid = store.new_conversation("u")
    a = _turn(store, cid, 1, recommended=["I1", "I2"])
    b = store.save_turn(cid, {}, "hi", "", "recommend", None, [], {"trace": {"latency_s": 1.5}}, status="cancelled")
    log = store.turn_log()
    assert [t["id"] for t in log] == [a, b]
    first, second = log
    assert (first["conversation_id"], first["route"], first["status"], first["replied"], first["shown"]) == (
        cid,
        "service",
        "ok",
        True,
        2,
    )
    assert first["latency_s"] is None and second["latency_s"] == 1.5 and second["replied"] is False
    assert "user_text" not in first and "reply_text" not in first
    assert [t["id"] for t in store.turn_log(after_id=a)] == [b]


def test_ranking_log_keeps_one_record_per_turn_in_turn_order(store):
    cid = store.new_conversation("u")
    a, b = _turn(store, cid, 1, recommended=["I1"]), _turn(store, cid, 2, recommended=["I2"])
    record = {
        "policy": "fusion",
        "version": "fusion",
        "epsilon": 0.1,
        "context": {"user": "u", "categories": ["cases"]},
        "candidates": [{"item_id": "I1", "features": {"dense": 0.5}, "fused": 0.7}],
        "shown": [{"item_id": "I1", "position": 0, "propensity": 0.925, "explored": False}],
    }
    store.log_ranking(b, {**record, "version": "v0002"})
    store.log_ranking(a, record)
    logged = store.ranking_log()
    assert [r["turn_id"] for r in logged] == [a, b] and logged[1]["version"] == "v0002"
    assert {k: logged[0][k] for k in record} == record and logged[0]["created_at"]
    assert [r["turn_id"] for r in store.ranking_log(after_turn_id=a)] == [b]
    with pytest.raises(ValueError):
        store.log_ranking(a, record)  # one record per turn
    with pytest.raises(KeyError):
        store.log_ranking(10**9, record)


def test_openai_history_is_shared_replaced_on_repeat_and_dropped_after_the_keep_days(opener, monkeypatch):
    from chatrec.store import postgres, sqlite
    from chatrec.store.base import HISTORY_KEEP_DAYS

    one, two = opener(), opener()
    a, b = one.new_conversation("u", tenant=1), one.new_conversation("u", tenant=1)
    assert one.find_history("k1") is None
    one.remember_history("k1", a, 1)
    assert two.find_history("k1") == a  # another handle (replica) sees it
    one.remember_history("k1", a, 1)  # a repeat is an upsert
    two.remember_history("k1", b, 1)
    assert one.find_history("k1") == b and one.find_history("k2") is None
    # an entry older than HISTORY_KEEP_DAYS is not found, and the next write drops it
    old = (datetime.now(UTC) - timedelta(days=HISTORY_KEEP_DAYS + 1)).isoformat(timespec="seconds")
    for module in (sqlite, postgres):
        monkeypatch.setattr(module, "_now", lambda: old)
    one.remember_history("stale", a, None)
    monkeypatch.undo()
    assert one.find_history("stale") is None
    one.remember_history("k3", a, None)
    assert one.find_history("k3") == a and one.find_history("k1") == b
    for module in (sqlite, postgres):
        monkeypatch.setattr(module, "_history_cutoff", lambda: "0")  # nothing counts as old now
    assert one.find_history("stale") is None  # dropped by the write of k3, not merely hidden


def test_policy_versions_are_numbered_shared_and_switched_by_every_handle(opener):
    one, two = opener(), opener()
    assert one.policy_versions("bandit") == [] and one.current_policy("bandit") is None
    blob = bytes(range(256)) * 4  # any bytes, NUL included, come back as saved
    assert one.save_policy_version("bandit", {"parent": "v0000", "learned_turn": 3}, blob) == "v0001"
    assert two.save_policy_version("bandit", {"parent": "v0001"}, b"second") == "v0002"
    assert two.save_policy_version("bandit:outdoor", {}, b"other shop") == "v0001"  # one sequence per kind
    metas = one.policy_versions("bandit")
    assert [m["version"] for m in metas] == ["v0001", "v0002"] and metas[0]["learned_turn"] == 3
    assert metas[0]["created_at"] and metas[1]["parent"] == "v0001"
    assert two.policy_blob("bandit", "v0001") == blob and one.policy_blob("bandit:outdoor", "v0001") == b"other shop"
    assert one.current_policy("bandit") is None  # saving does not promote
    one.set_current_policy("bandit", "v0002")
    assert two.current_policy("bandit") == "v0002" and two.current_policy("bandit:outdoor") is None
    two.set_current_policy("bandit", None)
    assert one.current_policy("bandit") is None
    for bad in ("v0009", "latest"):
        with pytest.raises(KeyError):
            one.policy_blob("bandit", bad)
        with pytest.raises(KeyError):
            one.set_current_policy("bandit", bad)
    assert two.current_policy("bandit") is None  # a refused switch changes nothing


def test_concurrent_policy_saves_get_distinct_numbers(opener):
    from concurrent.futures import ThreadPoolExecutor

    handles = [opener() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: handles[i % 4].save_policy_version("bandit", {"i": i}, b"m%d" % i), range(12)))
    assert sorted(got) == [f"v{n:04d}" for n in range(1, 13)]
    assert [m["version"] for m in handles[0].policy_versions("bandit")] == sorted(got)
