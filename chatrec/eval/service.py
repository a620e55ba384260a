"""Service metrics a shop looks at, from the replayed conversations of a ``chatrec eval`` run
(issue 18 item 6; the live ones come from the store: :mod:`chatrec.store.stats`, docs/feedback.md).

Per system, per conversation, as (numerator, denominator) sums that the summary bootstraps over
conversations like every other metric (``svc.*`` in ``summary.json`` and the report):

* ``svc.containment``: 1 if the system routed none of the conversation's scored turns to a
  handoff, else 0 (per conversation); ``svc.handoff_rate`` is its complement. Systems that
  plan (full, ablations) only: the baselines do not route.
* ``svc.accept_rate``: items the system showed at the logged recommendation turns that the
  logged customer accepted, over items it showed; only when the transcripts record accepts.
* ``svc.abandonment``: 1 if the logged conversation ends with a customer message nobody
  answered (a property of the log, the same for every system).

The thumbs-up rate needs votes, which transcripts do not carry: it comes from the store only.
Latency percentiles are the run's ``cost.latency_p50_s`` / ``cost.latency_p95_s``.
:func:`service_summary` gives the full system's figures under the store's names
(``containment``, ``handoff_rate``, ...), so an offline run and ``GET /v1/metrics`` read alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from pydantic import ValidationError

from chatrec.types import Conversation

METRICS = ("svc.containment", "svc.handoff_rate", "svc.accept_rate", "svc.abandonment")


def _logged(transcripts: Path, ids: set[str]) -> dict[str, Conversation]:
    """The scored conversations of the transcripts file (rows that do not parse are skipped,
    as the run skipped them)."""
    out: dict[str, Conversation] = {}
    with transcripts.open(encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                conv = Conversation.model_validate_json(raw)
            except ValidationError:
                continue
            if conv.conversation_id in ids:
                out[conv.conversation_id] = conv
    return out


def service_sums(
    rows: Iterable[dict[str, Any]], conversations: dict[str, Conversation]
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """conversation id -> system -> ``svc.*`` metric -> [numerator, denominator], from the run's
    per-turn rows (``turns.jsonl``) and the logged conversations."""
    records_accepts = any(t.accepted for c in conversations.values() for t in c.turns)
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for row in rows:
        cid, system = row.get("conversation_id"), row.get("system")
        conv = conversations.get(cid or "")
        if conv is None or not isinstance(system, str):
            continue
        sums = out.setdefault(conv.conversation_id, {}).setdefault(system, {})
        if "svc.abandonment" not in sums:
            sums["svc.abandonment"] = [float(conv.turns[-1].role == "user"), 1.0]
        if "route" in row:  # a system that plans
            handoff = sums.setdefault("svc.handoff_rate", [0.0, 1.0])
            handoff[0] = max(handoff[0], float(row["route"] == "handoff"))
            sums["svc.containment"] = [1.0 - handoff[0], 1.0]
        shown = row.get("shown")
        if records_accepts and row.get("kind") == "rec" and isinstance(shown, list):
            idx = row.get("turn_index")
            turn = conv.turns[idx] if isinstance(idx, int) and 0 <= idx < len(conv.turns) else None
            accepted = set(turn.accepted) if turn is not None else set()
            acc = sums.setdefault("svc.accept_rate", [0.0, 0.0])
            acc[0] += sum(1 for i in shown if i in accepted)
            acc[1] += len(shown)
    return out


def read_service_sums(out: Path, transcripts: Path, ids: Iterable[str]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """:func:`service_sums` of a run folder (its ``turns.jsonl``) for the conversations ``ids``."""
    turns = out / "turns.jsonl"
    if not turns.exists() or not transcripts.exists():
        return {}
    conversations = _logged(transcripts, set(ids))

    def rows():
        with turns.open(encoding="utf-8") as fh:
            for raw in fh:
                try:
                    yield json.loads(raw)
                except json.JSONDecodeError:  # a line cut by a killed run
                    continue

    return service_sums(rows(), conversations)


def service_summary(system_metrics: dict[str, Any]) -> dict[str, Any]:
    """One system's service figures (``summary.json``'s metrics of it) under the store's names;
    ``None`` where the run cannot tell (thumbs: transcripts carry no votes)."""

    def value(name: str) -> float | None:
        m = system_metrics.get(name)
        return m["value"] if m else None

    return {
        "containment": value("svc.containment"),
        "handoff_rate": value("svc.handoff_rate"),
        "abandonment": value("svc.abandonment"),
        "thumbs_up_rate": None,
        "accept_rate": value("svc.accept_rate"),
        "latency_p50_s": value("cost.latency_p50_s"),
        "latency_p95_s": value("cost.latency_p95_s"),
    }
