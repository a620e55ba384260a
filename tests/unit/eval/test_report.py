"""The offline HTML report of an eval run: content, escaping, well-formedness."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from chatrec.eval.report import write_html

EVIL = "<script>alert(1)</script>"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _entry(value: float, ci: bool = True) -> dict:
    return {"value": value, "ci_low": value - 0.05 if ci else None, "ci_high": value + 0.05 if ci else None, "n": 40}


def _curve(scale: float) -> list[float]:
    return [min(1.0, scale * k / 50) for k in range(1, 51)]


def _summary() -> dict:
    full = {
        "rec.recall@1": _entry(0.2),
        "rec.recall@10": _entry(0.55),
        "rec.ndcg@10": _entry(0.41),
        "rec_new.recall@10": _entry(0.33),
        "rec.coverage": _entry(0.7),
        "grounding.invalid_rec_rate": _entry(0.01),
        "service.template_acc": _entry(0.9),
        "service.rouge_l": _entry(0.62),
        "cost.latency_p50_s": _entry(0.8),
        "cost.tokens_mean": _entry(152.4),
        "oddname": _entry(3.0),
    }
    return {
        "run": {
            "transcripts": "data/transcripts.jsonl",
            "kb": "kb",
            "adapter": None,
            "seed": 7,
            "started_at": "2024-05-01T10:00:00Z",
            "wall_s": 123.4,
            "conversations": 12,
            "turns": {"rec": 30, "service": 10},
            "skipped": [{"conversation_id": "C9", "line": 9, "error": "bad <role> value"}],
            "systems": ["full", "popularity", EVIL],
        },
        "systems": {
            "full": {
                "description": "the whole pipeline",
                "metrics": full,
                "curve": {"recall": _curve(1.2), "recall_new": _curve(0.8)},
            },
            "popularity": {
                "description": "most popular items",
                "metrics": {"rec.recall@10": _entry(0.2, ci=False), "rec.ndcg@10": _entry(0.1, ci=False)},
                "curve": {"recall": _curve(0.5)},
            },
            EVIL: {
                "description": "a name that must be escaped",
                "metrics": {"rec.recall@10": _entry(0.3), "service.template_acc": _entry(0.5)},
                "curve": {"recall": _curve(0.7), "recall_new": _curve(0.4)},
            },
        },
    }


class _StrictParser(HTMLParser):
    """Fails on a closing tag that does not match the innermost open element."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def _check_page(text: str) -> None:
    parser = _StrictParser()
    parser.feed(text)
    parser.close()
    assert parser.stack == []
    assert "<svg" in text
    assert 'src="http' not in text and "<script src" not in text
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text
    assert "&lt;script&gt;" in text


def _write_turns(path: Path) -> None:
    rows = []
    for i in range(60):
        for system, base in (("full", 0.5), ("popularity", 0.01), (EVIL, 2.0)):
            rows.append(
                {
                    "system": system,
                    "conversation_id": f"C{i % 5}",
                    "turn_index": i,
                    "kind": "rec" if i % 3 else "service",
                    "latency_s": base * (1 + i / 10),
                    "metrics": {},
                }
            )
    rows.append({"system": "full", "conversation_id": "C1", "turn_index": 99, "kind": "rec", "metrics": {}})
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n\nnot json\n", encoding="utf-8")


def test_report_with_turns(tmp_path: Path) -> None:
    turns = tmp_path / "turns.jsonl"
    _write_turns(turns)
    out = tmp_path / "report" / "report.html"
    assert write_html(_summary(), turns, out) == out
    text = out.read_text(encoding="utf-8")
    _check_page(text)
    for metric in (
        "rec.recall@10",
        "rec_new.recall@10",
        "rec.ndcg@10",
        "grounding.invalid_rec_rate",
        "service.template_acc",
        "cost.tokens_mean",
        "oddname",
    ):
        assert metric in text
    assert '0.550 <span class="ci">[0.500, 0.600]</span>' in text
    assert text.count("<figure ") == text.count("<figcaption>") == 8  # 5 bars, 2 curves, 1 histogram
    assert "logarithmic bins" in text and "2 rows without a usable latency_s were skipped" in text
    assert "<details>" in text and "bad &lt;role&gt; value" in text
    assert not [p for p in out.parent.iterdir() if p != out]  # no temporary file left behind


def test_report_without_turns(tmp_path: Path) -> None:
    out = write_html(_summary(), None, tmp_path / "report.html")
    text = out.read_text(encoding="utf-8")
    _check_page(text)
    assert "No per-turn file was given" in text
    assert 'aria-label="latency histogram"' not in text
    assert text.count("<figcaption>") == 7


def test_report_of_sparse_summary(tmp_path: Path) -> None:
    summary = {
        "run": {},
        "systems": {"only": {"metrics": {"x.y": {"value": None, "ci_low": None, "ci_high": None, "n": 0}}}},
    }
    text = write_html(summary, None, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "x.y" in text and "No headline metric was reported" in text and "No recall curve was reported" in text
