"""GET /v1/metrics (Prometheus text) after a scripted session on the fake LLM, and the access rules."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from chatrec.config import ServeSettings
from chatrec.serve.app import create_app
from chatrec.store.stats import service_metrics

RECOMMEND = "Can you recommend a case for my Pixel 8?"
HANDOFF = "I want to talk to a human agent please"


def client(bot, **kw) -> TestClient:
    kw.setdefault("ui", False)
    kw.setdefault("rate_per_minute_ip", 0)
    kw.setdefault("rate_per_minute_key", 0)
    kw.setdefault("metrics_cache_s", 0)
    return TestClient(create_app(bot, ServeSettings(**kw)))


def series(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _session(bot, c: TestClient) -> None:
    """Three conversations: one with an accept and a thumbs up, one handed off with a thumbs down,
    one whose second turn the client cancelled."""
    r = c.post("/v1/chat", json={"message": RECOMMEND, "stream": False}).json()
    cid, tid, item = r["conversation_id"], r["turn_id"], r["recommendations"][0]["item_id"]
    assert c.post("/v1/feedback", json={"conversation_id": cid, "turn_id": tid, "kind": "accept", "item_id": item})
    assert c.post("/v1/feedback", json={"conversation_id": cid, "turn_id": tid, "kind": "thumbs_up"})
    r = c.post("/v1/chat", json={"message": HANDOFF, "stream": False}).json()
    assert r["route"] == "handoff", r["route"]
    c.post(
        "/v1/feedback", json={"conversation_id": r["conversation_id"], "turn_id": r["turn_id"], "kind": "thumbs_down"}
    )
    r = c.post("/v1/chat", json={"message": RECOMMEND, "stream": False}).json()
    stream = bot.stream("and a charger?", r["conversation_id"])
    next(stream)  # the first token, then the client leaves
    stream.close()


def test_metrics_after_a_scripted_session_in_prometheus_text(fake_bot):
    c = client(fake_bot, metrics_token="scrape-me")
    _session(fake_bot, c)
    r = c.get("/v1/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    s = series(r.text)
    assert s["chatrec_conversations"] == 3
    assert abs(s["chatrec_containment_ratio"] - 2 / 3) < 1e-9 and abs(s["chatrec_handoff_ratio"] - 1 / 3) < 1e-9
    assert abs(s["chatrec_abandonment_ratio"] - 1 / 3) < 1e-9  # the cancelled second turn
    assert s["chatrec_thumbs_up_ratio"] == 0.5
    shown = s["chatrec_recommendations_shown_total"]
    assert shown >= 2 and s["chatrec_recommendation_accept_ratio"] == 1 / shown
    assert s['chatrec_turns_total{route="handoff"}'] == 1
    assert s['chatrec_turns_by_status_total{status="cancelled"}'] == 1
    assert s['chatrec_feedback_total{kind="accept"}'] == 1
    completed = sum(v for k, v in s.items() if k.startswith("chatrec_turns_total{"))
    assert completed == 3 and s["chatrec_turn_latency_seconds_count"] == 3
    assert s['chatrec_turn_latency_seconds_bucket{le="+Inf"}'] == 3
    buckets = [v for k, v in s.items() if k.startswith("chatrec_turn_latency_seconds_bucket")]
    assert buckets == sorted(buckets)  # cumulative
    assert re.search(r"^# TYPE chatrec_turn_latency_seconds histogram$", r.text, re.M)


def test_metrics_need_the_metrics_or_admin_token_and_are_off_without_one(fake_bot):
    assert client(fake_bot).get("/v1/metrics").status_code == 404
    c = client(fake_bot, admin_token="adm", metrics_token="scrape")
    assert c.get("/v1/metrics").status_code == 401
    assert c.get("/v1/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/v1/metrics", headers={"Authorization": "Bearer scrape"}).status_code == 200
    assert c.get("/v1/metrics", headers={"Authorization": "Bearer adm"}).status_code == 200
    cross = c.get("/v1/metrics", headers={"Authorization": "Bearer adm", "Origin": "https://evil.example"})
    assert cross.status_code == 403


def test_service_metrics_count_conversations_not_turns():
    turns = [
        {"id": 1, "conversation_id": "a", "route": "recommend", "status": "ok", "replied": True, "shown": 4},
        {"id": 2, "conversation_id": "a", "route": "handoff", "status": "ok", "replied": True, "shown": 0},
        {"id": 3, "conversation_id": "a", "route": "service", "status": "ok", "replied": True, "shown": 0},
        {"id": 4, "conversation_id": "b", "route": "service", "status": "ok", "replied": False, "shown": 0},
    ]
    m = service_metrics(turns, [{"turn_id": 1, "kind": "accept"}, {"turn_id": 99, "kind": "accept"}])
    assert (m.conversations, m.handed_off, m.contained, m.abandoned) == (2, 1, 1, 1)
    assert m.accept_rate == 0.25 and m.thumbs_up_rate is None


def test_chatrec_metrics_report_text_json_and_html_with_plots(fake_bot, tmp_path):
    import json

    from click.testing import CliRunner

    from chatrec.cli.main import main

    _session(fake_bot, client(fake_bot))
    data_dir = str(fake_bot.settings.data_dir)
    r = CliRunner().invoke(main, ["--data-dir", data_dir, "metrics", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["overall"]["conversations"] == 3 and out["overall"]["handoff_rate"] == 1 / 3
    assert sum(p["turns"] for p in out["periods"].values()) == 3
    html = tmp_path / "m.html"
    r = CliRunner().invoke(main, ["--data-dir", data_dir, "metrics", "--period", "hour", "--html", str(html)])
    assert r.exit_code == 0 and "containment" in r.output
    page = html.read_text()
    assert page.count("<svg") == 7 and "<polyline" in page and "<script" not in page
