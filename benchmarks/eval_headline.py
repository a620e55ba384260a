"""Keep the headline of a `chatrec eval` run as a small results file.

A run folder holds hundreds of MB of per-turn rows; `benchmarks/results/` keeps only what
the docs quote: the run's header, the headline metrics of every system with their 95%
intervals, and optionally paired comparisons (`chatrec eval compare`) between systems.

    python benchmarks/eval_headline.py /tmp/runs/redial_llm \
        --command "CHATREC_RANKING__W_LLM=0.5 chatrec --kb /tmp/redial_kb eval ... --sample 120" \
        --compare full:-llm_rank --out benchmarks/results/redial_llm_rank_summary.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from chatrec.eval.summary import compare

METRICS = (
    "rec.recall@1",
    "rec.recall@5",
    "rec.recall@10",
    "rec.recall@50",
    "rec_new.recall@1",
    "rec_new.recall@5",
    "rec_new.recall@10",
    "rec_new.recall@50",
    "rec.ndcg@10",
    "rec.mrr@10",
    "rec.coverage",
    "rec.diversity",
    "rec.inter_user_dissimilarity",
    "grounding.invalid_rec_rate",
    "grounding.unlisted_citation_rate",
    "grounding.draft_pass_rate",
    "service.template_acc",
    "service.intent_acc",
    "service.rouge_l",
    "service.cosine",
    "cost.latency_p50_s",
    "cost.latency_p95_s",
)
RUN_FIELDS = ("transcripts", "kb", "adapter", "seed", "wall_s", "conversations", "turns", "skipped", "fusion")


def headline(run_dir: Path, command: str, pairs: list[str]) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    run = {k: summary["run"][k] for k in RUN_FIELDS if k in summary["run"]}
    run["skipped"] = len(run.get("skipped", []))
    run["options"] = {k: v for k, v in summary["run"].get("options", {}).items() if k not in ("out", "transcripts")}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out = {
        "summarised_on": f"{platform.machine()}, {cores} CPU cores, Python {platform.python_version()}",
        "command": command,
        "run": run,
        "systems": {},
    }
    for name, system in summary["systems"].items():
        metrics = system.get("metrics", system)
        out["systems"][name] = {k: metrics[k] for k in METRICS if k in metrics}
    comparisons = {}
    for pair in pairs:
        a, _, b = pair.partition(":")
        if not a or not b or {a, b} - set(summary["systems"]):
            raise SystemExit(f"--compare {pair}: give A:B, two of {', '.join(summary['systems'])}")
        res = compare(f"{run_dir}:{a}", f"{run_dir}:{b}", seed=summary["run"].get("seed", 7))
        comparisons[f"{a} - {b}"] = {
            "conversations": res["conversations"],
            "metrics": {k: v for k, v in res["metrics"].items() if k in METRICS},
        }
    if comparisons:
        out["paired"] = comparisons
    return out


def markdown(result: dict, metrics: list[str]) -> str:
    """A table, one row per system: value [95% interval] of each metric."""

    def cell(m: dict | None) -> str:
        if not m:
            return "-"
        ci = f" [{m['ci_low']:.3f}, {m['ci_high']:.3f}]" if m.get("ci_low") is not None else ""
        return f"{m['value']:.3f}{ci}"

    rows = [f"| system | {' | '.join(metrics)} |", "|---" * (len(metrics) + 1) + "|"]
    rows += [f"| {name} | {' | '.join(cell(ms.get(k)) for k in metrics)} |" for name, ms in result["systems"].items()]
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the eval run's --out folder")
    ap.add_argument("--command", required=True, help="the command that made the run (recorded)")
    ap.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="A:B",
        help="paired difference of system A minus system B, as `chatrec eval compare` gives it "
        "(repeatable; write --compare=-kg:full when A starts with '-')",
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--table",
        default="rec.recall@1,rec.recall@10,rec.recall@50,rec_new.recall@10",
        help="comma-separated metrics of the markdown table printed at the end",
    )
    args = ap.parse_args()
    result = headline(args.run, args.command, args.compare)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result, args.table.split(",")))


if __name__ == "__main__":
    main()
