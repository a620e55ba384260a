"""``chatrec train``: QLoRA fine-tuning on the KB's past conversations; ``chatrec export``: merge an
adapter (export only); ``chatrec export-gguf``: an adapter as a GGUF LoRA for the llamacpp backend."""

from __future__ import annotations

import json
from pathlib import Path

import click

from chatrec.cli.context import default_of
from chatrec.extras import require_extra


@click.command()
@click.option("--out", help="adapter folder [<data-dir>/adapters/<name>]")
@click.option("--name", default="default", show_default=True, help="adapter name (used when --out is not given)")
@click.option("--max-steps", type=click.IntRange(min=1), help=f"optimiser steps {default_of('train', 'max_steps')}")
@click.option(
    "--time-budget",
    type=click.FloatRange(min=0, min_open=True),
    help=f"stop (and save) after this many seconds {default_of('train', 'time_budget_s')}",
)
@click.option(
    "--max-length", type=click.IntRange(min=64), help=f"tokens per example {default_of('train', 'max_length')}"
)
@click.option("--no-resume", is_flag=True, help="ignore checkpoints of an interrupted run")
@click.option(
    "--rank-negatives",
    type=click.IntRange(min=0),
    help="also train the LLM ranker's Yes/No task at logged recommendation turns, with this many "
    "hard negatives (best-ranked items the agent did not show) per turn; 0 = off "
    + default_of("train", "rank_negatives"),
)
@click.option("--seed", type=int, help=default_of("train", "seed"))
@click.pass_context
def train(ctx, out, name, max_steps, time_budget, max_length, no_resume, rank_negatives, seed) -> None:
    """Train a LoRA adapter on kb/transcripts.jsonl (held-out conversations for eval loss).

    Every option of the run is in the [train] settings section (TOML or CHATREC_TRAIN__*);
    the flags override it. An interrupted run (Ctrl-C, killed) resumes from its last
    checkpoint when run again."""
    from chatrec.chatbot import build_planner
    from chatrec.cli.context import settings_from
    from chatrec.kb import KBError
    from chatrec.train.sft import TrainingError
    from chatrec.train.sft import train as run

    require_extra("train", "chatrec train")
    settings = settings_from(
        ctx,
        train={
            "max_steps": max_steps,
            "time_budget_s": time_budget,
            "max_length": max_length,
            "rank_negatives": rank_negatives,
            "seed": seed,
        },
    )
    try:
        # Prompts are planned as a live turn plans them; planning needs no model.
        planner = build_planner(settings, progress=True)
    except KBError as exc:
        raise click.ClickException(str(exc)) from exc
    target = Path(out) if out else settings.data_dir / "adapters" / name
    cfg = settings.train
    try:
        card = run(planner, target, cfg, resume=not no_resume, command=_command_line())
    except TrainingError as exc:
        raise click.ClickException(str(exc)) from exc
    m = {k: v for k, v in card["metrics"].items() if k != "log_history"}
    click.echo(f"adapter written to {target}")
    click.echo(json.dumps(m, indent=2))


def _command_line() -> str:
    """This run's command line with the ``CHATREC_*`` variables it ran under (for the adapter's card)."""
    import os
    import shlex
    import sys

    env = [f"{k}={shlex.quote(v)}" for k, v in sorted(os.environ.items()) if k.startswith("CHATREC_")]
    return " ".join([*env, "chatrec", *map(shlex.quote, sys.argv[1:])])


@click.command()
@click.option("--adapter", required=True, help="LoRA adapter folder, or a name under <data-dir>/adapters")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="folder for the merged model")
@click.option("--overwrite", is_flag=True, help="replace --out if it already holds files")
@click.pass_context
def export(ctx, adapter, out, overwrite) -> None:
    """Export only: merge a LoRA adapter into the base model (in float32) and save it as a model folder.

    For tools that cannot apply a LoRA. Do not serve it with chatrec: chatrec loads any model
    in 4-bit NF4, and a merged LoRA does not survive that re-quantisation. Serve the adapter
    itself (--adapter / llm.adapter): it is applied at run time on the NF4 base, as trained."""
    from chatrec.cli.context import settings_from
    from chatrec.llm.transformers_backend import export_merged
    from chatrec.models import ModelNotAvailable, llm_path

    settings = settings_from(ctx, adapter=adapter)
    adapter_dir = Path(settings.llm.adapter or adapter)
    card_file = adapter_dir / "chatrec_card.json"
    card = json.loads(card_file.read_text()) if card_file.exists() else {}
    trained_on = card.get("base_model")
    if trained_on and trained_on != settings.llm.model:
        raise click.ClickException(
            f"{adapter_dir} was trained on {trained_on!r}, not {settings.llm.model!r}; pass --model {trained_on}"
        )
    try:
        base = llm_path(settings.llm.model, settings.cache_dir)
    except ModelNotAvailable as exc:
        raise click.ClickException(str(exc)) from exc
    info = {
        "base_model": settings.llm.model,
        "base_path": base,
        "adapter": str(adapter_dir.resolve()),
        "merged_dtype": "float32",
        "adapter_card": {k: v for k, v in card.items() if k != "metrics"}
        | ({"metrics": {k: v for k, v in card["metrics"].items() if k != "log_history"}} if "metrics" in card else {}),
    }
    try:
        target = export_merged(base, adapter_dir, out, overwrite=overwrite, card=info)
    except (FileNotFoundError, FileExistsError) as exc:
        raise click.ClickException(f"{exc}{'; pass --overwrite' if isinstance(exc, FileExistsError) else ''}") from exc
    click.echo(f"merged model written to {target} (float32; for export: serve the adapter itself, --adapter)")


@click.command("export-gguf")
@click.option("--adapter", required=True, help="LoRA adapter folder, or a name under <data-dir>/adapters")
@click.pass_context
def export_gguf(ctx, adapter) -> None:
    """Write a peft LoRA adapter as adapter_model.gguf in its folder, for llm.backend = 'llamacpp'.

    `chatrec train` does this itself; this is for adapters trained before it did."""
    from chatrec.cli.context import settings_from
    from chatrec.train.gguf_lora import ConversionError, convert

    settings = settings_from(ctx, adapter=adapter)
    adapter_dir = Path(settings.llm.adapter or adapter)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise click.ClickException(f"no peft adapter at {adapter_dir} (adapter_config.json missing)")
    try:
        target = convert(adapter_dir)
    except (ConversionError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"GGUF LoRA written to {target}")
    click.echo(f"serve it with: chatrec --backend llamacpp chat --adapter {adapter_dir}")


def register(main: click.Group) -> None:
    main.add_command(train)
    main.add_command(export)
    main.add_command(export_gguf)
