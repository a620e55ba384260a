"""Self-contained HTML report for a ``chatrec eval`` run.

:func:`write_html` turns the parsed ``summary.json`` of an eval run (and, when
given, its per-turn JSONL file) into one HTML page that opens offline: the
styles are inline, the plots are inline SVG drawn here, and the page holds no
JavaScript and no external reference. Every piece of text that comes from the
run is escaped with :func:`html.escape`.

The page shows, in order:

* run facts (paths, seed, wall time, counts, skipped conversations);
* the systems compared, with the colour each has in the plots;
* one table per metric group (the part of a metric name before the first dot),
  each cell ``value [ci_low, ci_high]``;
* bar charts with 95% intervals for the headline metrics;
* recall@k curves on all items and on not-yet-mentioned items;
* a histogram of per-turn latency, with a per-kind p50/p95 table.

A metric, interval or curve that a system lacks is drawn as "–" or left out.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

HEADLINE_METRICS: dict[str, str] = {
    "rec.recall@10": "Recall@10 on recommendation turns, counting all gold items.",
    "rec_new.recall@10": (
        "Recall@10 on recommendation turns, counting only gold items not yet mentioned in the dialogue."
    ),
    "rec.ndcg@10": "NDCG@10 of the recommended list on recommendation turns.",
    "service.template_acc": "Share of service turns answered with the right template.",
    "service.rouge_l": "ROUGE-L F-score of the service reply against the reference reply.",
}
"""Metrics that get a bar chart, with the sentence that opens each caption."""

CURVES: dict[str, str] = {
    "recall": "all gold items",
    "recall_new": "only gold items not yet mentioned in the dialogue",
}
"""Curve keys of a system's ``curve`` entry, with what each one counts."""

GROUP_ORDER = ("rec", "rec_new", "grounding", "service", "svc", "cost")
"""Metric groups shown first, in this order; any other group follows."""

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
"""Series colours (Tableau 10), given to systems in order and reused past ten."""

