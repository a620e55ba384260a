"""``chatrec eval --ray``: the replay on Ray actors gives the local worker pool's results.

Runs a local, CPU-only Ray instance (the ``ray`` extra). Skipped when ray is not
installed, failed instead under ``CHATREC_REQUIRE_SERVERS=1`` (``.ci/run`` installs the extra).
"""

from __future__ import annotations

import json
import os

import pytest

from chatrec.eval.options import EvalOptions
from chatrec.eval.runner import run_eval
from tests_support import KB_DIR, fake_settings

CONVERSATIONS = 4
COST = ("cost.", "latency")  # wall-clock figures differ between any two runs


def _require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CHATREC_REQUIRE_SERVERS", "") not in ("", "0"):
            pytest.fail("ray is not installed: pip install -e '.[ray]' (CHATREC_REQUIRE_SERVERS=1)")
        pytest.skip("ray is not installed (the ray extra)")


def _quality(summary: dict) -> dict:
    return {
        name: {m: v for m, v in s["metrics"].items() if not m.startswith(COST)}
        for name, s in summary["systems"].items()
    }


def _rows(path) -> list[dict]:
    """Per-turn rows without their wall-clock fields, in a fixed order (workers finish in any order)."""
    rows = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        row = {k: v for k, v in json.loads(raw).items() if not k.startswith(COST) and not k.endswith("_ms")}
        rows.append(row)
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def test_eval_on_ray_gives_the_local_pools_results(tmp_path):
    _require_ray()
    logs = tmp_path / "logs.jsonl"
    logs.write_text("\n".join((KB_DIR / "transcripts.jsonl").read_text().splitlines()[:CONVERSATIONS]) + "\n")
    settings = fake_settings(tmp_path)  # no generation: the scripted model is never asked

    def run(out: str, **kw) -> dict:
        opts = EvalOptions(transcripts=str(logs), out=str(tmp_path / out), ablations=["kg"], bootstrap=100, **kw)
        return run_eval(settings, opts, progress=False)

    local = run("local", workers=1)
    on_ray = run("ray", workers=2, ray="local")
    assert on_ray["run"]["conversations"] == local["run"]["conversations"] == CONVERSATIONS
    assert _quality(on_ray) == _quality(local)
    assert local["systems"]["full"]["metrics"]["rec.recall@10"]["n"] > 0  # something was scored
    rows_local, rows_ray = _rows(tmp_path / "local" / "turns.jsonl"), _rows(tmp_path / "ray" / "turns.jsonl")
    assert rows_ray == rows_local and len(rows_local) > CONVERSATIONS
    ids = [json.loads(x)["conversation_id"] for x in (tmp_path / "ray" / "convs.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(json.loads(x)["conversation_id"] for x in logs.read_text().splitlines())
