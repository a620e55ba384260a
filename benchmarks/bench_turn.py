"""Turn latency on the embedded default: cold start, time to first token, p50/p95, peak RSS.

    python benchmarks/bench_turn.py [--turns 24] [--out benchmarks/results/turn.json]

Runs the real pipeline (SmolLM2-135M in 4-bit NF4, MiniLM, Chroma, KG, SQLite)
over a scripted set of conversations, in a fresh state folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import percentile

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = [
    (
        "U001",
        [
            "Hi, how do I return my headphones?",
            "Can you recommend a case for my Pixel 8?",
            "not that brand",
            "anything under $20?",
        ],
    ),
    ("U002", ["Where is my order #VW-88213?", "I need wireless earbuds for running under $100", "thanks!"]),
    ("U003", ["What payment methods do you accept?", "looking for a gift for a gamer", "something cheaper"]),
    (None, ["How long does shipping take?", "recommend a power bank for travel", "do you price match?"]),
    ("U004", ["my screen arrived cracked, what can I do?", "suggest a screen protector for my iPhone 15"]),
    ("U005", ["I want to talk to a human", "can I change my shipping address?", "show me a good mouse for work"]),
    ("U006", ["how do I reset my password", "what warranty do your laptops have?", "recommend a laptop bag"]),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=24)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "turn.json"))
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from chatrec.config import apply_offline_env, load_settings

    apply_offline_env()
    t0 = time.perf_counter()
    from chatrec.chatbot import Chatbot, ResultEvent, TokenEvent

    with tempfile.TemporaryDirectory() as state:
        settings = load_settings(kb_dir=str(ROOT / "kb"), data_dir=state)
        bot = Chatbot(settings)
        cold = time.perf_counter() - t0
        rss_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lat, ttft, tokens, fallbacks, routes = [], [], [], 0, {}
        done = 0
        while done < args.turns:
            for user, turns in SCRIPT:
                cid = bot.store.new_conversation(user)
                for msg in turns:
                    if done >= args.turns:
                        break
                    start = time.perf_counter()
                    first = None
                    for ev in bot.stream(msg, cid, user):
                        if isinstance(ev, TokenEvent) and first is None:
                            first = time.perf_counter() - start
                        elif isinstance(ev, ResultEvent):
                            r = ev.result
                    lat.append(time.perf_counter() - start)
                    ttft.append(first if first is not None else lat[-1])
                    tokens.append(r.trace["generation"]["tokens"])
                    fallbacks += bool(r.trace["grounding"]["fallback"])
                    routes[r.route] = routes.get(r.route, 0) + 1
                    done += 1
        total_gen = sum(tokens)
        result = {
            "benchmark": "turn",
            "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, {platform.python_version()}",
            "model": bot.llm.name,
            "quantization": settings.llm.quantization,
            "turns": len(lat),
            "cold_start_s": round(cold, 2),
            "ttft_s": {"p50": round(statistics.median(ttft), 3), "p95": round(percentile(ttft, 0.95), 3)},
            "turn_latency_s": {
                "p50": round(statistics.median(lat), 3),
                "p95": round(percentile(lat, 0.95), 3),
                "mean": round(statistics.mean(lat), 3),
            },
            "tokens_generated_mean": round(total_gen / len(lat), 1),
            "decode_tokens_per_s_overall": round(total_gen / sum(lat), 1),
            "template_fallback_share": round(fallbacks / len(lat), 3),
            "routes": routes,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_after_load_mb": round(rss_after_load, 1),
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
