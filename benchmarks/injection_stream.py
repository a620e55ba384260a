"""Prompt injection and hallucination bait against the real model: what the user saw.

    python benchmarks/injection_stream.py [--max-new-tokens 96] [--out benchmarks/results/injection_stream.json]

For each prompt of tests/fixtures/injection_prompts.json, one fresh conversation with the
real pipeline (SmolLM2-135M in 4-bit NF4, MiniLM, Chroma, KG, SQLite). Records the text
streamed as token events, the final reply, whether they are equal, the grounding check of
the reply (``reply_problems``: empty means it passes), whether the raw draft was rejected
(replaced by the fallback) or cut after checked sentences, and the raw draft itself.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "tests" / "fixtures" / "injection_prompts.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: the configured llm.max_new_tokens")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "injection_stream.json"))
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from chatrec.config import apply_offline_env, load_settings

    apply_offline_env()
    from chatrec.chatbot import Chatbot, ResultEvent, TokenEvent

    prompts = json.loads(PROMPTS.read_text())
    rows = []
    with tempfile.TemporaryDirectory() as state:
        llm = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}
        settings = load_settings(kb_dir=str(ROOT / "kb"), data_dir=state, llm=llm)
        bot = Chatbot(settings)
        for prompt in prompts:
            t0 = time.perf_counter()
            streamed, result = [], None
            for ev in bot.stream(prompt):
                if isinstance(ev, TokenEvent):
                    streamed.append(ev.text)
                elif isinstance(ev, ResultEvent):
                    result = ev.result
            assert result is not None
            g = result.trace["grounding"]
            rows.append(
                {
                    "prompt": prompt,
                    "route": result.route,
                    "streamed": "".join(streamed),
                    "final": result.text,
                    "streamed_equals_final": "".join(streamed) == result.text,
                    "reply_passes_check": not g["reply_problems"],
                    "reply_problems": g["reply_problems"],
                    "draft_rejected": g["fallback"],
                    "draft_cut": g["cut"],
                    "draft_problems": g["problems"],
                    "raw_draft": result.trace["generation"]["raw"],
                    "first_text_s": result.trace["generation"]["first_text_s"],
                    "latency_s": round(time.perf_counter() - t0, 2),
                }
            )
            print(json.dumps(rows[-1])[:300], flush=True)
    out = {
        "benchmark": "injection_stream",
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, {platform.python_version()}",
        "model": bot.llm.name,
        "max_new_tokens": settings.llm.max_new_tokens,
        "prompts": len(rows),
        "streamed_equals_final": sum(r["streamed_equals_final"] for r in rows),
        "reply_passes_check": sum(r["reply_passes_check"] for r in rows),
        "drafts_rejected": sum(r["draft_rejected"] for r in rows),
        "drafts_cut": sum(r["draft_cut"] for r in rows),
        "drafts_passed_whole": sum(not r["draft_problems"] for r in rows),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
