"""Ranker latency on the demo KB for 50 candidates, with and without the LLM relevance score,
plus two users' lists for the same question (personalisation you can read).

    python benchmarks/bench_ranker.py [--queries 20] [--llm-queries 5] [--out benchmarks/results/ranker.json]

Measured side by side in one run on the same requests:

- ``fusion``: candidates (dense + KG + co-occurrence + popular), hard filters and the fused
  score for the 50 best allowed items (``depth=50``; the scripted fake LLM is loaded but unused);
- ``fusion+llm``: the same, plus the embedded SmolLM2 (NF4) scoring all 50 candidates' Yes/No
  relevance in one batched forward pass (``ranking.w_llm`` > 0, ``llm_candidates`` 50), the
  tokens all 50 prompts share (profile, request) run once and their KV cache reused;
- ``fusion+llm (full prompts)``: the same scores with every prompt run in full (no shared
  prefix), to show what the prefix cache saves.

Only requests that keep at least 50 allowed candidates are timed with the LLM.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import percentile  # noqa: E402

from chatrec.chatbot import Chatbot  # noqa: E402
from chatrec.config import load_settings  # noqa: E402
from chatrec.kb import is_heldout, load_kb  # noqa: E402
from chatrec.llm.fake import FakeLLM  # noqa: E402
from chatrec.turn.plan import TurnInput  # noqa: E402
from chatrec.turn.profile import history_of, profile_text  # noqa: E402
from chatrec.turn.state import DialogueState, update_state  # noqa: E402

QUESTION = "Can you recommend a wireless charger?"
USERS = ("U003", "U011")  # a Pixel 8 owner and an iPhone 15 Pro owner


def requests(kb, n: int) -> list[tuple[str, str | None]]:
    """The first customer message of held-out recommendation conversations."""
    out = []
    for conv in kb.transcripts:
        if is_heldout(conv.conversation_id) or not any(t.recommended for t in conv.turns):
            continue
        out.append((conv.turns[0].text, conv.user_id))
        if len(out) == n:
            break
    return out


def time_rank(bot: Chatbot, reqs, depth: int = 50) -> tuple[list[float], list[int]]:
    """Milliseconds per ``rank`` call and the number of candidates each one ranked."""
    ms, sizes = [], []
    for text, user in reqs:
        state = update_state(DialogueState(), text, bot.planner.linker)
        history = history_of(bot.kb, user)
        profile = profile_text(bot.kb, user)
        t0 = time.perf_counter()
        _, trace = bot.ranker.rank(text, state, history, profile, depth=depth)
        ms.append(1000 * (time.perf_counter() - t0))
        sizes.append(len(trace["ranked"]))
    return ms, sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--llm-queries", type=int, default=5, help="requests timed with the real LLM score (slow on CPU)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ranker.json"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    kb = load_kb("kb")
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=tmp)
        bot = Chatbot(settings, llm=FakeLLM(), kb=kb)
        reqs = requests(kb, args.queries)
        time_rank(bot, reqs[:2])  # warm-up: first Chroma query, embedder
        fusion_ms, sizes = time_rank(bot, reqs)

        # requests with 50 allowed candidates, timed with the real model scoring all of them
        full = [r for r, n in zip(reqs, sizes) if n >= 50][: args.llm_queries]
        llm_settings = load_settings(data_dir=tmp, ranking={"w_llm": 0.5, "llm_candidates": 50})
        llm_bot = Chatbot(llm_settings, kb=kb, index=bot.index)
        time_rank(llm_bot, full[:1])  # warm-up
        llm_ms, _ = time_rank(llm_bot, full)
        shared_score = llm_bot.llm.score_choices
        llm_bot.llm.score_choices = functools.partial(shared_score, share_prefix=False)
        llm_full_ms, _ = time_rank(llm_bot, full)
        llm_bot.llm.score_choices = shared_score
        fusion_same, _ = time_rank(bot, full)

        lists = {}
        for user in USERS:
            res = bot.planner.plan(TurnInput(QUESTION, DialogueState(), user))
            lists[user] = {
                "profile": profile_text(kb, user),
                "items": [
                    {
                        "item_id": r.item_id,
                        "title": r.title,
                        "reason": r.reason,
                        "kg_paths": r.evidence.kg_paths,
                        "history_items": r.evidence.history_items,
                    }
                    for r in res.recs
                ],
            }
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "command": "python " + " ".join(sys.argv),
        "candidates_ranked": {"min": min(sizes), "max": max(sizes)},
        "fusion_ms": {
            "n": len(fusion_ms),
            "p50": round(percentile(fusion_ms, 0.5), 1),
            "p95": round(percentile(fusion_ms, 0.95), 1),
        },
        "same_requests": {
            "n": len(llm_ms),
            "fusion_ms_p50": round(percentile(fusion_same, 0.5), 1),
            "fusion_plus_llm_ms_p50": round(percentile(llm_ms, 0.5), 1),
            "fusion_plus_llm_ms_p95": round(percentile(llm_ms, 0.95), 1),
            "fusion_plus_llm_full_prompts_ms_p50": round(percentile(llm_full_ms, 0.5), 1),
            "fusion_plus_llm_full_prompts_ms_p95": round(percentile(llm_full_ms, 0.95), 1),
            "prefix_cache_speedup_p50": round(percentile(llm_full_ms, 0.5) / percentile(llm_ms, 0.5), 2),
            "llm_scored_candidates": 50,
        },
        "question": QUESTION,
        "two_users": lists,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
