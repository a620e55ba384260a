"""The ``chatrec`` command line. Parses flags, calls the pipeline, formats output."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from chatrec.config import Settings, apply_offline_env, load_settings
from chatrec.kb import KBError, load_kb


def _settings(ctx: click.Context, **overrides) -> Settings:
    o = ctx.obj or {}
    llm = {k: v for k, v in (("adapter", overrides.pop("adapter", None)), ("backend", o.get("backend")),
                             ("model", o.get("model"))) if v}
    base = {k: v for k, v in (("kb_dir", o.get("kb")), ("data_dir", o.get("data_dir"))) if v}
    try:
        settings = load_settings(o.get("config"), **base, **({"llm": llm} if llm else {}), **overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    adapter = settings.llm.adapter
    if adapter and not Path(adapter).exists():
        named = settings.data_dir / "adapters" / adapter  # an adapter made by `chatrec train --name`
        if not named.exists():
            raise click.UsageError(f"adapter {adapter!r} is neither a folder nor a trained adapter in {named.parent}")
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"adapter": str(named)})})
    return settings


def _chatbot(settings: Settings, progress: bool = True):
    from chatrec.pipeline import Chatbot

    try:
        return Chatbot(settings, progress=progress)
    except KBError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file (also CHATREC_CONFIG).")
@click.option("--kb", type=click.Path(file_okay=False), help="knowledge-base folder [kb]")
@click.option("--data-dir", type=click.Path(file_okay=False), help="state folder [.chatrec]")
@click.option("--backend", type=click.Choice(["transformers", "openai", "fake"]), help="LLM backend")
@click.option("--model", help="LLM: Hugging Face id or local folder (default: embedded SmolLM2)")
@click.option("-v", "--verbose", is_flag=True)
@click.pass_context
def main(ctx: click.Context, config, kb, data_dir, backend, model, verbose) -> None:
    """chatrec: grounded customer-service and recommendation chat."""
    apply_offline_env()
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"config": config, "kb": kb, "data_dir": data_dir, "backend": backend, "model": model}


@main.command()
@click.pass_context
def validate(ctx: click.Context) -> None:
    """Check every KB file; print file:line: reason for each bad row."""
    s = _settings(ctx)
    try:
        kb = load_kb(s.kb_dir)
    except KBError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{s.kb_dir}: {len(kb.items)} items, {len(kb.templates)} templates, {len(kb.triples)} triples, "
               f"{len(kb.users)} users, {len(kb.events)} events, {len(kb.transcripts)} conversations: OK")


@main.command()
@click.pass_context
def index(ctx: click.Context) -> None:
    """Build or refresh the Chroma indexes from the KB (only changed rows are re-embedded)."""
    from chatrec.index import ChromaIndex

    s = _settings(ctx)
    try:
        kb = load_kb(s.kb_dir)
    except KBError as exc:
        raise click.ClickException(str(exc)) from exc
    for rep in ChromaIndex(s).build(kb, progress=True):
        click.echo(f"{rep.collection}: {rep.total} rows, {rep.embedded} embedded, {rep.deleted} deleted")


def _print_result(result, as_json: bool) -> None:
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    for r in result.recommendations:
        click.echo(f"  * [{r.item_id}] {r.title} {'' if r.price is None else f'${r.price:.2f} '}- {r.reason}")
        for p in r.evidence.kg_paths:
            click.echo(f"      KG: {p}")


@main.command()
@click.argument("message")
@click.option("--user", "user_id", help="user id from kb/users.jsonl")
@click.option("--conversation", "conversation_id", help="continue this conversation")
@click.option("--adapter", help="LoRA adapter folder")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.pass_context
def ask(ctx, message, user_id, conversation_id, adapter, as_json) -> None:
    """Answer one message."""
    from chatrec.pipeline import InputRejected

    bot = _chatbot(_settings(ctx, adapter=adapter), progress=not as_json)
    try:
        result = bot.ask(message, conversation_id, user_id)
    except InputRejected as exc:
        raise click.UsageError(str(exc)) from exc
    if not as_json:
        click.echo(result.text)
    _print_result(result, as_json)


@main.command()
@click.option("--user", "user_id", help="user id from kb/users.jsonl")
@click.option("--adapter", help="LoRA adapter folder")
@click.pass_context
def chat(ctx, user_id, adapter) -> None:
    """Terminal chat with streamed replies. Empty line or Ctrl-D quits."""
    from chatrec.pipeline import InputRejected, ResultEvent, TokenEvent

    bot = _chatbot(_settings(ctx, adapter=adapter))
    cid = bot.store.new_conversation(user_id)
    who = bot.kb.users[user_id].name if user_id in bot.kb.users else "guest"
    click.echo(f"{bot.kb.shop.name} assistant ({bot.llm.name}); chatting as {who}. Empty line quits.")
    while True:
        try:
            message = input("you> ")
        except EOFError:
            break
        if not message.strip():
            break
        click.echo("bot> ", nl=False)
        try:
            for ev in bot.stream(message, cid, user_id):
                if isinstance(ev, TokenEvent):
                    click.echo(ev.text, nl=False)
                elif isinstance(ev, ResultEvent):
                    res = ev.result
                    click.echo("")
                    if res.trace.get("grounding", {}).get("fallback"):
                        click.echo(f"[grounded answer: {'; '.join(res.trace['grounding']['problems'])}]")
                        click.echo("bot> " + res.text)
                    _print_result(res, False)
        except InputRejected as exc:
            click.echo(f"\n[rejected: {exc}]")
        sys.stdout.flush()


def _register_groups() -> None:
    from chatrec.cli_eval import register as register_eval
    from chatrec.cli_import import register as register_import
    from chatrec.cli_serve import register as register_serve
    from chatrec.cli_train import register as register_train

    register_serve(main)
    register_import(main)
    register_train(main)
    register_eval(main)


_register_groups()

if __name__ == "__main__":  # pragma: no cover
    main()
