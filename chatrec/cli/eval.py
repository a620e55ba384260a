"""``chatrec eval``: replay logged conversations and score the system, baselines and ablations;
``chatrec eval compare A B``: paired differences of two runs; ``chatrec fit-ranker``: learn fusion weights;
``chatrec fit-encoder``: fine-tune the bi-encoder for the dense item signal."""

from __future__ import annotations

import json
from pathlib import Path

import click

from chatrec.cli.context import default_of
from chatrec.extras import require, require_extra


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


def _compare(runs: tuple[str, ...], seed: int) -> None:
    from chatrec.eval.options import EvalError
    from chatrec.eval.summary import compare

    if len(runs) != 2:
        raise click.UsageError("usage: chatrec eval compare RUN_A[:SYSTEM] RUN_B[:SYSTEM]")
    require("scipy", purpose="chatrec eval compare")
    try:
        res = compare(runs[0], runs[1], seed=seed)
    except (EvalError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"A = {res['a']}, B = {res['b']}, {res['conversations']} conversations in common\n")
    click.echo("| metric | A | B | A - B [95% CI] | p (paired permutation) | n |\n|---|---|---|---|---|---|")
    for name, m in res["metrics"].items():
        click.echo(
            f"| {name} | {m['a']:.4f} | {m['b']:.4f} | {m['diff']:+.4f} [{m['ci_low']:+.4f}, "
            f"{m['ci_high']:+.4f}] | {m['p_value']:.4f} | {m['n']} |"
        )