MISSING = "\u2013"
HIST_BINS = 30
LOG_BINS_RATIO = 20.0
"""Latency bins are logarithmic when the largest latency is this many times the smallest."""

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
h3 { margin: 1.4em 0 .4em; font-family: ui-monospace, monospace; }
table { border-collapse: collapse; margin: .4em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
th { background: #f6f6f6; font-weight: 600; }
thead th { font-family: ui-monospace, monospace; font-size: .9em; }
.ci { color: #777; font-size: .85em; }
.scroll { overflow-x: auto; }
.swatch { display: inline-block; width: .9em; height: .9em; border-radius: 2px; vertical-align: middle; }
code, .mono { font-family: ui-monospace, monospace; }
figure { margin: 1.2em 0; max-width: 100%; }
.charts { display: flex; flex-wrap: wrap; gap: 0 2em; }
figcaption { color: #555; max-width: 720px; font-size: .92em; }
svg { max-width: 100%; height: auto; background: #fff; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .grid { stroke: #e6e6e6; }
svg .axis { stroke: #888; }
details { margin: .4em 0; }
"""


def write_html(summary: dict, turns_path: Path | None, out_path: Path) -> Path:
    """Render the report of an eval run to ``out_path`` and return ``out_path``.

    ``summary`` is the parsed ``summary.json`` of the run; ``turns_path`` is its
    per-turn JSONL file (read one line at a time, for the latency histogram) or
    None. The file is written to a temporary file next to ``out_path`` and then
    moved into place, so a reader never sees a half-written report.
    """
    out_path = Path(out_path)
    turns_path = Path(turns_path) if turns_path is not None else None
    latencies = _read_latencies(turns_path) if turns_path is not None else None
    _write_atomic(out_path, _render(summary, latencies, turns_path))
    return out_path


# --------------------------------------------------------------------------- data


@dataclass
class _Latencies:
    """Per-turn latencies (seconds) keyed by (system, kind), in first-seen order."""

    series: dict[tuple[str, str], array] = field(default_factory=dict)
    skipped: int = 0

    def systems(self) -> list[str]:
        return list(dict.fromkeys(system for system, _ in self.series))

    def kinds(self) -> list[str]:
        return sorted({kind for _, kind in self.series})

    def of(self, system: str, kind: str | None = None) -> np.ndarray:
        """Latencies of ``system``, of one ``kind`` or of all kinds together."""
        parts = [
            np.frombuffer(values, dtype=np.float64)
            for (s, k), values in self.series.items()
            if s == system and kind in (None, k)
        ]
        return np.concatenate(parts) if parts else np.empty(0)


def _read_latencies(path: Path) -> _Latencies:
    """Stream ``path`` and keep ``latency_s`` of each row by system and kind.

    Rows that are not JSON objects, or lack a system name or a finite,
    non-negative ``latency_s``, are counted in ``skipped``.
    """
    result = _Latencies()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                result.skipped += 1
                continue
            latency = _number(row.get("latency_s")) if isinstance(row, dict) else None
            system = row.get("system") if isinstance(row, dict) else None
            if latency is None or latency < 0 or not isinstance(system, str):
                result.skipped += 1
                continue
            kind = row.get("kind")
            key = (system, kind if isinstance(kind, str) else "unknown")
            result.series.setdefault(key, array("d")).append(latency)
    return result


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None for anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _metric(systems: Mapping[str, Any], system: str, metric: str) -> tuple[float | None, float | None, float | None]:
    """(value, ci_low, ci_high) of one metric of one system; None where absent."""
    entry = ((systems.get(system) or {}).get("metrics") or {}).get(metric)
    if not isinstance(entry, Mapping):
        return None, None, None
    value = _number(entry.get("value"))
    low, high = _number(entry.get("ci_low")), _number(entry.get("ci_high"))
    if value is None or low is None or high is None:
        return value, None, None
    return value, low, high


def _system_order(run: Mapping[str, Any], systems: Mapping[str, Any]) -> list[str]:
    """Systems in the order the run lists them, then any others the summary holds."""
    listed = [name for name in run.get("systems") or [] if name in systems]
    return listed + [name for name in systems if name not in listed]


def _metric_groups(names: Sequence[str], systems: Mapping[str, Any]) -> dict[str, list[str]]:
    """Metric names grouped by the prefix before the first dot, in first-seen order.

    Known groups come first (``GROUP_ORDER``); a name without a dot goes to "other".
    """
    groups: dict[str, list[str]] = {}
    for name in names:
        for metric in (systems[name] or {}).get("metrics") or {}:
            group = metric.split(".", 1)[0] if "." in metric else "other"
            members = groups.setdefault(group, [])
            if metric not in members:
                members.append(metric)
    rank = {group: i for i, group in enumerate(GROUP_ORDER)}
    return dict(sorted(groups.items(), key=lambda item: rank.get(item[0], len(rank))))


# --------------------------------------------------------------------------- text


def _fmt(value: float) -> str:
    """A metric value with three decimals, or one decimal from 100 up."""
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


def _short(name: str, limit: int = 20) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def _header(run: Mapping[str, Any]) -> str:
    turns = run.get("turns") or {}
    skipped = run.get("skipped") or []
    wall = _number(run.get("wall_s"))
    facts = [
        ("Transcripts", run.get("transcripts")),
        ("Knowledge base", run.get("kb")),
        ("Adapter", run.get("adapter") or "none"),
        ("Seed", run.get("seed")),
        ("Started at", run.get("started_at")),
        ("Wall time", f"{wall:.1f} s" if wall is not None else None),
        ("Conversations", run.get("conversations")),
        ("Turns", ", ".join(f"{kind} {count}" for kind, count in turns.items()) or None),
        ("Skipped conversations", len(skipped)),
    ]
    rows = "".join(
        f'<tr><th>{escape(label)}</th><td class="mono">{escape(str(MISSING if value is None else value))}</td></tr>'
        for label, value in facts
    )
    parts = ["<header><h1>chatrec eval report</h1>", f"<table>{rows}</table>"]
    if skipped:
        items = "".join(
            f'<tr><td class="mono">{escape(str(s.get("conversation_id", MISSING)))}</td>'
            f'<td class="num">{escape(str(s.get("line", MISSING)))}</td><td>{escape(str(s.get("error", "")))}</td></tr>'
            for s in skipped
            if isinstance(s, Mapping)
        )
        plural = "s" if len(skipped) != 1 else ""
        parts.append(
            f"<details><summary>{len(skipped)} skipped conversation{plural}</summary>"
            f"<table><thead><tr><th>conversation</th><th>line</th><th>error</th></tr></thead>"
            f"<tbody>{items}</tbody></table></details>"
        )
    parts.append("</header>")
    return "".join(parts)


def _systems_table(names: Sequence[str], systems: Mapping[str, Any], colours: Mapping[str, str]) -> str:
    rows = "".join(
        f'<tr><td><span class="swatch" style="background:{colours[name]}"></span> '
        f'<span class="mono">{escape(name)}</span></td>'
        f"<td>{escape(str((systems[name] or {}).get('description') or ''))}</td></tr>"
        for name in names
    )
    return (
        f"<section><h2>Systems</h2><table><thead><tr><th>system</th><th>description</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _metric_tables(names: Sequence[str], systems: Mapping[str, Any]) -> str:
    parts = [
        "<section><h2>Metrics</h2>",
        "<p>Each cell is the point estimate followed by its 95% interval in brackets; "
        f"{MISSING} marks a metric the system does not report. Hover a cell for its sample size.</p>",
    ]
    for group, metrics in _metric_groups(names, systems).items():
        head = "".join(f"<th>{escape(metric)}</th>" for metric in metrics)
        rows = []
        for name in names:
            cells = "".join(_cell(systems, name, metric) for metric in metrics)
            rows.append(f'<tr><th class="mono">{escape(name)}</th>{cells}</tr>')
        parts.append(
            f'<h3>{escape(group)}</h3><div class="scroll"><table>'
            f"<thead><tr><th>system</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )
    parts.append("</section>")
    return "".join(parts)


def _cell(systems: Mapping[str, Any], name: str, metric: str) -> str:
    """A table cell "value [ci_low, ci_high]", with the sample size as its tooltip."""
    value, low, high = _metric(systems, name, metric)
    if value is None:
        return f'<td class="num">{MISSING}</td>'
    n = systems[name]["metrics"][metric].get("n")
    title = f' title="n = {escape(str(n))}"' if n is not None else ""
    ci = f' <span class="ci">[{_fmt(low)}, {_fmt(high)}]</span>' if low is not None and high is not None else ""
    return f'<td class="num"{title}>{_fmt(value)}{ci}</td>'


# --------------------------------------------------------------------------- SVG


def _nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values that cover [low, high] in about ``target`` steps."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if raw <= m * magnitude)
    start, stop = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(start, stop + 1)]


def _log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks in each decade that falls within [low, high]."""
    ticks = []
    for decade in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        ticks += [m * 10.0**decade for m in (1, 2, 5) if low <= m * 10.0**decade <= high]
    return ticks


def _tick(value: float) -> str:
    return f"{value:.6g}"


def _linear(d0: float, d1: float, r0: float, r1: float) -> Callable[[float], float]:
    """Map the domain [d0, d1] onto the pixel range [r0, r1]."""
    span = (d1 - d0) or 1.0
    return lambda v: r0 + (v - d0) / span * (r1 - r0)


def _svg(width: int, height: int, label: str, body: Sequence[str]) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}">{"".join(body)}</svg>'
    )


def _figure(svg: str, width: int, caption: str) -> str:
    """A figure as wide as its plot, so that narrow plots sit side by side."""
    return f'<figure style="width:{width}px">{svg}<figcaption>{escape(caption)}</figcaption></figure>'


def _y_axis(ticks: Sequence[float], y: Callable[[float], float], left: float, right: float, label: str) -> list[str]:
    """Horizontal grid lines with tick labels, the y axis line and its rotated title."""
    out = []
    for t in ticks:
        out.append(
            f'<line class="grid" x1="{left}" x2="{right}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
            f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{_tick(t)}</text>'
        )
    top, bottom = y(ticks[-1]), y(ticks[0])
    mid = (top + bottom) / 2
    out.append(
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top:.1f}" y2="{bottom:.1f}"/>'
        f'<text x="14" y="{mid:.1f}" text-anchor="middle" transform="rotate(-90 14 {mid:.1f})">'
        f"{escape(label)}</text>"
    )
    return out


def _x_axis(
    ticks: Sequence[float], x: Callable[[float], float], left: float, right: float, baseline: float, label: str
) -> list[str]:
    """The x axis from ``left`` to ``right`` at ``baseline``, with tick marks, tick labels and a title."""
    out = [f'<line class="axis" x1="{left}" x2="{right}" y1="{baseline}" y2="{baseline}"/>']
    for t in ticks:
        out.append(
            f'<line class="axis" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{baseline}" y2="{baseline + 4}"/>'
            f'<text x="{x(t):.1f}" y="{baseline + 16}" text-anchor="middle">{_tick(t)}</text>'
        )
    out.append(f'<text x="{(left + right) / 2:.1f}" y="{baseline + 34}" text-anchor="middle">{escape(label)}</text>')
    return out


def _legend(entries: Sequence[tuple[str, str]], left: float, top: float) -> list[str]:
    """A column of (label, colour) line samples starting at (left, top)."""
    out = []
    for i, (label, colour) in enumerate(entries):
        y = top + i * 18
        out.append(
            f'<line x1="{left}" x2="{left + 18}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2.5"/>'
            f'<text x="{left + 24}" y="{y + 4}">{escape(_short(label, 26))}'
            f"<title>{escape(label)}</title></text>"
        )
    return out


def _bar_chart(metric: str, names: Sequence[str], systems: Mapping[str, Any], colours: Mapping[str, str]) -> str:
    """One bar per system with a 95% interval whisker; "–" where the system lacks the metric."""
    width, height, left, right, top, bottom = 520, 330, 60, 16, 20, 100
    stats = {name: _metric(systems, name, metric) for name in names}
    points = [v for stat in stats.values() for v in stat if v is not None]
    ticks = _nice_ticks(min(0.0, *points), max(0.0, *points))
    y = _linear(ticks[0], ticks[-1], height - bottom, top)
    body = _y_axis(ticks, y, left, width - right, metric)
    body.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')
    slot = (width - left - right) / len(names)
    bar = min(48.0, slot * 0.6)
    for i, name in enumerate(names):
        cx = left + slot * (i + 0.5)
        value, low, high = stats[name]
        if value is None:
            body.append(f'<text x="{cx:.1f}" y="{y(0) - 4:.1f}" text-anchor="middle">{MISSING}</text>')
        else:
            ci = f" [{_fmt(low)}, {_fmt(high)}]" if low is not None and high is not None else ""
            body.append(
                f'<rect x="{cx - bar / 2:.1f}" y="{y(max(value, 0)):.1f}" width="{bar:.1f}" '
                f'height="{abs(y(value) - y(0)):.1f}" fill="{colours[name]}">'
                f"<title>{escape(name)}: {_fmt(value)}{ci}</title></rect>"
            )
            if low is not None and high is not None:
                cap = bar / 4
                whisker = (
                    f"M{cx:.1f} {y(low):.1f}V{y(high):.1f}"
                    f"M{cx - cap:.1f} {y(low):.1f}H{cx + cap:.1f}M{cx - cap:.1f} {y(high):.1f}H{cx + cap:.1f}"
                )
                body.append(f'<path d="{whisker}" stroke="#222" stroke-width="1.2" fill="none"/>')
            label_y = y(max(value, high if high is not None else value)) - 5
            body.append(f'<text x="{cx:.1f}" y="{label_y:.1f}" text-anchor="middle">{_fmt(value)}</text>')
        base = height - bottom + 14
        body.append(
            f'<text x="{cx:.1f}" y="{base}" text-anchor="end" transform="rotate(-35 {cx:.1f} {base})">'
            f"{escape(_short(name))}<title>{escape(name)}</title></text>"
        )
    caption = (
        f"{HEADLINE_METRICS.get(metric, metric)} One bar per system ({metric}); whiskers span the 95% interval "
        f"where the run reports one; {MISSING} marks a system that does not report this metric."
    )
    return _figure(_svg(width, height, f"bar chart of {metric}", body), width, caption)


def _polyline(xs: Sequence[float], ys: Sequence[float | None], colour: str) -> list[str]:
    """Polylines through (x, y), broken where y is missing."""
    runs: list[list[str]] = [[]]
    for x, y in zip(xs, ys):
        if y is None:
            runs.append([])
        else:
            runs[-1].append(f"{x:.1f},{y:.1f}")
    return [
        f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="2"/>' for run in runs if run
    ]


def _curve_chart(key: str, names: Sequence[str], systems: Mapping[str, Any], colours: Mapping[str, str]) -> str | None:
    """Recall@k against k, a line per system that has the curve; None if none has it."""
    curves = {}
    for name in names:
        curve = ((systems[name] or {}).get("curve") or {}).get(key)
        if isinstance(curve, list) and curve:
            curves[name] = [_number(v) for v in curve]
    values = [v for curve in curves.values() for v in curve if v is not None]
    if not values:
        return None
    width, height, left, right, top, bottom = 720, 340, 60, 200, 20, 50
    k_max = max(len(curve) for curve in curves.values())
    x = _linear(1, k_max, left, width - right)
    y_ticks = _nice_ticks(0.0, max(values))
    y = _linear(y_ticks[0], y_ticks[-1], height - bottom, top)
    x_ticks = [1, *range(10, k_max + 1, 10)] if k_max >= 10 else list(range(1, k_max + 1))
    body = _y_axis(y_ticks, y, left, width - right, f"{key}@k")
    body += _x_axis(x_ticks, x, left, width - right, height - bottom, "k (length of the recommended list)")
    for name, curve in curves.items():
        body += _polyline(
            [x(k) for k in range(1, len(curve) + 1)], [None if v is None else y(v) for v in curve], colours[name]
        )
    body += _legend([(name, colours[name]) for name in curves], width - right + 16, top + 6)
    caption = (
        f"Recall@k for k = 1\u2013{k_max} ({key}), counting {CURVES[key]}: the share of gold items found in the "
        "top k recommendations, one line per system; a higher line finds more gold items at the same "
        "list length."
    )
    return _figure(_svg(width, height, f"recall@k curves ({key})", body), width, caption)


def _latency_section(
    latencies: _Latencies | None, turns_path: Path | None, names: Sequence[str], colours: Mapping[str, str]
) -> str:
    """Histogram of per-turn latency per system, and a p50/p95 table by turn kind."""
    head = "<section><h2>Latency per turn</h2>"
    if latencies is None:
        return head + "<p>No per-turn file was given, so there is no latency histogram.</p></section>"
    systems = [name for name in names if name in latencies.systems()]
    systems += [name for name in latencies.systems() if name not in systems]
    if not systems:
        return head + (
            f"<p>No usable latencies in <code>{escape(str(turns_path))}</code> "
            f"({latencies.skipped} rows skipped).</p></section>"
        )
    histogram = _histogram(latencies, systems, colours, turns_path)
    return head + histogram + _latency_table(latencies, systems) + "</section>"


def _histogram(
    latencies: _Latencies, systems: Sequence[str], colours: Mapping[str, str], turns_path: Path | None
) -> str:
    """Outline histogram: for each system, the share of its turns that fall in each latency bin."""
    width, height, left, right, top, bottom = 720, 340, 60, 200, 20, 50
    per_system = {name: latencies.of(name) for name in systems}
    everything = np.concatenate(list(per_system.values()))
    positive = everything[everything > 0]
    high = float(everything.max())
    log_bins = positive.size > 0 and high / float(positive.min()) > LOG_BINS_RATIO
    to_axis: Callable[[float], float] = math.log10 if log_bins else float  # float: the identity on numbers
    if log_bins:
        low = float(positive.min())
        edges = np.geomspace(low, high, HIST_BINS + 1)
        x_ticks = _log_ticks(low, high)
    else:
        low = float(everything.min())
        if high <= low:
            high = low + (abs(low) * 0.1 or 1e-3)
        edges = np.linspace(low, high, HIST_BINS + 1)
        x_ticks = [t for t in _nice_ticks(low, high) if low <= t <= high]
    axis = _linear(to_axis(low), to_axis(high), left, width - right)

    def x_of(v: float) -> float:
        return axis(to_axis(v))

    shares = {
        name: np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0] / values.size
        for name, values in per_system.items()
    }
    y_ticks = _nice_ticks(0.0, max(float(s.max()) for s in shares.values()))
    y = _linear(y_ticks[0], y_ticks[-1], height - bottom, top)
    body = _y_axis(y_ticks, y, left, width - right, "share of the system's turns")
    body += _x_axis(x_ticks, x_of, left, width - right, height - bottom, "latency per turn (s)")
    for name, share in shares.items():
        xs, ys = [x_of(edges[0])], [y(0)]
        for i, s in enumerate(share):
            xs += [x_of(edges[i]), x_of(edges[i + 1])]
            ys += [y(s), y(s)]
        body += _polyline(xs + [x_of(edges[-1])], ys + [y(0)], colours[name])
    legend = [(f"{name} (n={per_system[name].size})", colours[name]) for name in systems]
    body += _legend(legend, width - right + 16, top + 6)
    scale = "logarithmic" if log_bins else "linear"
    source = f" from {turns_path.name}" if turns_path is not None else ""
    skipped = f" {latencies.skipped} rows without a usable latency_s were skipped." if latencies.skipped else ""
    caption = (
        f"Distribution of per-turn latency (latency_s, seconds{source}), recommendation and service turns "
        f"together, one outline per system. {HIST_BINS} {scale} bins ({scale} x axis) from {low:.3g} s "
        f"to {high:.3g} s; "
        f"the height of a bin is the share of that system's turns that fall in it, so systems with different "
        f"turn counts compare directly.{skipped}"
    )
    return _figure(_svg(width, height, "latency histogram", body), width, caption)


def _latency_table(latencies: _Latencies, systems: Sequence[str]) -> str:
    """Turn count, median and 95th percentile of latency per system and turn kind."""
    kinds = latencies.kinds()
    head = "".join(f'<th colspan="3">{escape(kind)}</th>' for kind in kinds)
    sub = "<th>turns</th><th>p50 (s)</th><th>p95 (s)</th>" * len(kinds)
    rows = []
    for name in systems:
        cells = []
        for kind in kinds:
            values = latencies.of(name, kind)
            if values.size:
                p50, p95 = np.percentile(values, [50, 95])
                cells.append(
                    f'<td class="num">{values.size}</td><td class="num">{_fmt(p50)}</td>'
                    f'<td class="num">{_fmt(p95)}</td>'
                )
            else:
                cells.append(f'<td class="num">0</td><td class="num">{MISSING}</td><td class="num">{MISSING}</td>')
        rows.append(f'<tr><th class="mono">{escape(name)}</th>{"".join(cells)}</tr>')
    return (
        f'<div class="scroll"><table><thead><tr><th rowspan="2">system</th>{head}</tr><tr>{sub}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


# --------------------------------------------------------------------------- page


def _figures(title: str, figures: Sequence[str], empty: str) -> str:
    """A section of figures that wrap side by side, or a note when there are none."""
    inner = f'<div class="charts">{"".join(figures)}</div>' if figures else f"<p>{escape(empty)}</p>"
    return f"<section><h2>{escape(title)}</h2>{inner}</section>"


def _render(summary: Mapping[str, Any], latencies: _Latencies | None, turns_path: Path | None) -> str:
    run = summary.get("run") or {}
    systems = summary.get("systems") or {}
    names = _system_order(run, systems)
    extra = [name for name in (latencies.systems() if latencies else []) if name not in names]
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names + extra)}
    bars = [
        _bar_chart(metric, names, systems, colours)
        for metric in HEADLINE_METRICS
        if any(_metric(systems, name, metric)[0] is not None for name in names)
    ]
    curves = [chart for key in CURVES if (chart := _curve_chart(key, names, systems, colours))]
    body = [
        _header(run),
        _systems_table(names, systems, colours),
        _metric_tables(names, systems),
        _figures("Headline metrics", bars, "No headline metric was reported."),
        _figures("Recall@k", curves, "No recall curve was reported."),
        _latency_section(latencies, turns_path, names, colours),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>chatrec eval report</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
