import json
import re
import shutil

from click.testing import CliRunner

from chatrec.cli.main import main
from tests_support import KB_DIR, REPO


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
    out = r.invoke(
        main, ["--backend", "fake", "ask", "Can you recommend a case for my Pixel 8?", "--user", "U001", "--json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert {"text", "recommendations", "template_id", "sources", "trace", "route"} <= set(data)
    rec = data["recommendations"][0]
    assert {"item_id", "title", "score", "reason", "evidence"} <= set(rec)


def test_chat_repl_streams_and_quits(tmp_path):
    out = CliRunner().invoke(
        main,
        ["--backend", "fake", "chat", "--user", "U001"],
        input="how do I return my headphones?\nrecommend a case for my pixel 8\n\n",
    )
    assert out.exit_code == 0, out.output
    assert out.output.count("bot> ") >= 2 and "KG:" in out.output


def test_chat_timing_prints_each_turns_latency(tmp_path):
    out = CliRunner().invoke(
        main, ["--backend", "fake", "chat", "--timing"], input="how do I return my headphones?\nhi\n\n"
    )
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.startswith("[") and " s" in line]
    assert len(lines) == 2 and all(re.match(r"\[\d+\.\d\d s", line) for line in lines), out.output


def test_ask_rejects_oversized_message():
    out = CliRunner().invoke(main, ["--backend", "fake", "ask", "x" * 5000, "--json"])
    assert out.exit_code == 2 and "limit is 2000" in out.output


def test_version_is_the_package_metadata():
    import tomllib

    import chatrec

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert chatrec.__version__ == pyproject["project"]["version"]
    out = CliRunner().invoke(main, ["--version"])
    assert out.exit_code == 0 and out.output.strip() == f"chatrec {chatrec.__version__}"


def test_missing_config_file_is_a_usage_error(tmp_path, monkeypatch):
    missing = tmp_path / "missing.toml"
    out = CliRunner().invoke(main, ["--config", str(missing), "validate"])
    assert out.exit_code == 2 and str(missing) in out.output and "does not exist" in out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
    monkeypatch.setenv("CHATREC_CONFIG", str(missing))
    out = CliRunner().invoke(main, ["validate"])
    assert out.exit_code == 2 and "CHATREC_CONFIG" in out.output and "Traceback" not in out.output


def test_unknown_chatrec_variable_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("CHATREC_LLM__MODLE", "x")
    out = CliRunner().invoke(main, ["validate"])
    assert out.exit_code == 2 and "CHATREC_LLM__MODLE" in out.output and "CHATREC_LLM__MODEL" in out.output


def _no_extras(monkeypatch, module):
    monkeypatch.setattr(module, "require_extra", lambda *a, **k: None)
    monkeypatch.setattr(module, "require", lambda *a, **k: None, raising=False)


def test_train_flags_fall_back_to_the_train_section(tmp_path, monkeypatch):
    import chatrec.chatbot
    import chatrec.cli.train
    import chatrec.train.sft

    seen = {}

    def fake_train(planner, target, cfg, resume=True, **kwargs):  # command=..., recorded on the card
        seen.update(cfg=cfg, target=target, resume=resume)
        return {"metrics": {"train_loss": 1.0}}

    _no_extras(monkeypatch, chatrec.cli.train)
    monkeypatch.setattr(chatrec.train.sft, "train", fake_train)
    for name in ("build_planner", "Chatbot"):  # whichever the command builds the prompts with
        monkeypatch.setattr(chatrec.chatbot, name, lambda *a, **k: object(), raising=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nmax_steps = 5\nseed = 11\nlora_r = 8\n")
    monkeypatch.setenv("CHATREC_TRAIN__LORA_R", "4")
    out = CliRunner().invoke(main, ["--config", str(cfg), "train", "--max-steps", "3", "--name", "x"])
    assert out.exit_code == 0, out.output
    c = seen["cfg"]
    assert (c.max_steps, c.seed, c.lora_r, c.max_length) == (3, 11, 4, 512)
    assert seen["target"] == tmp_path / "state" / "adapters" / "x"


def test_eval_flags_fall_back_to_the_eval_section(tmp_path, monkeypatch):
    import chatrec.cli.eval
    import chatrec.eval.runner

    seen = {}

    def fake_run(settings, opts, progress=True):
        seen["opts"] = opts
        return {
            "systems": {},
            "run": {"conversations": 0, "turns": {"rec": 0, "service": 0}, "skipped": [], "wall_s": 0.0},
        }

    _no_extras(monkeypatch, chatrec.cli.eval)
    monkeypatch.setattr(chatrec.eval.runner, "run_eval", fake_run)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[eval]\nablations = ["kg"]\nseed = 3\nbootstrap = 200\n')
    monkeypatch.setenv("CHATREC_EVAL__WORKERS", "2")
    out = CliRunner().invoke(
        main,
        [
            "--config",
            str(cfg),
            "eval",
            str(KB_DIR / "transcripts.jsonl"),
            "--out",
            str(tmp_path / "run"),
            "--seed",
            "5",
            "--no-baselines",
            "--limit",
            "4",
        ],
    )
    assert out.exit_code == 0, out.output
    o = seen["opts"]
    assert (o.ablations, o.seed, o.bootstrap, o.workers, o.baselines, o.limit) == (["kg"], 5, 200, 2, False, 4)
    assert (o.fusion, o.split, o.generate) == ("learned", "all", False)


def test_a_missing_extra_ends_with_the_install_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "trl", None)  # `import trl` now fails as if it were not installed
    out = CliRunner().invoke(main, ["train"])
    assert out.exit_code == 1, out.output
    assert out.output.strip().endswith("pip install 'chatrec[train]'") and "Traceback" not in out.output


def test_a_plain_import_of_a_missing_extra_also_gets_the_install_line(monkeypatch):
    import sys

    import click

    from chatrec.cli.main import ChatrecGroup

    group = ChatrecGroup()

    @group.command()
    def serve():
        import uvicorn  # noqa: F401  (as a command module imports an optional package, without require())

    @group.command()
    def broken():
        import not_installed_anywhere_xyz  # noqa: F401

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    out = CliRunner().invoke(group, ["serve"])
    assert out.exit_code == 1, out.output
    assert "chatrec serve" in out.output and out.output.strip().endswith("pip install 'chatrec[serve]'")
    out = CliRunner().invoke(group, ["broken"])  # not an extra's package: the error is not disguised
    assert isinstance(out.exception, ModuleNotFoundError) and not isinstance(out.exception, click.ClickException)