@click.command(name="eval", context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, required=True)
@click.option("--kb", "kb_dir", type=click.Path(file_okay=False), help="knowledge base of the transcripts")
@click.option("--adapter", help="LoRA adapter folder or name (then -adapter is an ablation with --generate)")
@click.option("--out", default="eval-out", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--ablate",
    help="comma-separated parts to switch off one at a time: kg, profile, llm_rank, "
    "history, adapter " + default_of("eval", "ablations"),
)
@click.option(
    "--baselines/--no-baselines",
    default=None,
    help="score popularity / repeat_last / embedding_only too " + default_of("eval", "baselines"),
)
@click.option(
    "--split",
    type=click.Choice(["all", "heldout", "train"]),
    help="which conversations (held-out = the 10% hash split that training never sees) " + default_of("eval", "split"),
)
@click.option("--limit", type=click.IntRange(min=1), help="first N conversations only")
@click.option("--sample", type=click.IntRange(min=1), help="a seeded random sample of N conversations")
@click.option("--seed", type=int, help=default_of("eval", "seed"))
@click.option("--workers", type=click.IntRange(min=1), help="processes " + default_of("eval", "workers"))
@click.option(
    "--ray",
    "ray_address",
    metavar="local|ADDRESS",
    help="run the replay on --workers Ray actors (the ray extra): 'local' starts a CPU-only local instance, "
    "or a running cluster's address; same results as the local pool",
)
@click.option(
    "--generate/--no-generate",
    default=None,
    help="generate replies with the LLM (slow on CPU) instead of scoring the grounded template/list "
    "answer " + default_of("eval", "generate"),
)
@click.option(
    "--fusion",
    type=click.Choice(["learned", "configured"]),
    help="rank with fusion weights cross-fitted on the logs, or with the configured ranking.w_* "
    + default_of("eval", "fusion"),
)
@click.option(
    "--train",
    "train",
    type=click.Path(dir_okay=False, exists=True),
    help="learn everything (statistics, the fitted ranker) from these transcripts only and score TRANSCRIPTS "
    "with it; conversations in both (by id or content) are refused. Without it, statistics and weights are "
    "cross-fitted on the scored conversations",
)
@click.option(
    "--fit-sample",
    type=click.IntRange(min=1),
    help="with --train: fit the ranker's weights on a seeded sample of N training conversations "
    "(its statistics always count all of them)",
)
@click.option("--no-resume", is_flag=True, help="start over even if --out holds a partial run")
@click.option("--bootstrap", type=click.IntRange(min=100), help=default_of("eval", "bootstrap"))
@click.pass_context
def eval_cmd(
    ctx,
    args,
    kb_dir,
    adapter,
    out,
    ablate,
    baselines,
    split,
    limit,
    sample,
    seed,
    workers,
    ray_address,
    generate,
    fusion,
    train,
    fit_sample,
    no_resume,
    bootstrap,
) -> None:
    """Replay TRANSCRIPTS (JSON Lines, the kb transcript format) turn by turn, or
    `chatrec eval compare RUN_A[:SYSTEM] RUN_B[:SYSTEM]` for paired differences.

    Run options default to the [eval] settings section (TOML or CHATREC_EVAL__*).
    Writes OUT/summary.json, OUT/turns.jsonl (one row per system and turn), and
    OUT/report.html (opens offline)."""
    from chatrec.cli.context import settings_from
    from chatrec.eval.options import HEADLINE, EvalError, EvalOptions
    from chatrec.eval.runner import run_eval
    from chatrec.kb import KBError

    ablations = None if ablate is None else [a.strip() for a in ablate.split(",") if a.strip()]
    settings = settings_from(
        ctx,
        adapter=adapter,
        **({"kb_dir": kb_dir} if kb_dir else {}),
        eval={
            "ablations": ablations,
            "baselines": baselines,
            "split": split,
            "seed": seed,
            "workers": workers,
            "generate": generate,
            "fusion": fusion,
            "bootstrap": bootstrap,
        },
    )
    if args[0] == "compare":
        _compare(args[1:], settings.eval.seed)
        return
    if len(args) != 1:
        raise click.UsageError("give one TRANSCRIPTS file (or: compare RUN_A RUN_B)")
    transcripts = Path(args[0])
    if not transcripts.is_file():
        raise click.UsageError(f"no such file: {transcripts}")
    require_extra("eval", "chatrec eval")
    if ray_address:
        require("ray", purpose="chatrec eval --ray")
    opts = EvalOptions(
        transcripts=str(transcripts),
        out=out,
        limit=limit,
        sample=sample,
        train=str(train) if train else None,
        fit_sample=fit_sample,
        ray=ray_address,
        **settings.eval.model_dump(),
    )
    if train:
        from chatrec.eval.learn import check_encoder, file_sha256
        from chatrec.kb import load_kb

        try:
            check_encoder(load_kb(settings.kb_dir), file_sha256(Path(train)), str(train))
        except (EvalError, KBError) as exc:
            raise click.ClickException(str(exc)) from exc
    out_dir = Path(out)
    if no_resume and out_dir.exists():
        for sub in (out_dir, out_dir / "fit"):
            for name in ("run.json", "convs.jsonl", "turns.jsonl", "features.jsonl", "summary.json", "report.html"):
                (sub / name).unlink(missing_ok=True)
        (out_dir / "ranker.json").unlink(missing_ok=True)
    try:
        summary = run_eval(settings, opts)
    except (EvalError, KBError) as exc:
        raise click.ClickException(str(exc)) from exc
    present = [m for m in HEADLINE if any(m in s["metrics"] for s in summary["systems"].values())]
    click.echo(_table(summary, present))
    r = summary["run"]
    click.echo(
        f"\n{r['conversations']} conversations ({r['turns']['rec']} recommendation turns, "
        f"{r['turns']['service']} service turns), {len(r['skipped'])} skipped, {r['wall_s']:.0f} s"
    )
    if "protocol" in r:  # a summary written before --train existed has none
        click.echo(f"protocol: {r['protocol']}")
    click.echo(f"report: {out_dir / 'report.html'}  summary: {out_dir / 'summary.json'}")


@click.command(name="fit-ranker")
@click.option(
    "--train",
    "train",
    type=click.Path(dir_okay=False, exists=True),
    help="training transcripts [the KB's transcripts.jsonl]",
)
@click.option("--out", type=click.Path(dir_okay=False), help="fitted ranker file [<kb>/artifacts/ranker.json]")
@click.option("--workers", type=click.IntRange(min=1), help="replay processes " + default_of("eval", "workers"))
@click.option("--seed", type=int, help=default_of("eval", "seed"))
@click.option(
    "--sample", type=click.IntRange(min=1), help="fit the weights on a seeded sample of N training conversations"
)
@click.pass_context
def fit_ranker_cmd(ctx, train, out, workers, seed, sample) -> None:
    """Fit the ranker (fusion weights and the popularity / co-mention statistics) on training
    conversations and save it with its card; the live turn loads <kb>/artifacts/ranker.json.

    `chatrec eval TRANSCRIPTS --train TRAIN` runs this same fit before scoring."""
    from chatrec.cli.context import settings_from
    from chatrec.eval.learn import check_encoder, file_sha256, save_ranker, train_key
    from chatrec.eval.options import EvalError
    from chatrec.eval.runner import eval_settings, fit_ranker
    from chatrec.kb import KBError, load_kb
    from chatrec.turn.rank import RANKER_FILE

    require_extra("eval", "chatrec fit-ranker")
    settings = settings_from(ctx, eval={"seed": seed, "workers": workers})
    train_path = Path(train) if train else settings.kb_dir / "transcripts.jsonl"
    target = Path(out) if out else settings.kb_dir / RANKER_FILE
    try:
        kb = load_kb(settings.kb_dir)
        check_encoder(kb, file_sha256(train_path), str(train_path))
        es = eval_settings(settings, kb, train_key(kb, file_sha256(train_path)))
        work = es.data_dir / "fit"
        fitted = fit_ranker(es, str(train_path), work, settings.eval.workers, settings.eval.seed, True, sample)
    except (EvalError, KBError) as exc:
        raise click.ClickException(str(exc)) from exc
    save_ranker(fitted, target)
    click.echo(json.dumps({"weights": fitted["weights"], "card": fitted["card"]}, indent=2))
    click.echo(f"fitted ranker written to {target}")


