import shutil
from pathlib import Path

import pytest

from chatrec.kb import KBError, load_kb
from tests_support import TINY


@pytest.fixture
def tiny(tmp_path) -> Path:
    dst = tmp_path / "kb"
    shutil.copytree(TINY, dst)
    return dst


def _append(path: Path, line: str) -> int:
    text = path.read_text(encoding="utf-8")
    path.write_text(text + line + "\n", encoding="utf-8")
    return text.count("\n") + 1


def test_demo_kb_meets_the_documented_minimums(kb):
    assert len(kb.items) >= 150
    assert len(kb.templates) >= 40
    assert len(kb.triples) >= 800
    assert len(kb.users) >= 50
    assert len(kb.transcripts) >= 300
    assert any(t.recommended for c in kb.transcripts for t in c.turns)
    assert any(t.accepted for c in kb.transcripts for t in c.turns)


def test_tiny_kb_loads(tiny):
    kb = load_kb(tiny)
    assert set(kb.items) >= {"P8", "C1"} and kb.templates["return_policy"].intent == "return_item"


@pytest.mark.parametrize(
    "line,reason",
    [
        ('{"id": "X1", "title": "Thing", "category": "misc", "brand": "B", "price": -5, "stock": 1}', "price"),
        ('{"id": "X1", "title": "Thing", "category": "misc", "brand": "B", "price": 5}', "stock"),
        (
            '{"id": "X1", "title": "Thing", "category": "misc", "brand": "B", "price": 5, "stock": 1, "colour": "red"}',
            "colour",
        ),
        ('{"id": "P8", "title": "Dup", "category": "misc", "brand": "B", "price": 5, "stock": 1}', "duplicate item id"),
        ('{"id": "X1", "title": ', "invalid JSON"),
        ('["not", "an", "object"]', "expected a JSON object"),
    ],
)
def test_bad_catalogue_row_reports_file_and_line(tiny, line, reason):
    line_no = _append(tiny / "catalogue.jsonl", line)
    with pytest.raises(KBError) as err:
        load_kb(tiny)
    assert f"catalogue.jsonl:{line_no}: " in str(err.value)
    assert reason in str(err.value)


def test_every_problem_is_reported_and_nothing_is_half_loaded(tiny):
    _append(tiny / "events.jsonl", '{"user_id": "U1", "item_id": "NOPE", "type": "view", "ts": "2026-01-01T00:00:00Z"}')
    _append(tiny / "kg.tsv", "GHOST\tcompatible_with\tP8")
    _append(tiny / "templates.jsonl", '{"id": "t9", "intent": "x", "text": "in {days} days", "slots": {}}')
    with pytest.raises(KBError) as err:
        load_kb(tiny)
    msg = str(err.value)
    assert "3 problem(s)" in msg
    assert "events.jsonl:4: unknown item id 'NOPE'" in msg
    assert "kg.tsv:15: unknown item id 'GHOST'" in msg
    assert "templates.jsonl:5: slot(s) ['days']" in msg


def test_transcript_references_are_checked(tiny):
    line = _append(
        tiny / "transcripts.jsonl",
        '{"conversation_id": "T3", "turns": [{"role": "user", "text": "hi"}, '
        '{"role": "agent", "text": "x", "recommended": ["NOPE"], "template_id": "nope"}]}',
    )
    with pytest.raises(KBError, match=rf"transcripts.jsonl:{line}: turn 1: unknown item id"):
        load_kb(tiny)


def test_non_utf8_and_missing_files(tiny):
    (tiny / "users.jsonl").write_bytes(b'{"id": "U1", "name": "Ren\xe9"}\n')
    with pytest.raises(KBError, match="users.jsonl: not UTF-8"):
        load_kb(tiny)
    (tiny / "catalogue.jsonl").unlink()
    with pytest.raises(KBError, match="catalogue.jsonl: required file missing"):
        load_kb(tiny)


def test_kg_header_is_required(tiny):
    (tiny / "kg.tsv").write_text("a\tb\tc\nP8\tbrand\tbrand:Google\n", encoding="utf-8")
    with pytest.raises(KBError, match="kg.tsv:1: header"):
        load_kb(tiny)
