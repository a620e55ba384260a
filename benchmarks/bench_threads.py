"""torch threads 1 vs 2, on the main thread vs a worker thread: NF4 decode and a QLoRA training step.

    python benchmarks/bench_threads.py [--rounds 3] [--tokens 32] [--seq 450] [--out benchmarks/results/threads.json]

Issue 14 item 5: torch work on a process's main thread with torch's default threads (2 on
this machine) was seen to run 5 to 15 times slower than with 1 thread or on a worker
thread while other work shared the 2 cores. This script measures it in one process, in
interleaved rounds, so every condition sees the same machine load:

- conditions: ``torch.set_num_threads(n)`` for n in ``--threads`` (called on the main
  thread, as an entry point does), then the work runs either on the main thread or on a
  fresh ``threading.Thread`` (as the transformers backend's ``stream`` does); the threads
  torch reports inside the running thread are recorded too;
- **decode**: the embedded SmolLM2 in 4-bit NF4 (``load_model``, as served), greedy, a
  ~100-token chat prompt, ``--tokens`` new tokens; decode tok/s is timed from the first to
  the last generated token (a logits processor stamps every step), so the prompt read is
  left out; the whole call's time is recorded as well;
- **QLoRA step**: the same NF4 base with a peft LoRA of the training defaults (rank 16,
  alpha 32, all attention and MLP projections), AdamW, one example of ``--seq`` tokens
  (``chatrec train``'s ~450-token examples), forward + backward + optimiser step, as
  ``chatrec train`` does per step at batch 1.

Each round runs every condition once (decode, then two training steps; the first step of
a round is reported separately as it warms the optimiser state only in round 0). The load
average is recorded before and after each round. Results: ``--out`` (JSON) and a
Markdown table beside it. The rule chatrec applies (``chatrec/llm/threads.py``) is chosen
from these figures; docs/engines.md, "Threads".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
PROMPT = [
    {"role": "system", "content": "You are the customer-service assistant of an electronics shop. Answer briefly."},
    {
        "role": "user",
        "content": "Hi, I bought a Pixel 8 last week and the case I ordered with it does not fit. "
        "Can I return the case and get one that fits, and how long would a refund take?",
    },
]


def on_thread(place: str, fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn`` on the main thread or a fresh worker thread; return its result and the torch
    threads it saw."""
    import torch

    if place == "main":
        return fn(), torch.get_num_threads()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["threads"] = torch.get_num_threads()
            box["out"] = fn()
        except BaseException as exc:  # surfaced below
            box["error"] = exc

    t = threading.Thread(target=run, name="bench-worker")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["out"], box["threads"]


def decode_run(model, ids, tokens: int) -> dict[str, float]:
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    stamps: list[float] = []

    class Stamp(LogitsProcessor):
        def __call__(self, input_ids, scores):
            stamps.append(time.perf_counter())
            return scores

    t0 = time.perf_counter()
    with torch.inference_mode():
        model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            repetition_penalty=1.15,
            logits_processor=LogitsProcessorList([Stamp()]),
        )
    total = time.perf_counter() - t0
    # stamps[i] = when token i's logits were ready; tokens 1..n-1 took stamps[-1] - stamps[0]
    decode = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return {"decode_tok_s": decode, "prompt_s": stamps[0] - t0 if stamps else total, "total_s": total}