@click.command(name="fit-encoder")
@click.option(
    "--train",
    "train",
    type=click.Path(dir_okay=False, exists=True),
    help="training transcripts [the KB's transcripts.jsonl]",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="passes over the pairs (on ReDial, 3 epochs beat 1 by +0.017 strict-new recall@10; docs/evaluation.md)",
)
@click.option("--batch-size", type=click.IntRange(min=2), default=32, show_default=True)
@click.option("--seed", type=int, help=default_of("eval", "seed"))
@click.option("--max-steps", type=click.IntRange(min=1), help="stop after N optimiser steps (a quick check)")
@click.option(
    "--hold-out",
    type=click.IntRange(min=1),
    help="leave out the seeded sample of N training conversations that `fit-ranker --sample N` (or "
    "`eval --fit-sample N`, same seed) replays, so the fusion weights see the encoder's scores out of sample",
)
@click.pass_context
def fit_encoder_cmd(ctx, train, epochs, batch_size, seed, max_steps, hold_out) -> None:
    """Fine-tune the bi-encoder (retrieval.embedder, MultipleNegativesRankingLoss) on (dialogue
    context -> recommended item) pairs from the training conversations and save it, with its
    card, to <kb>/artifacts/encoder/: the live turn, fit-ranker and eval then take the dense item
    signal from it. Run fit-ranker afterwards (its weights are fitted on this encoder's feature)."""
    from chatrec.cli.context import settings_from
    from chatrec.eval.learn import encoder_pairs, file_sha256, read_training
    from chatrec.eval.options import EvalError, EvalOptions
    from chatrec.eval.runner import select_conversations
    from chatrec.kb import KBError, load_kb
    from chatrec.retrieval.encoder_ft import ItemEncoder, encoder_dir, train_encoder

    require("datasets", purpose="chatrec fit-encoder")
    settings = settings_from(ctx, eval={"seed": seed})
    train_path = Path(train) if train else settings.kb_dir / "transcripts.jsonl"
    try:
        kb = load_kb(settings.kb_dir)
        convs = read_training(train_path, kb)
        held: set[str] = set()
        if hold_out:  # the conversations fit-ranker --sample replays (runner.select_conversations' choice)
            opts = EvalOptions(transcripts=str(train_path), out="-", sample=hold_out, seed=settings.eval.seed)
            held = {cid for _, cid in select_conversations(opts, kb)[0]}
        pairs = encoder_pairs([c for c in convs if c.conversation_id not in held], kb)
    except (EvalError, KBError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not pairs:
        raise click.ClickException(f"{train_path}: no recommendation turn with a new recommended item to learn from")
    out = encoder_dir(kb.root)
    assert out is not None
    card = {
        "train": str(train_path),
        "train_sha256": file_sha256(train_path),
        "kb": str(kb.root),
        "conversations": len(convs) - len(held),
        "held_out": len(held),  # fit-ranker --sample N with the same seed replays exactly these
    }
    click.echo(f"{len(pairs)} (context, item) pairs from {train_path}", err=True)
    card = train_encoder(
        pairs,
        settings.retrieval.embedder,
        out,
        card,
        epochs=epochs,
        batch_size=batch_size,
        seed=settings.eval.seed,
        max_steps=max_steps or -1,
    )
    ItemEncoder(out, kb.items)  # embeds the catalogue once, for every process that loads it
    click.echo(json.dumps(card, indent=2))
    click.echo(f"fine-tuned encoder written to {out}")


def register(main: click.Group) -> None:
    main.add_command(eval_cmd)
    main.add_command(fit_ranker_cmd)
    main.add_command(fit_encoder_cmd)
