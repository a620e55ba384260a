"""Engines side by side on the project's real turn prompt: transformers NF4 vs llama.cpp (xllamacpp).

    python benchmarks/bench_engines.py [--rounds 3] [--max-new-tokens 64] [--out benchmarks/results/engines.json]

Builds real turn prompts with the demo KB (``build_planner`` + ``Planner.plan``, as a live
turn does: a service question and a recommendation request), loads both backends in this
process, and runs interleaved rounds: in each round every (engine, threads) pair streams
every prompt once, so both engines see the same machine load. Threads 1 and 2 each:
torch's intra-op threads are switched before each run (generation runs on the backend's
worker thread); llama.cpp gets one instance per thread count. Greedy decoding, the same
``max_new_tokens`` for all. llama.cpp runs with its prompt cache off
(``LlamaCppLLM(prompt_cache=False)``), so, like the NF4 path, every run reads its whole prompt.

Measured per run: time to first token (from the call to the first text piece), decode
tokens/s (tokens after the first over the time after the first piece), prompt tokens.
Writes the JSON and a Markdown table beside it, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = ["What is your return policy for headphones?", "Can you recommend a case for my Pixel 8 under $30?"]


def turn_prompts(settings) -> list:
    from chatrec.chatbot import build_planner
    from chatrec.turn.plan import TurnInput
    from chatrec.turn.state import DialogueState

    planner = build_planner(settings)
    return [planner.plan(TurnInput(text=m, state=DialogueState(), user_id="U001")).messages for m in MESSAGES]


def run_once(llm, messages, max_new_tokens: int) -> dict:
    start = time.perf_counter()
    first = None
    pieces = []
    for piece in llm.stream(messages, max_new_tokens, threading.Event()):
        if first is None:
            first = time.perf_counter()
        pieces.append(piece)
    end = time.perf_counter()
    text = "".join(pieces)
    generated = llm.count_tokens(text) if text else 0
    ttft = (first or end) - start
    decode = (generated - 1) / (end - first) if first is not None and generated > 1 and end > first else 0.0
    return {"ttft_s": ttft, "decode_tok_s": decode, "generated_tokens": generated, "text": text}


def prompt_tokens(name: str, llm, messages) -> int:
    if name == "transformers":
        return int(llm._encode(messages)["input_ids"].shape[-1])
    return len(llm._prompt_ids(messages))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "engines.json"))
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]

    sys.path.insert(0, str(ROOT))
    from chatrec.config import apply_offline_env, load_settings

    apply_offline_env()
    load_before = os.getloadavg()
    import torch

    from chatrec.llm.llamacpp_backend import LlamaCppLLM
    from chatrec.llm.transformers_backend import TransformersLLM

    with tempfile.TemporaryDirectory() as state:
        settings = load_settings(kb_dir=str(ROOT / "kb"), data_dir=state)
        t0 = time.perf_counter()
        prompts = turn_prompts(settings)
        plan_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        nf4 = TransformersLLM(settings.llm, settings.cache_dir)
        load_nf4 = time.perf_counter() - t0
        engines: dict[tuple[str, int], Any] = {}
        load_llama = {}
        for n in threads:
            t0 = time.perf_counter()
            engines[("llamacpp", n)] = LlamaCppLLM(settings.llm.model_copy(update={"threads": n}), prompt_cache=False)
            load_llama[n] = time.perf_counter() - t0
            engines[("transformers", n)] = nf4
        ptoks = {
            name: [prompt_tokens(name, engines[(name, threads[0])], p) for p in prompts]
            for name in ("transformers", "llamacpp")
        }
        runs: list[dict] = []
        order = [(name, n) for n in threads for name in ("transformers", "llamacpp")]
        for r in range(args.rounds):
            for name, n in order if r % 2 == 0 else order[::-1]:
                for i, messages in enumerate(prompts):
                    if name == "transformers":
                        torch.set_num_threads(n)
                    got = run_once(engines[(name, n)], messages, args.max_new_tokens)
                    got.update(round=r, engine=name, threads=n, prompt=i, prompt_tokens=ptoks[name][i])
                    runs.append(got)
                    print(
                        f"round {r} {name:12s} threads={n} prompt={i} ttft={got['ttft_s']:.2f}s "
                        f"decode={got['decode_tok_s']:.1f} tok/s tokens={got['generated_tokens']}",
                        flush=True,
                    )
        load_after = os.getloadavg()

    summary = {}
    for name, n in order:
        mine = [x for x in runs if x["engine"] == name and x["threads"] == n]
        summary[f"{name}/t{n}"] = {
            "ttft_s_median": round(statistics.median(x["ttft_s"] for x in mine), 3),
            "decode_tok_s_median": round(statistics.median(x["decode_tok_s"] for x in mine), 1),
            "generated_tokens_mean": round(statistics.mean(x["generated_tokens"] for x in mine), 1),
            "runs": len(mine),
        }
    ratios = {
        f"t{n}": {
            "decode_llamacpp_over_nf4": round(
                summary[f"llamacpp/t{n}"]["decode_tok_s_median"]
                / max(summary[f"transformers/t{n}"]["decode_tok_s_median"], 1e-9),
                2,
            ),
            "ttft_llamacpp_over_nf4": round(
                summary[f"llamacpp/t{n}"]["ttft_s_median"] / max(summary[f"transformers/t{n}"]["ttft_s_median"], 1e-9),
                2,
            ),
        }
        for n in threads
    }
    result = {
        "benchmark": "engines",
        "command": "python benchmarks/bench_engines.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "engines": {
            "transformers": f"{nf4.name} (NF4, bitsandbytes)",
            "llamacpp": f"{engines[('llamacpp', threads[0])].name} (packaged Q4_1 GGUF, xllamacpp prebuilt wheel)",
        },
        "messages": MESSAGES,
        "prompt_tokens": ptoks,
        "max_new_tokens": args.max_new_tokens,
        "rounds": args.rounds,
        "load_s": {
            "plan_setup": round(plan_s, 1),
            "transformers": round(load_nf4, 1),
            "llamacpp": {f"t{n}": round(v, 1) for n, v in load_llama.items()},
        },
        "summary": summary,
        "ratios": ratios,
        "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in x.items() if k != "text"} for x in runs],
        "first_replies": {
            f"{x['engine']}/prompt{x['prompt']}": x["text"]
            for x in runs
            if x["round"] == 0 and x["threads"] == threads[0]
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result, threads))
    print(out.with_suffix(".md").read_text())


def markdown(r: dict, threads: list[int]) -> str:
    lines = [
        "# Engines on the real turn prompt (interleaved, one run)",
        "",
        f"`{r['command']}` on {r['machine']}; load average before {r['load_average_before']}, "
        f"after {r['load_average_after']} (shared machine). {r['rounds']} rounds x {len(r['messages'])} prompts "
        f"per engine and thread count, greedy, max {r['max_new_tokens']} new tokens. Prompt tokens: "
        f"transformers {r['prompt_tokens']['transformers']}, llamacpp {r['prompt_tokens']['llamacpp']}.",
        "",
        "| threads | NF4 TTFT s | llama.cpp TTFT s | TTFT ratio (llama/NF4) | NF4 decode tok/s | "
        "llama.cpp decode tok/s | decode ratio (llama/NF4) |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in threads:
        a, b, q = r["summary"][f"transformers/t{n}"], r["summary"][f"llamacpp/t{n}"], r["ratios"][f"t{n}"]
        lines.append(
            f"| {n} | {a['ttft_s_median']} | {b['ttft_s_median']} | {q['ttft_llamacpp_over_nf4']} | "
            f"{a['decode_tok_s_median']} | {b['decode_tok_s_median']} | {q['decode_llamacpp_over_nf4']} |"
        )
    lines += ["", f"Medians over runs; load times (s): {r['load_s']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
