import json
import shutil

from click.testing import CliRunner

from chatrec.cli.main import main
from tests_support import KB_DIR


def test_validate_ok():
    res = CliRunner().invoke(main, ["validate"])
    assert res.exit_code == 0, res.output
    assert "273 items" in res.output and "OK" in res.output


def test_validate_reports_file_and_line(tmp_path):
    kb = tmp_path / "kb"
    shutil.copytree(KB_DIR, kb)
    with (kb / "catalogue.jsonl").open("a") as fh:
        fh.write('{"id": "BAD 1", "title": "x", "category": "c", "brand": "b", "price": 1, "stock": 1}\n')
    n = sum(1 for _ in (kb / "catalogue.jsonl").open())
    res = CliRunner().invoke(main, ["--kb", str(kb), "validate"])
    assert res.exit_code == 1
    assert f"catalogue.jsonl:{n}: id: String should match pattern" in res.output


def test_index_then_ask_json_with_fake_backend(tmp_path):
    r = CliRunner()
    out = r.invoke(main, ["index"])
    assert out.exit_code == 0, out.output
    assert "items: 273 rows, 273 embedded" in out.output
    assert "items: 273 rows, 0 embedded" in r.invoke(main, ["index"]).output
    out = r.invoke(main, ["--backend", "fake", "ask", "Can you recommend a case for my Pixel 8?", "--user", "U001", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert {"text", "recommendations", "template_id", "sources", "trace", "route"} <= set(data)
    rec = data["recommendations"][0]
    assert {"item_id", "title", "score", "reason", "evidence"} <= set(rec)


def test_chat_repl_streams_and_quits(tmp_path):
    out = CliRunner().invoke(main, ["--backend", "fake", "chat", "--user", "U001"],
                             input="how do I return my headphones?\nrecommend a case for my pixel 8\n\n")
    assert out.exit_code == 0, out.output
    assert out.output.count("bot> ") >= 2 and "KG:" in out.output


def test_ask_rejects_oversized_message():
    out = CliRunner().invoke(main, ["--backend", "fake", "ask", "x" * 5000, "--json"])
    assert out.exit_code == 2 and "limit is 2000" in out.output
