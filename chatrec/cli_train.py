"""``chatrec train``: QLoRA fine-tuning on the KB's past conversations."""

from __future__ import annotations

import json
from pathlib import Path

import click


def register(main: click.Group) -> None:
    @main.command()
    @click.option("--out", help="adapter folder [<data-dir>/adapters/<name>]")
    @click.option("--name", default="default", show_default=True, help="adapter name (used when --out is not given)")
    @click.option("--max-steps", type=click.IntRange(min=1), default=150, show_default=True)
    @click.option("--time-budget", type=float, help="stop (and save) after this many seconds")
    @click.option("--max-length", type=click.IntRange(min=64), default=512, show_default=True)
    @click.option("--no-resume", is_flag=True, help="ignore checkpoints of an interrupted run")
    @click.pass_context
    def train(ctx, out, name, max_steps, time_budget, max_length, no_resume) -> None:
        """Train a LoRA adapter on kb/transcripts.jsonl (held-out conversations for eval loss)."""
        from chatrec.cli import _settings
        from chatrec.kb import KBError
        from chatrec.llm.fake import FakeLLM
        from chatrec.pipeline import Chatbot
        from chatrec.train import TrainConfig, TrainingError
        from chatrec.train import train as run

        settings = _settings(ctx)
        try:
            # Prompts are built by the pipeline; no generation happens, so no model is loaded for it.
            bot = Chatbot(settings, llm=FakeLLM(), progress=True)
        except KBError as exc:
            raise click.ClickException(str(exc)) from exc
        target = Path(out) if out else settings.data_dir / "adapters" / name
        cfg = TrainConfig(max_steps=max_steps, time_budget_s=time_budget, max_length=max_length)
        try:
            card = run(bot, target, cfg, resume=not no_resume)
        except TrainingError as exc:
            raise click.ClickException(str(exc)) from exc
        m = {k: v for k, v in card["metrics"].items() if k != "log_history"}
        click.echo(f"adapter written to {target}")
        click.echo(json.dumps(m, indent=2))
