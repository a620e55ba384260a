"""Batch evaluation: metrics by hand, a real replay on demo logs, resume, compare, the CLI."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from click.testing import CliRunner

from chatrec.config import Settings
from chatrec.eval.fusion import fit_weights, fold_of
from chatrec.eval.metrics import rank_metrics
from chatrec.eval.options import EvalError, EvalOptions
from chatrec.eval.replay import needs_real_llm
from chatrec.eval.runner import run_eval
from chatrec.eval.summary import compare
from chatrec.kb import is_heldout
from chatrec.turn.rank import FEATURES
from tests_support import KB_DIR

HELDOUT = [
    ln
    for ln in (KB_DIR / "transcripts.jsonl").read_text().splitlines()
    if is_heldout(json.loads(ln)["conversation_id"])
]


def test_rank_metrics_by_hand():
    m = rank_metrics(["a", "b", "c", "d"], ["b", "d", "z"], "rec")
    assert m["rec.recall@1"] == (0, 3)
    assert m["rec.recall@5"] == (2, 3)  # micro: hits and gold items, summed over turns later
    assert m["rec.mrr@5"] == (0.5, 1)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["rec.ndcg@5"][0] == pytest.approx(dcg / idcg)
    assert rank_metrics(["a"], [], "rec_new") == {}


def test_fit_weights_learns_the_informative_feature():
    rows = []
    for t in range(40):
        feats = {f"i{j}": [0.0] * len(FEATURES) for j in range(10)}
        for j in range(10):
            feats[f"i{j}"][FEATURES.index("kg")] = 1.0 if j == t % 10 else 0.1
            feats[f"i{j}"][FEATURES.index("popular")] = (j * 7 % 10) / 10
        rows.append({"conversation_id": f"c{t}", "turn_index": 1, "features": feats, "gold": [f"i{t % 10}"]})
    w = fit_weights(iter(rows))["weights"]
    assert w["kg"] > 1.0 and abs(w["popular"]) < w["kg"]
    assert fit_weights(iter([])) is None


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """The demo's held-out conversations plus two malformed lines (line 2 and the last)."""
    d = tmp_path_factory.mktemp("logs")
    lines = list(HELDOUT)
    bad_item = json.loads(lines[0])
    bad_item["conversation_id"] = "CBAD"
    bad_item["turns"][1].update(recommended=["VW-9999"], accepted=[])
    path = d / "logs.jsonl"
    path.write_text(
        "\n".join([lines[0], '{"conversation_id": "C9", "turns": [', *lines[1:], json.dumps(bad_item)]) + "\n"
    )
    return path


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("evalstate")


def _run(logs, out, state_dir, **kw):
    settings = Settings(kb_dir=KB_DIR, data_dir=state_dir)
    opts = EvalOptions(transcripts=str(logs), out=str(out), ablations=["kg"], bootstrap=200, **kw)
    return run_eval(settings, opts, progress=False)


