"""``GET /v1/metrics``: the shop's service metrics in Prometheus' text format.

The figures are computed from the store (:func:`chatrec.store.stats.service_metrics` over every
logged turn and vote) when scraped, at most once per ``serve.metrics_cache_s``, so they survive
restarts and agree across server processes sharing one store. Access: ``Authorization: Bearer``
with ``serve.metrics_token`` (for a scraper that should not hold admin rights) or the admin
token; with neither configured the endpoint does not exist (404).

Series (all prefixed ``chatrec_``): ``conversations``, ``containment_ratio``, ``handoff_ratio``,
``abandonment_ratio``, ``thumbs_up_ratio``, ``recommendation_accept_ratio`` (gauges; a rate
with no denominator yet is left out), ``turns_total{route}``, ``turns_by_status_total{status}``,
``feedback_total{kind}``, ``recommendations_shown_total``, and the histogram
``turn_latency_seconds`` (p50/p95 with ``histogram_quantile``).
"""

from __future__ import annotations

import hmac
import threading
import time
from typing import Any, Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from chatrec.extras import require
from chatrec.serve.deps import BotDep, ServeSettingsDep, bearer
from chatrec.serve.errors import ApiError
from chatrec.store.base import Store
from chatrec.store.stats import ServiceMetrics, service_metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def require_metrics_token(request: Request, settings: ServeSettingsDep) -> None:
    """``serve.metrics_token`` or the admin token; without either the endpoint is off (404)."""
    tokens = [t for t in (settings.metrics_token, settings.admin_token) if t]
    if not tokens:
        raise ApiError(404, "metrics are disabled (no serve.metrics_token or serve.admin_token configured)")
    given = (bearer(request) or "").encode()
    if not any(hmac.compare_digest(given, t.encode()) for t in tokens):
        raise ApiError(401, "metrics token required", headers={"WWW-Authenticate": "Bearer"})


router = APIRouter(prefix="/v1", tags=["metrics"], dependencies=[Depends(require_metrics_token)])


class StoreCollector:
    """A Prometheus collector over the store's log; the computed figures are kept ``ttl_s`` seconds."""

    def __init__(self, store: Store, ttl_s: float):
        self.store, self.ttl_s = store, ttl_s
        self._lock = threading.Lock()
        self._at = -float("inf")
        self._metrics = ServiceMetrics()

    def metrics(self) -> ServiceMetrics:
        with self._lock:
            if time.monotonic() - self._at >= self.ttl_s:
                self._metrics = service_metrics(self.store.turn_log(), self.store.feedback())
                self._at = time.monotonic()
            return self._metrics

    def collect(self) -> Iterator[Any]:
        core = require("prometheus_client.core", purpose="GET /v1/metrics")
        m = self.metrics()
        yield core.GaugeMetricFamily("chatrec_conversations", "conversations with at least one turn", m.conversations)
        ratios = {
            "containment_ratio": ("conversations resolved without a handoff", m.containment),
            "handoff_ratio": ("conversations with a handoff turn", m.handoff_rate),
            "abandonment_ratio": ("conversations whose last turn was cancelled or got no reply", m.abandonment),
            "thumbs_up_ratio": ("thumbs up / (thumbs up + thumbs down), a CSAT proxy", m.thumbs_up_rate),
            "recommendation_accept_ratio": ("accepted items / items shown", m.accept_rate),
        }
        for name, (doc, value) in ratios.items():
            if value is not None:
                yield core.GaugeMetricFamily(f"chatrec_{name}", doc, value)
        turns = core.CounterMetricFamily("chatrec_turns", "completed turns by route", labels=["route"])
        for route, n in sorted(m.turns_by_route.items()):
            turns.add_metric([route], n)
        yield turns
        status = core.CounterMetricFamily("chatrec_turns_by_status", "turns by status", labels=["status"])
        for name, n in sorted(m.turns_by_status.items()):
            status.add_metric([name], n)
        yield status
        votes = core.CounterMetricFamily("chatrec_feedback", "votes by kind", labels=["kind"])
        for kind, n in (
            ("thumbs_up", m.thumbs_up),
            ("thumbs_down", m.thumbs_down),
            ("accept", m.accepted),
            ("reject", m.rejected),
        ):
            votes.add_metric([kind], n)
        yield votes
        yield core.CounterMetricFamily("chatrec_recommendations_shown", "items shown in completed turns", m.shown)
        buckets = [("+Inf" if b == float("inf") else repr(b), n) for b, n in m.latency_buckets()]
        yield core.HistogramMetricFamily(
            "chatrec_turn_latency_seconds",
            "time from message to result of completed turns",
            buckets=buckets,
            sum_value=sum(m.latencies_s),
        )


def _registry(request: Request, store: Store, ttl_s: float) -> Any:
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        prometheus_client = require("prometheus_client", purpose="GET /v1/metrics")
        registry = prometheus_client.CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(store, ttl_s))
        request.app.state.metrics_registry = registry
    return registry


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(request: Request, bot: BotDep, settings: ServeSettingsDep) -> Response:
    prometheus_client = require("prometheus_client", purpose="GET /v1/metrics")
    registry = _registry(request, bot.store, settings.metrics_cache_s)
    return Response(prometheus_client.generate_latest(registry), media_type=CONTENT_TYPE)
