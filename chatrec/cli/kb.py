"""``chatrec validate`` and ``chatrec index``: check the KB and build its indexes."""

from __future__ import annotations

import click

from chatrec.cli.context import load_kb_or_fail, settings_from


@click.command()
@click.pass_context
def validate(ctx: click.Context) -> None:
    """Check every KB file; print file:line: reason for each bad row."""
    s = settings_from(ctx)
    kb = load_kb_or_fail(s)
    click.echo(
        f"{s.kb_dir}: {len(kb.items)} items, {len(kb.templates)} templates, {len(kb.triples)} triples, "
        f"{len(kb.users)} users, {len(kb.events)} events, {len(kb.transcripts)} conversations: OK"
    )


@click.command()
@click.pass_context
def index(ctx: click.Context) -> None:
    """Build or refresh the Chroma indexes from the KB (only changed rows are re-embedded)."""
    from chatrec.chatbot import make_retriever

    s = settings_from(ctx)
    kb = load_kb_or_fail(s)
    for rep in make_retriever(s).build(kb, progress=True):
        click.echo(f"{rep.collection}: {rep.total} rows, {rep.embedded} embedded, {rep.deleted} deleted")


def register(main: click.Group) -> None:
    main.add_command(validate)
    main.add_command(index)
