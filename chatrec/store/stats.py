"""Service metrics a shop looks at, computed from what the store logged.

One pure function, :func:`service_metrics`, over :meth:`Store.turn_log` and :meth:`Store.feedback`
rows; ``GET /v1/metrics`` (:mod:`chatrec.serve.routes.metrics`), ``chatrec metrics`` and the
simulator all read these numbers, so they mean the same everywhere:

* **containment**: conversations with at least one turn and no ``handoff`` turn, over conversations;
  **handoff rate** is its complement.
* **abandonment**: conversations whose last turn was cancelled (the client left mid-stream) or
  got an empty reply, over conversations.
* **thumbs-up rate** (a CSAT proxy): thumbs up / (thumbs up + thumbs down).
* **accept rate**: accepted items / items shown (over turns that showed any).
* **latency**: the turn's ``trace.latency_s`` of completed turns (percentiles, and the histogram
  buckets :data:`LATENCY_BUCKETS_S`).
* **turns by route** and by status.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


@dataclass
class ServiceMetrics:
    conversations: int = 0
    contained: int = 0
    handed_off: int = 0
    abandoned: int = 0
    turns_by_route: Counter[str] = field(default_factory=Counter)
    turns_by_status: Counter[str] = field(default_factory=Counter)
    thumbs_up: int = 0
    thumbs_down: int = 0
    shown: int = 0
    accepted: int = 0
    rejected: int = 0
    latencies_s: list[float] = field(default_factory=list)

    @staticmethod
    def _rate(num: int, den: int) -> float | None:
        return num / den if den else None

    @property
    def containment(self) -> float | None:
        return self._rate(self.contained, self.conversations)

    @property
    def handoff_rate(self) -> float | None:
        return self._rate(self.handed_off, self.conversations)

    @property
    def abandonment(self) -> float | None:
        return self._rate(self.abandoned, self.conversations)

    @property
    def thumbs_up_rate(self) -> float | None:
        return self._rate(self.thumbs_up, self.thumbs_up + self.thumbs_down)

    @property
    def accept_rate(self) -> float | None:
        return self._rate(self.accepted, self.shown)

    def latency_quantile(self, q: float) -> float | None:
        """The ``q`` quantile (nearest rank) of completed turns' latency, or ``None``."""
        if not self.latencies_s:
            return None
        xs = sorted(self.latencies_s)
        return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]

    def latency_buckets(self) -> list[tuple[float, int]]:
        """Cumulative counts per upper bound (``math.inf`` last), as a Prometheus histogram has them."""
        xs = sorted(self.latencies_s)
        out, i = [], 0
        for bound in (*LATENCY_BUCKETS_S, math.inf):
            while i < len(xs) and xs[i] <= bound:
                i += 1
            out.append((bound, i))
        return out

    def summary(self) -> dict[str, Any]:
        """The headline figures as a JSON-able dict (rates ``None`` where undefined)."""
        return {
            "conversations": self.conversations,
            "turns": sum(self.turns_by_route.values()),
            "containment": self.containment,
            "handoff_rate": self.handoff_rate,
            "abandonment": self.abandonment,
            "thumbs_up_rate": self.thumbs_up_rate,
            "accept_rate": self.accept_rate,
            "latency_p50_s": self.latency_quantile(0.5),
            "latency_p95_s": self.latency_quantile(0.95),
            "turns_by_route": dict(sorted(self.turns_by_route.items())),
            "turns_by_status": dict(sorted(self.turns_by_status.items())),
            "thumbs_up": self.thumbs_up,
            "thumbs_down": self.thumbs_down,
            "shown": self.shown,
            "accepted": self.accepted,
            "rejected": self.rejected,
        }


def service_metrics(turns: Iterable[dict[str, Any]], feedback: Iterable[dict[str, Any]]) -> ServiceMetrics:
    """The metrics of these turns (:meth:`Store.turn_log` rows) and the feedback on them
    (feedback on other turns is ignored, so a time window stays consistent)."""
    m = ServiceMetrics()
    last: dict[str, dict[str, Any]] = {}
    handoff: set[str] = set()
    ids: set[int] = set()
    for t in turns:
        ids.add(int(t["id"]))
        cid = t["conversation_id"]
        last[cid] = t  # rows come in id order
        status = t.get("status") or "ok"
        m.turns_by_status[status] += 1
        if status != "ok":
            continue
        m.turns_by_route[t["route"]] += 1
        if t["route"] == "handoff":
            handoff.add(cid)
        m.shown += int(t.get("shown") or 0)
        if t.get("latency_s") is not None:
            m.latencies_s.append(float(t["latency_s"]))
    m.conversations = len(last)
    m.handed_off = len(handoff)
    m.contained = m.conversations - m.handed_off
    m.abandoned = sum(1 for t in last.values() if (t.get("status") or "ok") != "ok" or not t.get("replied", True))
    for f in feedback:
        if int(f["turn_id"]) not in ids:
            continue
        kind = f["kind"]
        if kind == "thumbs_up":
            m.thumbs_up += 1
        elif kind == "thumbs_down":
            m.thumbs_down += 1
        elif kind == "accept":
            m.accepted += 1
        elif kind == "reject":
            m.rejected += 1
    return m


def by_period(
    turns: list[dict[str, Any]], feedback: list[dict[str, Any]], period: str = "day"
) -> list[tuple[str, ServiceMetrics]]:
    """The metrics per ``period`` (``hour`` or ``day``, UTC, by the turn's time), oldest first; a
    conversation counts in each period where it had a turn."""
    width = {"hour": 13, "day": 10}[period]  # ISO-8601 prefix: 2026-11-30T04 / 2026-11-30
    groups: dict[str, list[dict[str, Any]]] = {}
    for t in turns:
        key = datetime.fromisoformat(t["created_at"]).isoformat()[:width]
        groups.setdefault(key, []).append(t)
    return [(k, service_metrics(groups[k], feedback)) for k in sorted(groups)]
