"""``chatrec eval``: replay logged conversations and score the system, baselines and ablations;
``chatrec eval compare A B``: paired differences of two runs; ``chatrec fit-ranker``: learn fusion weights."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _table(summary: dict, metrics: list[str]) -> str:
    head = "| system | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 1)]
    for name, s in summary["systems"].items():
        cells = []
        for m in metrics:
            v = s["metrics"].get(m)
            if v is None:
                cells.append("–")
            elif v.get("ci_low") is None:
                cells.append(f"{v['value']:.3f}")
            else:
                cells.append(f"{v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def register(main: click.Group) -> None:
    @main.command(name="eval", context_settings={"ignore_unknown_options": False})
    @click.argument("args", nargs=-1, required=True)
    @click.option("--kb", "kb_dir", type=click.Path(file_okay=False), help="knowledge base of the transcripts")
    @click.option("--adapter", help="LoRA adapter folder or name (then -adapter is an ablation with --generate)")
    @click.option("--out", default="eval-out", show_default=True, type=click.Path(file_okay=False))
    @click.option("--ablate", default="kg,profile,llm_rank", show_default=True,
                  help="comma-separated parts to switch off one at a time: kg, profile, llm_rank, history, adapter")
    @click.option("--no-baselines", is_flag=True, help="skip popularity / repeat_last / embedding_only")
    @click.option("--split", type=click.Choice(["all", "heldout", "train"]), default="all", show_default=True,
                  help="which conversations (held-out = the 10%% hash split that training never sees)")
    @click.option("--limit", type=click.IntRange(min=1), help="first N conversations only")
    @click.option("--sample", type=click.IntRange(min=1), help="a seeded random sample of N conversations")
    @click.option("--seed", default=7, show_default=True, type=int)
    @click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="processes")
    @click.option("--generate", is_flag=True, help="generate replies with the LLM (slow on CPU) instead of "
                                                   "scoring the grounded template/list answer")
    @click.option("--fusion", type=click.Choice(["learned", "configured"]), default="learned", show_default=True,
                  help="rank with fusion weights cross-fitted on the logs, or with the configured ranking.w_*")
    @click.option("--no-resume", is_flag=True, help="start over even if --out holds a partial run")
    @click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(min=100))
    @click.pass_context
    def eval_cmd(ctx, args, kb_dir, adapter, out, ablate, no_baselines, split, limit, sample, seed, workers, generate,
                 fusion, no_resume, bootstrap) -> None:
        """Replay TRANSCRIPTS (JSON Lines, the kb transcript format) turn by turn, or
        `chatrec eval compare RUN_A[:SYSTEM] RUN_B[:SYSTEM]` for paired differences.

        Writes OUT/summary.json, OUT/turns.jsonl (one row per system and turn), and
        OUT/report.html (opens offline)."""
        from chatrec.cli.context import settings_from
        from chatrec.eval.runner import HEADLINE, EvalError, EvalOptions, compare, run_eval
        from chatrec.kb import KBError

        if args[0] == "compare":
            if len(args) != 3:
                raise click.UsageError("usage: chatrec eval compare RUN_A[:SYSTEM] RUN_B[:SYSTEM]")
            try:
                res = compare(args[1], args[2], seed=seed)
            except (EvalError, FileNotFoundError) as exc:
                raise click.ClickException(str(exc)) from exc
            click.echo(f"A = {res['a']}, B = {res['b']}, {res['conversations']} conversations in common\n")
            click.echo("| metric | A | B | A - B [95% CI] | p (paired permutation) | n |\n|---|---|---|---|---|---|")
            for name, m in res["metrics"].items():
                click.echo(f"| {name} | {m['a']:.4f} | {m['b']:.4f} | {m['diff']:+.4f} [{m['ci_low']:+.4f}, "
                           f"{m['ci_high']:+.4f}] | {m['p_value']:.4f} | {m['n']} |")
            return
        if len(args) != 1:
            raise click.UsageError("give one TRANSCRIPTS file (or: compare RUN_A RUN_B)")
        transcripts = Path(args[0])
        if not transcripts.is_file():
            raise click.UsageError(f"no such file: {transcripts}")
        overrides = {"kb_dir": kb_dir} if kb_dir else {}
        settings = settings_from(ctx, adapter=adapter, **overrides)
        ablations = [a.strip() for a in ablate.split(",") if a.strip()]
        opts = EvalOptions(transcripts=str(transcripts), out=out, ablations=ablations, baselines=not no_baselines,
                           limit=limit, sample=sample, seed=seed, workers=workers, generate=generate, split=split,
                           bootstrap=bootstrap, fusion=fusion)
        out_dir = Path(out)
        if no_resume and out_dir.exists():
            for name in ("run.json", "convs.jsonl", "turns.jsonl", "features.jsonl", "summary.json", "report.html"):
                (out_dir / name).unlink(missing_ok=True)
        try:
            summary = run_eval(settings, opts)
        except (EvalError, KBError) as exc:
            raise click.ClickException(str(exc)) from exc
        present = [m for m in HEADLINE if any(m in s["metrics"] for s in summary["systems"].values())]
        click.echo(_table(summary, present))
        r = summary["run"]
        click.echo(f"\n{r['conversations']} conversations ({r['turns']['rec']} recommendation turns, "
                   f"{r['turns']['service']} service turns), {len(r['skipped'])} skipped, {r['wall_s']:.0f} s")
        click.echo(f"report: {out_dir / 'report.html'}  summary: {out_dir / 'summary.json'}")

    @main.command(name="fit-ranker")
    @click.option("--out", type=click.Path(dir_okay=False), help="weights file [<data-dir>/ranker.json]")
    @click.option("--limit", type=click.IntRange(min=1), help="first N training conversations")
    @click.option("--seed", default=7, show_default=True, type=int)
    @click.pass_context
    def fit_ranker(ctx, out, limit, seed) -> None:
        """Learn the fusion weights from the KB's logged recommendation turns (training split only).

        Point `ranking.weights_file` (CHATREC_RANKING__WEIGHTS_FILE) at the result to use them."""
        import tempfile

        from chatrec.cli.context import settings_from
        from chatrec.eval.runner import EvalOptions, run_eval
        from chatrec.eval.fusion import feature_rows, fit_weights, save_weights

        settings = settings_from(ctx)
        target = Path(out) if out else settings.data_dir / "ranker.json"
        with tempfile.TemporaryDirectory() as tmp:
            opts = EvalOptions(transcripts=str(settings.kb_dir / "transcripts.jsonl"), out=tmp, ablations=[],
                               baselines=False, split="train", limit=limit, seed=seed, bootstrap=100)
            run_eval(settings, opts)
            fitted = fit_weights(feature_rows(Path(tmp) / "features.jsonl"), seed)
        if fitted is None:
            raise click.ClickException("the logs hold no recommendation turn with a recommended candidate")
        save_weights(fitted, target, source=str(settings.kb_dir / "transcripts.jsonl"))
        click.echo(json.dumps(fitted, indent=2))
        click.echo(f"weights written to {target}; use them with CHATREC_RANKING__WEIGHTS_FILE={target}")
