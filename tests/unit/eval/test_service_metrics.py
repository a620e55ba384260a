"""Service metrics in chatrec eval summaries (issue 18 item 6, chatrec/eval/service.py): containment,
handoff rate, abandonment, accept rate and latency from the replayed conversations, in summary.json
(per system with bootstrap intervals, and the full system's figures under the store's names) and
in the report."""

from __future__ import annotations

import json

from chatrec.config import Settings
from chatrec.eval.options import EvalOptions
from chatrec.eval.runner import run_eval
from chatrec.eval.service import service_sums
from chatrec.kb import is_heldout
from chatrec.types import Conversation
from tests_support import KB_DIR


def _conv(cid: str, turns: list[dict]) -> Conversation:
    return Conversation.model_validate({"conversation_id": cid, "turns": turns})


def test_service_sums_by_hand():
    a = _conv(
        "A",
        [
            {"role": "user", "text": "earbuds?"},
            {"role": "agent", "text": "these", "recommended": ["I1", "I2"], "accepted": ["I2"]},
            {"role": "user", "text": "a person please"},
            {"role": "agent", "text": "passing you on", "template_id": "T1"},
        ],
    )
    b = _conv(
        "B",
        [
            {"role": "user", "text": "a case?"},
            {"role": "agent", "text": "this", "recommended": ["I3"]},
            {"role": "user", "text": "hello?"},  # nobody answered: abandoned
        ],
    )
    rows = [
        {"system": "full", "conversation_id": "A", "turn_index": 1, "kind": "rec", "route": "recommend"},
        {"system": "full", "conversation_id": "A", "turn_index": 3, "kind": "service", "route": "handoff"},
        {"system": "full", "conversation_id": "B", "turn_index": 1, "kind": "rec", "route": "recommend"},
        {"system": "popularity", "conversation_id": "A", "turn_index": 1, "kind": "rec", "shown": ["I1", "I9"]},
        {"system": "popularity", "conversation_id": "B", "turn_index": 1, "kind": "rec", "shown": ["I3"]},
    ]
    rows[0]["shown"], rows[2]["shown"] = ["I2", "I1", "I5"], ["I4"]
    sums = service_sums(rows, {"A": a, "B": b})
    assert sums["A"]["full"] == {
        "svc.abandonment": [0.0, 1.0],
        "svc.handoff_rate": [1.0, 1.0],
        "svc.containment": [0.0, 1.0],
        "svc.accept_rate": [1.0, 3.0],
    }
    assert sums["B"]["full"] == {
        "svc.abandonment": [1.0, 1.0],
        "svc.handoff_rate": [0.0, 1.0],
        "svc.containment": [1.0, 1.0],
        "svc.accept_rate": [0.0, 1.0],
    }
    # a baseline does not route: no containment, but its accept rate and the log's abandonment
    assert sums["A"]["popularity"] == {"svc.abandonment": [0.0, 1.0], "svc.accept_rate": [0.0, 2.0]}
    assert sums["B"]["popularity"]["svc.accept_rate"] == [0.0, 1.0]
    # transcripts without any accept: no accept rate at all (not a rate of 0)
    plain = _conv("C", [{"role": "user", "text": "x"}, {"role": "agent", "text": "y", "recommended": ["I1"]}])
    assert "svc.accept_rate" not in service_sums([{**rows[4], "conversation_id": "C"}], {"C": plain})["C"]["popularity"]


def test_eval_summary_and_report_have_service_metrics(tmp_path):
    lines = [
        ln
        for ln in (KB_DIR / "transcripts.jsonl").read_text().splitlines()
        if is_heldout(json.loads(ln)["conversation_id"])
    ]
    logs = tmp_path / "logs.jsonl"
    logs.write_text("\n".join(lines[:6]) + "\n")
    out = tmp_path / "run"
    settings = Settings(kb_dir=KB_DIR, data_dir=tmp_path / "state")
    summary = run_eval(settings, EvalOptions(transcripts=str(logs), out=str(out), ablations=[], bootstrap=100), False)
    full = summary["systems"]["full"]["metrics"]
    rows = [json.loads(x) for x in (out / "turns.jsonl").read_text().splitlines()]
    convs = {json.loads(x)["conversation_id"]: json.loads(x) for x in lines[:6]}
    handed = {r["conversation_id"] for r in rows if r["system"] == "full" and r.get("route") == "handoff"}
    assert full["svc.containment"]["value"] == round(1 - len(handed) / len(convs), 4)
    assert full["svc.handoff_rate"]["value"] == round(len(handed) / len(convs), 4)
    assert full["svc.containment"]["n"] == len(convs)
    shown = accepted = 0
    for r in rows:
        if r["system"] == "full" and r["kind"] == "rec":
            shown += len(r["shown"])
            accepted += len(set(r["shown"]) & set(convs[r["conversation_id"]]["turns"][r["turn_index"]]["accepted"]))
    assert shown and full["svc.accept_rate"]["value"] == round(accepted / shown, 4)
    ends_unanswered = sum(c["turns"][-1]["role"] == "user" for c in convs.values())
    assert full["svc.abandonment"]["value"] == round(ends_unanswered / len(convs), 4)
    lo, hi = full["svc.accept_rate"]["ci_low"], full["svc.accept_rate"]["ci_high"]
    assert lo <= full["svc.accept_rate"]["value"] <= hi
    assert "svc.accept_rate" in summary["systems"]["popularity"]["metrics"]
    assert "svc.containment" not in summary["systems"]["popularity"]["metrics"]  # baselines do not route
    service = summary["service"]
    assert service == {
        "containment": full["svc.containment"]["value"],
        "handoff_rate": full["svc.handoff_rate"]["value"],
        "abandonment": full["svc.abandonment"]["value"],
        "thumbs_up_rate": None,  # transcripts carry no votes
        "accept_rate": full["svc.accept_rate"]["value"],
        "latency_p50_s": full["cost.latency_p50_s"]["value"],
        "latency_p95_s": full["cost.latency_p95_s"]["value"],
    }
    assert json.loads((out / "summary.json").read_text())["service"] == service
    html = (out / "report.html").read_text()
    assert "<h3>svc</h3>" in html and "svc.containment" in html
