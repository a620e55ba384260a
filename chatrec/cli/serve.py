"""``chatrec serve`` (the HTTP API, widget and UI under uvicorn) and ``chatrec keys`` (site keys).

Wired into the main command group by ``register(main)`` in chatrec/cli.py.
"""

from __future__ import annotations

import click


def _base_settings(ctx: click.Context, **overrides):
    from chatrec.cli.context import settings_from

    return settings_from(ctx, **overrides)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="CHATREC_SERVE_HOST", help="bind address")
@click.option("--port", default=8000, show_default=True, type=int, envvar="CHATREC_SERVE_PORT")
@click.option("--max-concurrent", default=1, show_default=True, type=click.IntRange(min=1),
              help="turns generating at once")
@click.option("--max-queue", default=8, show_default=True, type=click.IntRange(min=0),
              help="turns waiting for a slot; more get 503")
@click.option("--max-body-bytes", default=16 * 1024, show_default=True, type=click.IntRange(min=256))
@click.option("--rate-per-minute-key", default=120.0, show_default=True, type=click.FloatRange(min=0),
              help="requests per minute per site key (0 = unlimited)")
@click.option("--rate-per-minute-ip", default=30.0, show_default=True, type=click.FloatRange(min=0),
              help="requests per minute per client address (0 = unlimited)")
@click.option("--admin-token", envvar="CHATREC_ADMIN_TOKEN", default=None,
              help="bearer token for /v1/admin/* (also CHATREC_ADMIN_TOKEN); unset = admin API off")
@click.option("--require-key/--no-require-key", default=None,
              help="require a site key [default: once any key exists]")
@click.option("--cors-origin", "cors_origins", multiple=True, help="extra allowed browser origin (repeatable)")
@click.option("--demo-key", default=None, envvar="CHATREC_DEMO_SITE_KEY", help="site key written into /demo")
@click.option("--no-ui", is_flag=True, help="do not mount the Gradio UI under /ui")
@click.option("--no-demo", is_flag=True, help="do not serve the demo page at /demo")
@click.option("--adapter", help="LoRA adapter folder")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.pass_context
def serve(ctx, host, port, max_concurrent, max_queue, max_body_bytes, rate_per_minute_key, rate_per_minute_ip,
          admin_token, require_key, cors_origins, demo_key, no_ui, no_demo, adapter, log_level) -> None:
    """Serve the chat API (SSE + OpenAI-compatible), the widget, /demo and the UI at /ui."""
    import uvicorn
    from pydantic import ValidationError

    from chatrec.serve.app import ServeSettings, create_app
    from chatrec.cli.context import make_chatbot

    try:
        serve_settings = ServeSettings(
            host=host, port=port, max_concurrent=max_concurrent, max_queue=max_queue, max_body_bytes=max_body_bytes,
            rate_per_minute_key=rate_per_minute_key, rate_per_minute_ip=rate_per_minute_ip,
            admin_token=admin_token or None, require_key=require_key, cors_origins=list(cors_origins),
            demo_site_key=demo_key, ui=not no_ui, demo=not no_demo)
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from exc
    bot = make_chatbot(_base_settings(ctx, adapter=adapter))
    app = create_app(bot, serve_settings)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    click.echo(f"chatrec API on http://{shown}:{port}  (UI /ui, demo /demo, widget /widget.js, OpenAI /v1)")
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False)


@click.group()
def keys() -> None:
    """Site keys for the widget and the HTTP API."""


def _keystore(ctx: click.Context):
    from chatrec.store.keys import KeyStore

    return KeyStore(_base_settings(ctx).db_path)


@keys.command("add")
@click.option("--origin", "origins", multiple=True,
              help="web origin allowed to use the key, e.g. https://shop.example (repeatable)")
@click.option("--label", default="", help="a note, e.g. the shop's name")
@click.pass_context
def keys_add(ctx, origins, label) -> None:
    """Make a key and print it (once: only its hash is stored)."""
    store = _keystore(ctx)
    try:
        plain, record = store.add(list(origins), label)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(plain)
    where = ", ".join(record.origins) or "no browser origin (server-side use only)"
    click.echo(f"key {record.id} for {where}. Store it now; it cannot be shown again.", err=True)


@keys.command("list")
@click.pass_context
def keys_list(ctx) -> None:
    """List keys (id, prefix, origins, label, state)."""
    rows = _keystore(ctx).list()
    if not rows:
        click.echo("no site keys")
        return
    for k in rows:
        state = "active" if k.active else f"revoked {k.revoked_at}"
        click.echo(f"{k.id}\t{k.prefix}…\t{','.join(k.origins) or '-'}\t{k.label or '-'}\t{k.created_at}\t{state}")


@keys.command("revoke")
@click.argument("key_id", type=int)
@click.pass_context
def keys_revoke(ctx, key_id) -> None:
    """Revoke a key by id (see `keys list`)."""
    if not _keystore(ctx).revoke(key_id):
        raise click.ClickException(f"no active key {key_id}")
    click.echo(f"key {key_id} revoked")


def register(main: click.Group) -> None:
    """Add ``serve`` and ``keys`` to chatrec's command group."""
    main.add_command(serve)
    main.add_command(keys)
