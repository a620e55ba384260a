"""``chatrec router train``: fit the learned turn router on the KB's logs, ahead of the first turn."""

from __future__ import annotations

import json
import time

import click


@click.group()
def router() -> None:
    """The learned turn router (intent and route classifier; docs/routing.md)."""


@router.command(name="train")
@click.option("--force", is_flag=True, help="retrain even when the saved router matches the logs")
@click.pass_context
def train_router_cmd(ctx, force) -> None:
    """Train the router from kb/transcripts.jsonl (training conversations only) and save it under
    <data-dir>/router/, with a hash of the logs: changed logs retrain it on next use anyway."""
    from chatrec.chatbot import make_retriever
    from chatrec.cli.context import load_kb_or_fail, settings_from
    from chatrec.turn.classify import load_or_train, logs_hash, router_path, save_router, train_router

    settings = settings_from(ctx)
    kb = load_kb_or_fail(settings)
    embedder = make_retriever(settings).embedder
    t0 = time.perf_counter()
    if force:
        model = train_router(kb, embedder, settings)
        save_router(model, router_path(settings))
    else:
        model = load_or_train(settings, kb, embedder)
    assert model.logs_hash == logs_hash(kb, settings)
    meta = json.loads(router_path(settings).with_suffix(".json").read_text(encoding="utf-8"))
    meta.pop("per_class", None)
    click.echo(json.dumps(meta, indent=2))
    click.echo(f"router: {router_path(settings)} ({time.perf_counter() - t0:.1f} s)")


def register(main: click.Group) -> None:
    main.add_command(router)