def train_step(model, opt, batch) -> float:
    t0 = time.perf_counter()
    model.train()
    loss = model(**batch).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--tokens", type=int, default=32, help="new tokens per decode run")
    ap.add_argument("--seq", type=int, default=450, help="tokens per training example")
    ap.add_argument("--steps", type=int, default=2, help="training steps per condition and round")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "threads.json"))
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]

    sys.path.insert(0, str(ROOT))
    from chatrec.config import apply_offline_env, load_settings

    apply_offline_env()
    import torch
    from peft import LoraConfig, get_peft_model

    from chatrec.llm.transformers_backend import load_model

    default_threads = torch.get_num_threads()  # before anything sets it: torch's own choice
    settings = load_settings()
    model, tok = load_model(settings.llm, settings.cache_dir)
    ids = tok.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)[
        "input_ids"
    ]
    trainee, _ = load_model(settings.llm, settings.cache_dir)
    cfg = settings.train
    trainee = get_peft_model(
        trainee,
        LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.target_modules,
            task_type="CAUSAL_LM",
        ),
    )
    opt = torch.optim.AdamW([p for p in trainee.parameters() if p.requires_grad], lr=cfg.learning_rate)
    text = " ".join(m["content"] for m in PROMPT)
    seq = tok(text * (args.seq // 20 + 1), return_tensors="pt")["input_ids"][:, : args.seq]
    batch = {"input_ids": seq, "attention_mask": torch.ones_like(seq), "labels": seq.clone()}

    conditions = [(n, place) for n in threads for place in ("main", "worker")]
    runs: list[dict[str, Any]] = []
    loads: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    for r in range(args.rounds):
        before = os.getloadavg()
        order = conditions if r % 2 == 0 else conditions[::-1]  # alternate the order between rounds
        for n, place in order:
            torch.set_num_threads(n)
            dec, seen = on_thread(place, lambda: decode_run(model, ids, args.tokens))
            steps, seen_t = on_thread(place, lambda: [train_step(trainee, opt, batch) for _ in range(args.steps)])
            row = {
                "round": r,
                "threads": n,
                "place": place,
                "torch_threads_seen": seen,
                "torch_threads_seen_train": seen_t,
                **dec,
                "step_s": steps,
            }
            runs.append(row)
            print(
                f"round {r} threads={n} {place:6s} (torch sees {seen}) decode {dec['decode_tok_s']:.1f} tok/s "
                f"(call {dec['total_s']:.2f} s)  QLoRA step {' '.join(f'{s:.2f}' for s in steps)} s",
                flush=True,
            )
        loads.append({"round": r, "loadavg_before": before, "loadavg_after": os.getloadavg()})
        print(f"  load average before {before[0]:.2f}, after {os.getloadavg()[0]:.2f}", flush=True)
        # written after every round: a run stopped early keeps its finished rounds
        write(args, runs, loads, conditions, default_threads, int(ids.shape[-1]), t_start)


def write(args, runs, loads, conditions, default_threads: int, prompt_tokens: int, t_start: float) -> None:
    import torch

    summary = []
    for n, place in conditions:
        mine = [x for x in runs if x["threads"] == n and x["place"] == place]
        if not mine:
            continue
        steps = [s for x in mine for s in x["step_s"][1:]] or [s for x in mine for s in x["step_s"]]
        summary.append(
            {
                "threads": n,
                "place": place,
                "torch_threads_seen": sorted({x["torch_threads_seen"] for x in mine}),
                "decode_tok_s_median": round(statistics.median(x["decode_tok_s"] for x in mine), 2),
                "decode_tok_s_min": round(min(x["decode_tok_s"] for x in mine), 2),
                "decode_tok_s_max": round(max(x["decode_tok_s"] for x in mine), 2),
                "prompt_s_median": round(statistics.median(x["prompt_s"] for x in mine), 3),
                "step_s_median": round(statistics.median(steps), 2),
                "step_s_min": round(min(steps), 2),
                "step_s_max": round(max(steps), 2),
            }
        )
    result = {
        "command": "python benchmarks/bench_threads.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "torch_default_threads": default_threads,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        },
        "config": {
            "rounds": args.rounds,
            "tokens": args.tokens,
            "seq": args.seq,
            "steps_per_condition": args.steps,
            "prompt_tokens": prompt_tokens,
            "rounds_done": len(loads),
        },
        "load": loads,
        "summary": summary,
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    if len(loads) == args.rounds:
        print(markdown(result))


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# torch threads: main thread vs worker thread ({r['when']})",
        "",
        f"`{r['command']}`; {r['machine']['cpu_count']} CPUs, torch {r['machine']['torch']} "
        f"(default threads {r['machine']['torch_default_threads']}), {r['config']['rounds']} interleaved rounds, "
        f"wall {r['wall_s']} s. Load average (1 min) per round: "
        + ", ".join(f"{x['loadavg_before'][0]:.2f} -> {x['loadavg_after'][0]:.2f}" for x in r["load"])
        + " (a shared, busy machine).",
        "",
        "| torch threads | runs on | torch threads seen there | NF4 decode tok/s median [min, max] | "
        "QLoRA s/step median [min, max] |",
        "|---|---|---|---|---|",
    ]
    for s in r["summary"]:
        lines.append(
            f"| {s['threads']} | {s['place']} | {s['torch_threads_seen']} | {s['decode_tok_s_median']} "
            f"[{s['decode_tok_s_min']}, {s['decode_tok_s_max']}] | {s['step_s_median']} "
            f"[{s['step_s_min']}, {s['step_s_max']}] |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
