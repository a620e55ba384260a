"""``chatrec metrics``: the shop's service metrics from the store, overall and per day or hour,
as text, JSON, or a self-contained HTML page with plots over time (inline SVG)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import click

PLOTTED = (
    ("containment", "containment"),
    ("handoff_rate", "handoff rate"),
    ("abandonment", "abandonment"),
    ("thumbs_up_rate", "thumbs-up rate"),
    ("accept_rate", "accept rate"),
    ("latency_p50_s", "latency p50 (s)"),
    ("latency_p95_s", "latency p95 (s)"),
)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def text_report(overall: dict[str, Any], periods: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [f"{k:>16}: {_fmt(v)}" for k, v in overall.items()]
    cols = ["conversations", "turns", *(k for k, _ in PLOTTED)]
    lines += ["", "period".ljust(14) + "".join(c[:14].rjust(15) for c in cols)]
    for key, s in periods:
        lines.append(key.ljust(14) + "".join(_fmt(s[c]).rjust(15) for c in cols))
    return "\n".join(lines)


def _line_chart(label: str, keys: list[str], values: list[float | None]) -> str:
    """One metric over the periods: a polyline with dots, y from 0 to the max (at least 1 for rates)."""
    width, height, left, bottom, top, right = 460, 220, 50, 40, 16, 14
    known = [v for v in values if v is not None]
    ymax = max([1.0 if "latency" not in label else 0.0, *known]) or 1.0
    n = max(len(keys) - 1, 1)

    def x(i: int) -> float:
        return left + (width - left - right) * i / n

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - v / ymax)

    body = [f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#888"/>']
    for t in (0, ymax / 2, ymax):
        body.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:.2g}</text>')
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eee"/>')
    pts = [(x(i), y(v)) for i, v in enumerate(values) if v is not None]
    if pts:
        body.append(
            '<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="'
            + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            + '"/>'
        )
        body += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="#1f77b4"/>' for a, b in pts]
    for i in sorted({0, len(keys) - 1}):
        body.append(f'<text x="{x(i):.1f}" y="{height - 18}" text-anchor="middle">{escape(keys[i])}</text>')
    svg = (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)} over time">{"".join(body)}</svg>'
    )
    return f'<figure style="display:inline-block;margin:8px">{svg}<figcaption>{escape(label)}</figcaption></figure>'


def html_report(overall: dict[str, Any], periods: list[tuple[str, dict[str, Any]]], period: str) -> str:
    keys = [k for k, _ in periods]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(_fmt(v))}</td></tr>" for k, v in overall.items())
    charts = "".join(_line_chart(label, keys, [s[k] for _, s in periods]) for k, label in PLOTTED) if keys else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>chatrec service metrics</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:24px}td,th{padding:2px 10px;text-align:left}"
        "svg text{font:11px system-ui,sans-serif;fill:#333}</style></head><body>"
        f"<h1>Service metrics</h1><table>{rows}</table><h2>Per {escape(period)} (UTC)</h2>"
        f"{charts or '<p>no turns logged yet</p>'}</body></html>"
    )


@click.command(name="metrics")
@click.option("--period", type=click.Choice(["day", "hour"]), default="day", show_default=True)
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="also write an HTML report with plots")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.pass_context
def metrics_cmd(ctx, period, html_path, as_json) -> None:
    """Containment, handoff rate, abandonment, thumbs-up rate, accept rate and latency from the
    store (docs/feedback.md), overall and per day or hour."""
    from chatrec.cli.context import settings_from
    from chatrec.store import open_store
    from chatrec.store.stats import by_period, service_metrics

    settings = settings_from(ctx)
    store = open_store(settings)
    turns, feedback = store.turn_log(), store.feedback()
    overall = service_metrics(turns, feedback).summary()
    periods = [(k, m.summary()) for k, m in by_period(turns, feedback, period)]
    if as_json:
        click.echo(json.dumps({"overall": overall, "periods": dict(periods)}, indent=2))
    else:
        click.echo(text_report(overall, periods))
    if html_path:
        Path(html_path).write_text(html_report(overall, periods, period), encoding="utf-8")
        click.echo(f"report: {html_path}")


def register(main: click.Group) -> None:
    main.add_command(metrics_cmd)
