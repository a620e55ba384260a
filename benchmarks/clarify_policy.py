"""How the ask-before-guessing policy ([clarify], chatrec/turn/clarify.py) compares with the
logged agents, on the demo KB's conversations.

Every logged agent turn is planned as the live chat plans it (the same replay training and
evaluation use); the policy "asks" when the plan asks a clarifying question. The logged agent
"asks" when it answered with a template that asks for the order number, or with a free text
ending in a question. Reported: the confusion counts, precision and recall of asking against
the logged agents, per kind, and for recommendation turns the policy would have asked on, how
often the logged agent's guessed list was accepted (a guess that worked).

    .venv/bin/python benchmarks/clarify_policy.py [--out benchmarks/results/clarify_policy.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from chatrec.chatbot import build_planner
from chatrec.config import load_settings
from chatrec.kb import load_kb
from chatrec.turn.clarify import asks_order_number
from chatrec.turn.replay import replay


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results/clarify_policy.json")
    args = ap.parse_args()
    settings = load_settings()
    kb = load_kb(settings.kb_dir)
    planner = build_planner(settings, kb=kb)
    t0 = time.perf_counter()
    counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    guessed_ok: Counter[str] = Counter()
    examples: list[dict[str, str]] = []
    for conv in kb.transcripts:
        for step in replay(conv, planner):
            if not step.input.text:
                continue
            plan = planner.plan(step.input)
            step.continue_with(plan.state)
            asks = plan.trace.get("route", {}).get("final", {}).get("asks")
            tpl = kb.templates.get(step.agent.template_id or "")
            logged = bool(tpl and asks_order_number(tpl.text)) or (
                tpl is None and step.agent.text.rstrip().endswith("?")
            )
            counts[f"policy_{'asks' if asks else 'answers'}_logged_{'asks' if logged else 'answers'}"] += 1
            if asks:
                kinds[asks] += 1
                if step.agent.recommended:
                    guessed_ok[f"{asks}_guess_accepted" if step.agent.accepted else f"{asks}_guess_not_accepted"] += 1
                if len(examples) < 12:
                    examples.append({"message": step.input.text, "asks": asks, "logged": step.agent.text[:120]})
    tp = counts["policy_asks_logged_asks"]
    fp = counts["policy_asks_logged_answers"]
    fn = counts["policy_answers_logged_asks"]
    result = {
        "turns": sum(counts.values()),
        "counts": dict(counts),
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "asks_by_kind": dict(kinds),
        "recommendation_turns_asked_where_the_logged_guess_was": dict(guessed_ok),
        "examples": examples,
        "settings": settings.clarify.model_dump(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "examples"}, indent=2))


if __name__ == "__main__":
    main()