@pytest.fixture(scope="module")
def run_a(logs, state_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run_a")
    return out, _run(logs, out, state_dir)


def test_replay_scores_every_system_on_the_same_turns(run_a):
    out, summary = run_a
    run = summary["run"]
    n = len(HELDOUT)
    assert run["conversations"] == n
    assert {s["line"] for s in run["skipped"]} == {2, n + 2}  # bad JSON; unknown item id
    assert any("VW-9999" in s["error"] for s in run["skipped"])
    systems = summary["systems"]
    assert {"full", "-kg", "popularity", "repeat_last", "embedding_only", "full@configured"} <= set(systems)
    for name, s in systems.items():
        for metric, v in s["metrics"].items():
            if metric.startswith(("rec", "service", "grounding")) and "dissimilarity" not in metric:
                assert 0.0 <= v["value"] <= 1.0, (name, metric, v)
            if v["ci_low"] is not None:
                assert v["ci_low"] <= v["value"] + 1e-9 and v["value"] <= v["ci_high"] + 1e-9
    full = systems["full"]["metrics"]
    assert full["grounding.invalid_rec_rate"]["value"] == 0.0
    n_gold = full["rec.recall@10"]["n"]
    assert all(systems[s]["metrics"]["rec.recall@10"]["n"] == n_gold for s in ("-kg", "popularity", "embedding_only"))
    assert full["service.template_acc"]["n"] > 0 and "service.rouge_l" in full
    assert len(systems["full"]["curve"]["recall"]) == 50
    # per-turn rows: never a later turn's text in the input; gold are the logged items
    rows = [json.loads(x) for x in (out / "turns.jsonl").read_text().splitlines()]
    logged = {
        json.loads(x)["conversation_id"]: json.loads(x) for x in (KB_DIR / "transcripts.jsonl").read_text().splitlines()
    }
    for r in rows:
        turns = logged[r["conversation_id"]]["turns"]
        assert turns[r["turn_index"]]["role"] == "agent"
        assert r["input"] == turns[r["turn_index"] - 1]["text"]
        if r["kind"] == "rec":
            assert r["gold"] == turns[r["turn_index"]]["recommended"]
    html = (out / "report.html").read_text()
    assert "<svg" in html and "rec.recall@10" in html and "https://" not in html


def test_resume_after_interruption_gives_the_same_numbers(run_a, logs, state_dir, tmp_path):
    out_a, summary_a = run_a
    out_b = tmp_path / "b"
    shutil.copytree(out_a, out_b)
    convs = (out_b / "convs.jsonl").read_text().splitlines()
    # as if killed while writing the third conversation: two done, one torn line, its turn rows partly written
    (out_b / "convs.jsonl").write_text("\n".join(convs[:2]) + "\n" + convs[2][: len(convs[2]) // 2])
    (out_b / "summary.json").unlink()
    summary_b = _run(logs, out_b, state_dir)

    def strip(summary):  # wall-clock latencies differ between runs; every quality metric must not
        return {
            k: {m: v for m, v in s["metrics"].items() if not m.startswith("cost.")}
            for k, s in summary["systems"].items()
        }

    assert strip(summary_b) == strip(summary_a)
    ids = [json.loads(x)["conversation_id"] for x in (out_b / "convs.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == len(HELDOUT)
    assert len((out_b / "turns.jsonl").read_text().splitlines()) == len(
        (out_a / "turns.jsonl").read_text().splitlines()
    )


def test_resume_refuses_other_options(run_a, logs, state_dir, tmp_path):
    out_a, _ = run_a
    out = tmp_path / "c"
    shutil.copytree(out_a, out)
    with pytest.raises(EvalError, match="other options"):
        _run(logs, out, state_dir, seed=8)


def test_a_turn_with_nothing_to_recommend_counts_as_a_miss_for_every_system(state_dir, tmp_path):
    """Learned fusion re-ranks the candidates it finds in features.jsonl; a turn whose
    constraints leave no candidate must still count (recall 0), as it does for baselines."""
    conv = next(c for c in map(json.loads, HELDOUT) if any(t.get("recommended") for t in c["turns"]))
    item = next(i for t in conv["turns"] for i in t.get("recommended", []))
    none_left = {
        "conversation_id": "CNONE",
        "user_id": conv["user_id"],
        "turns": [
            {"role": "user", "text": "Can you recommend something under $0.01? Nothing from any brand costs more."},
            {"role": "agent", "text": "Here is one.", "recommended": [item]},
        ],
    }
    logs = tmp_path / "logs.jsonl"
    logs.write_text("\n".join([*HELDOUT, json.dumps(none_left)]) + "\n")  # enough rows to learn the fusion
    summary = _run(logs, tmp_path / "out", state_dir)
    rows = [json.loads(x) for x in (tmp_path / "out" / "turns.jsonl").read_text().splitlines()]
    empty = [r for r in rows if r["conversation_id"] == "CNONE" and r["system"] == "full"]
    assert empty and empty[0]["ranked"] == []  # the constraint leaves nothing
    assert "full" in summary["run"]["learned_weights"]
    n = {name: s["metrics"]["rec.recall@10"]["n"] for name, s in summary["systems"].items()}
    assert len(set(n.values())) == 1, n  # the same gold items in every denominator
    same = compare(f"{tmp_path / 'out'}:full", f"{tmp_path / 'out'}:popularity")
    assert "rec.recall@10" in same["metrics"]


def test_compare_is_paired_and_zero_against_itself(run_a):
    out, _ = run_a
    same = compare(str(out), str(out))
    assert same["conversations"] == len(HELDOUT)
    assert all(m["diff"] == 0 and m["p_value"] == 1.0 for m in same["metrics"].values())
    vs_pop = compare(f"{out}:full", f"{out}:popularity")
    m = vs_pop["metrics"]["rec.recall@10"]
    assert m["ci_low"] <= m["diff"] <= m["ci_high"] and 0 <= m["p_value"] <= 1


def test_folds_are_stable_and_balanced():
    folds = [fold_of(f"C{i:04d}") for i in range(400)]
    assert folds == [fold_of(f"C{i:04d}") for i in range(400)]
    assert 150 < sum(folds) < 250


def test_cli_eval_and_compare(run_a, logs, tmp_path, monkeypatch):
    from chatrec.cli.main import main

    out_a, _ = run_a
    runner = CliRunner()
    res = runner.invoke(main, ["eval", "compare", f"{out_a}:full", f"{out_a}:-kg"])
    assert res.exit_code == 0, res.output
    assert "rec.recall@10" in res.output and "p (paired permutation)" in res.output
    res = runner.invoke(main, ["eval", str(tmp_path / "missing.jsonl")])
    assert res.exit_code != 0 and "no such file" in res.output
    res = runner.invoke(main, ["eval", str(logs), "--ablate", "nonsense", "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "unknown ablation" in res.output


def test_llm_ranking_loads_the_real_model_even_when_llm_rank_is_also_ablated():
    """With ranking.w_llm > 0 the full system ranks with the LLM score: the replay must not
    put the scripted stand-in there just because ``-llm_rank`` is among the ablations."""
    on = Settings(ranking={"w_llm": 0.5})
    assert needs_real_llm(on, EvalOptions(transcripts="t", out="o"))  # default ablations include llm_rank
    assert needs_real_llm(on, EvalOptions(transcripts="t", out="o", ablations=[]))
    off = Settings()
    assert not needs_real_llm(off, EvalOptions(transcripts="t", out="o"))
    assert needs_real_llm(off, EvalOptions(transcripts="t", out="o", generate=True))
