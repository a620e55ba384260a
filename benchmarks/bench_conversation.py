"""The demo's scripted 24-turn conversation through the real Chatbot, engine by engine.

    python benchmarks/bench_conversation.py [--rounds 3] [--engines nf4,nf4-cache,llamacpp,llamacpp-nocache]
    python benchmarks/bench_conversation.py --prompts-only    # prompt structure only (fake model, seconds)

One conversation of 24 customer messages (service questions, recommendations, refinements,
a like, a hand-off) for the demo user U001, through ``Chatbot.stream`` on the demo KB, as a
live chat runs it (planner, generation, grounding, SQLite). Engines:

- ``nf4``: transformers + bitsandbytes NF4, prefix cache off (``llm.prefix_cache_entries = 0``:
  reads every prompt in full);
- ``nf4-cache``: the same with its prefix KV cache (the backend's default, 8 entries): a turn reads
  only the tokens after the longest prefix it shares with an earlier prompt + reply;
- ``llamacpp``: llama.cpp (xllamacpp), prompt cache on: a slot reuses the longest prefix it holds;
- ``llamacpp-nocache``: llama.cpp reading every prompt in full (``LlamaCppLLM(prompt_cache=False)``).

Rounds are interleaved: in each round every engine runs the whole conversation once, in a
fresh conversation, so all see the same machine load. Per turn: latency (message in ->
result), time to first released text and to the model's first token, prompt tokens (the
chat-templated prompt), prompt tokens the engine actually read (llama.cpp's
``timings.prompt_n``; NF4: the tokens past its prefix cache, ``TransformersLLM.last_usage()``), and
tokens generated (at most ``llm.max_new_tokens``; the grounding gate may stop a draft early).
The load average is recorded before the run and after every round.

``--prompts-only`` runs the conversation with the scripted fake model and reports, per turn,
the prompt's tokens under the GGUF chat template and how many of them are new after the
longest prefix shared with the previous turn's prompt (what an ideal prefix cache reads).
Writes JSON and a Markdown table to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import percentile

ROOT = Path(__file__).resolve().parent.parent
USER = "U001"
SCRIPT = [
    "Hi, how do I return my headphones?",
    "Can you recommend a case for my Pixel 8?",
    "not that brand",
    "anything under $20?",
    "Where is my order #VW-88213?",
    "I need wireless earbuds for running under $100",
    "thanks!",
    "What payment methods do you accept?",
    "looking for a gift for a gamer",
    "something cheaper",
    "How long does shipping take?",
    "recommend a power bank for travel",
    "do you price match?",
    "my screen arrived cracked, what can I do?",
    "suggest a screen protector for my iPhone 15",
    "can I change my shipping address?",
    "show me a good mouse for work",
    "how do I reset my password",
    "what warranty do your laptops have?",
    "recommend a laptop bag",
    "I like the second one",
    "anything cheaper?",
    "I want to talk to a human",
    "thanks, bye",
]
assert len(SCRIPT) == 24


def _settings(state: str, engine: str, threads: int | None):
    from chatrec.config import load_settings

    backend = {"nf4": "transformers", "nf4-cache": "transformers", "fake": "fake"}.get(engine, "llamacpp")
    llm: dict[str, Any] = {"backend": backend}
    if threads:
        llm["threads"] = threads
    if engine == "nf4":
        llm["prefix_cache_entries"] = 0  # reads every prompt in full
    return load_settings(kb_dir=str(ROOT / "kb"), data_dir=state, llm=llm)


def _bot(engine: str, state: str, threads: int | None, index=None):
    from chatrec.chatbot import Chatbot

    settings = _settings(state, engine, threads)
    llm = None
    if engine == "llamacpp-nocache":
        from chatrec.llm.llamacpp_backend import LlamaCppLLM

        llm = LlamaCppLLM(settings.llm, prompt_cache=False)
    return Chatbot(settings, llm=llm, index=index)


def run_conversation(bot) -> list[dict]:
    from chatrec.chatbot import ResultEvent, TokenEvent

    cid = bot.store.new_conversation(USER)
    turns = []
    for msg in SCRIPT:
        start = time.perf_counter()
        first = None
        for ev in bot.stream(msg, cid, USER):
            if isinstance(ev, TokenEvent) and first is None:
                first = time.perf_counter() - start
            elif isinstance(ev, ResultEvent):
                r = ev.result
        lat = time.perf_counter() - start
        gen = r.trace.get("generation", {})
        called = bool(gen.get("tokens") or gen.get("ttft_s"))  # the model ran (not a decided template turn)
        turns.append(
            {
                "latency_s": round(lat, 3),
                "first_text_s": round(first if first is not None else lat, 3),
                "ttft_s": gen.get("ttft_s"),
                "prompt_tokens": gen.get("prompt_tokens", r.trace.get("prompt_tokens")),
                # NF4 reads the whole prompt; a turn the model did not run for reads nothing
                "prompt_read": gen.get("prompt_read", r.trace.get("prompt_tokens")) if called else 0,
                "tokens": gen.get("tokens"),
                "route": r.route,
                "fallback": bool(r.trace.get("grounding", {}).get("fallback")),
            }
        )
    return turns


def _stats(xs: list[float]) -> dict:
    xs = [x for x in xs if x is not None]
    if not xs:
        return {}
    return {
        "p50": round(statistics.median(xs), 3),
        "p95": round(percentile(xs, 0.95), 3),
        "mean": round(statistics.mean(xs), 3),
    }


def prompts_only(out: Path, state_dir: str | None) -> None:
    """Prompt structure with the fake model: tokens per turn and tokens past the shared prefix."""
    from transformers import AutoTokenizer

    from chatrec.chatbot import Chatbot
    from chatrec.config import EMBEDDED_LLM
    from chatrec.llm.fake import FakeLLM
    from chatrec.llm.llamacpp_backend import gguf_model

    gguf = gguf_model(EMBEDDED_LLM)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    with tempfile.TemporaryDirectory() as tmp:
        state = state_dir or tmp
        llm = FakeLLM()
        bot = Chatbot(_settings(state, "fake", None), llm=llm)
        run_conversation(bot)
        prev: list[int] = []
        rows = []
        for msgs in llm.calls:
            text = tok.apply_chat_template(
                [{"role": m["role"], "content": m["content"]} for m in msgs], add_generation_prompt=True, tokenize=False
            )
            ids = tok(text, add_special_tokens=False)["input_ids"]
            shared = 0
            for a, b in zip(prev, ids):
                if a != b:
                    break
                shared += 1
            rows.append({"prompt_tokens": len(ids), "shared_with_previous": shared, "new": len(ids) - shared})
            prev = ids
    result = {
        "benchmark": "conversation_prompts",
        "turns": len(rows),
        "prompt_tokens": _stats([r["prompt_tokens"] for r in rows]),
        "new_tokens_with_prefix_cache": _stats([r["new"] for r in rows]),
        "sum_prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "sum_new_tokens": sum(r["new"] for r in rows),
        "per_turn": rows,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "per_turn"}, indent=2))
    print("new per turn:", [r["new"] for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--engines", default="nf4,nf4-cache,llamacpp,llamacpp-nocache")
    ap.add_argument("--threads", type=int, default=1, help="torch / llama.cpp threads (0: library default)")
    ap.add_argument("--prompts-only", action="store_true")
    ap.add_argument("--state", default=None, help="state folder (kept: its Chroma index is reused next time)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--summarise", default=None, help="only rewrite the summary of this result file's runs")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from chatrec.config import apply_offline_env

    apply_offline_env()
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    if args.prompts_only:
        prompts_only(Path(args.out or results / "conversation_prompts.json"), args.state)
        return

    if args.summarise:
        old = json.loads(Path(args.summarise).read_text())
        for run in (r for runs in old["runs"].values() for r in runs):
            for t in run:  # runs written before the fix: a turn the model did not run for read nothing
                if not t["ttft_s"] and not t["tokens"]:
                    t["prompt_read"] = 0
        args.command = old["command"]
        args.max_new_tokens = old.get("max_new_tokens")
        names = {e: s["backend"] for e, s in old["engines"].items()}
        write(
            args,
            names,
            old["runs"],
            old["load_average_before"],
            old["rounds"],
            old["load_average_after"],
            old.get("load_average_per_round"),
        )
        return

    engines = args.engines.split(",")
    load_before = os.getloadavg()
    state = args.state or tempfile.mkdtemp(prefix="chatrec-conv-")
    bots: dict[str, Any] = {}
    index = None
    for e in engines:
        bots[e] = _bot(e, state, args.threads or None, index)
        index = bots[e].planner.retriever  # one Chroma index for all (built once)
    args.max_new_tokens = bots[engines[0]].settings.llm.max_new_tokens
    runs: dict[str, list[list[dict]]] = {e: [] for e in engines}
    per_round: list[list[float]] = []
    for rnd in range(args.rounds):
        for e in engines:
            t = time.perf_counter()
            runs[e].append(run_conversation(bots[e]))
            print(f"round {rnd + 1} {e}: {time.perf_counter() - t:.1f} s", flush=True)
        per_round.append([round(x, 2) for x in os.getloadavg()])
        names = {e: bots[e].llm.name for e in engines}
        # after every round: a cut-short run still reports
        write(args, names, runs, load_before, rnd + 1, per_round=per_round)


def write(
    args,
    names: dict[str, str],
    runs: dict[str, list[list[dict]]],
    load_before,
    rounds: int,
    load_after=None,
    per_round: list[list[float]] | None = None,
):
    engines = list(runs)
    results = ROOT / "benchmarks" / "results"
    load_after = load_after or os.getloadavg()
    summary: dict[str, Any] = {}
    for e in engines:
        turns = [t for run in runs[e] for t in run]
        summary[e] = {
            "backend": names[e],
            "turns": len(turns),
            "turn_latency_s": _stats([t["latency_s"] for t in turns]),
            "first_text_s": _stats([t["first_text_s"] for t in turns]),
            "ttft_s": _stats([t["ttft_s"] for t in turns if t["ttft_s"]]),  # turns the model ran
            "prompt_tokens": _stats([t["prompt_tokens"] for t in turns]),
            "prompt_read": _stats([t["prompt_read"] for t in turns if t["prompt_read"]]),  # turns the model ran
            "tokens_generated": _stats([t["tokens"] for t in turns if t["tokens"]]),  # turns the model ran
            "fallback_share": round(sum(t["fallback"] for t in turns) / len(turns), 3),
            "prompt_read_per_turn_round1": [t["prompt_read"] for t in runs[e][0]],
            "tokens_generated_per_turn_round1": [t["tokens"] or 0 for t in runs[e][0]],
        }
    result = {
        "benchmark": "conversation",
        "command": getattr(args, "command", None)
        or "python benchmarks/bench_conversation.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "threads": args.threads,
        "max_new_tokens": getattr(args, "max_new_tokens", None),
        "rounds": rounds,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "load_average_per_round": per_round or [],
        "engines": summary,
        "runs": runs,
    }
    out = Path(args.out or results / "conversation.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# 24-turn scripted conversation (`benchmarks/bench_conversation.py`)",
        "",
        f"`{result['command']}`; {result['machine']}; threads {args.threads}; {rounds} interleaved rounds; "
        f"max_new_tokens {result['max_new_tokens']}; load average (1 min) {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after"
        + (f", after each round {[r[0] for r in per_round]}" if per_round else "")
        + " (shared machine).",
        "",
        "| engine | turn p50 s | turn p95 s | first text p50 s | TTFT p50 s | TTFT p95 s | prompt tok p50 "
        "| prompt tok read p50 | read mean | tokens generated p50 | generated mean | fallback |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e, s in summary.items():
        lines.append(
            f"| {e} | {s['turn_latency_s']['p50']} | {s['turn_latency_s']['p95']} | {s['first_text_s']['p50']} "
            f"| {s['ttft_s'].get('p50')} | {s['ttft_s'].get('p95')} | {s['prompt_tokens'].get('p50')} "
            f"| {s['prompt_read'].get('p50')} | {s['prompt_read'].get('mean')} "
            f"| {s['tokens_generated'].get('p50')} | {s['tokens_generated'].get('mean')} | {s['fallback_share']} |"
        )
    lines += ["", "Prompt tokens read per turn (round 1):", ""]
    for e, s in summary.items():
        lines.append(f"- {e}: {s['prompt_read_per_turn_round1']}")
    lines += ["", "Tokens generated per turn (round 1; 0: the model did not run):", ""]
    for e, s in summary.items():
        lines.append(f"- {e}: {s.get('tokens_generated_per_turn_round1', [])}")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
