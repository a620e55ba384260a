"""``chatrec serve`` (the HTTP API, widget and UI under uvicorn) and ``chatrec keys`` (site keys).

Wired into the main command group by ``register(main)`` in chatrec/cli/main.py.
"""

from __future__ import annotations

import click

from chatrec.config import ServeSettings


def _base_settings(ctx: click.Context, **overrides):
    from chatrec.cli.context import settings_from

    return settings_from(ctx, **overrides)


def _help(name: str, text: str = "") -> str:
    """Help from the ``serve`` settings section, so each default is written once (in chatrec.config)."""
    field = ServeSettings.model_fields[name]
    default = field.get_default(call_default_factory=True)
    shown = f"default: {default}; " if default not in (None, []) else ""
    return f"{text or field.description or ''} [{shown}serve.{name}]".lstrip()


# Every flag defaults to None ("not given") and then leaves serve.<name> as the settings
# tree has it (defaults < TOML [serve] < CHATREC_SERVE__* < the flag).
@click.command()
@click.option("--host", help=_help("host"))
@click.option("--port", type=click.IntRange(0, 65535), help=_help("port"))
@click.option("--max-concurrent", type=click.IntRange(min=1), help=_help("max_concurrent"))
@click.option("--max-queue", type=click.IntRange(min=0), help=_help("max_queue"))
@click.option("--max-body-bytes", type=click.IntRange(min=256), help=_help("max_body_bytes"))
@click.option("--rate-per-minute-key", type=click.FloatRange(min=0), help=_help("rate_per_minute_key"))
@click.option("--rate-per-minute-ip", type=click.FloatRange(min=0), help=_help("rate_per_minute_ip"))
@click.option("--rate-per-minute-ip-all", type=click.FloatRange(min=0), help=_help("rate_per_minute_ip_all"))
@click.option(
    "--admin-token",
    help=_help("admin_token", "bearer token for /v1/admin/* and the UI login off loopback; unset = admin API off"),
)
@click.option(
    "--require-key/--no-require-key",
    default=None,
    help=_help("require_key", "require a site key (default: once any key exists)"),
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help=_help("cors_origins", "extra allowed browser origin (repeatable; replaces the configured list)"),
)
@click.option("--demo-key", help=_help("demo_site_key"))
@click.option("--ui/--no-ui", default=None, help=_help("ui", "--ui: serve.ui = on; --no-ui: off"))
@click.option("--docs/--no-docs", default=None, help=_help("docs", "--docs: serve.docs = on; --no-docs: off"))
@click.option("--demo/--no-demo", default=None, help=_help("demo"))
@click.option("--adapter", help="LoRA adapter folder")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.pass_context
def serve(
    ctx,
    host,
    port,
    max_concurrent,
    max_queue,
    max_body_bytes,
    rate_per_minute_key,
    rate_per_minute_ip,
    rate_per_minute_ip_all,
    admin_token,
    require_key,
    cors_origins,
    demo_key,
    ui,
    docs,
    demo,
    adapter,
    log_level,
) -> None:
    """Serve the chat API (SSE + OpenAI-compatible), the widget, /demo and the UI at /ui."""
    import uvicorn

    from chatrec.cli.context import make_chatbot
    from chatrec.serve.app import create_app
    from chatrec.serve.server import uvicorn_options

    given = dict(
        host=host,
        port=port,
        max_concurrent=max_concurrent,
        max_queue=max_queue,
        max_body_bytes=max_body_bytes,
        rate_per_minute_key=rate_per_minute_key,
        rate_per_minute_ip=rate_per_minute_ip,
        rate_per_minute_ip_all=rate_per_minute_ip_all,
        admin_token=admin_token or None,
        require_key=require_key,
        cors_origins=list(cors_origins) or None,
        demo_site_key=demo_key,
        ui=ui,
        docs=docs,
        demo=demo,
    )
    overrides = {k: v for k, v in given.items() if v is not None}
    settings = _base_settings(ctx, adapter=adapter, **({"serve": overrides} if overrides else {}))
    cfg = settings.serve
    app = create_app(make_chatbot(settings), cfg)
    shown = "localhost" if cfg.host in ("0.0.0.0", "::") else cfg.host
    parts = ["UI /ui" if cfg.ui_mounted else "UI off", "demo /demo", "widget /widget.js", "OpenAI /v1"]
    parts += ["docs /docs"] if cfg.docs_served else []
    click.echo(f"chatrec API on http://{shown}:{cfg.port}  ({', '.join(parts)})")
    uvicorn.run(app, **uvicorn_options(cfg, log_level))


@click.group()
def keys() -> None:
    """Site keys for the widget and the HTTP API."""


def _keystore(ctx: click.Context):
    from chatrec.store import open_keys

    return open_keys(_base_settings(ctx))


@keys.command("add")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    help="web origin allowed to use the key, e.g. https://shop.example (repeatable)",
)
@click.option("--label", default="", help="a note, e.g. the shop's name")
@click.option(
    "--tenant",
    default="default",
    show_default=True,
    help="the shop the key belongs to: a [tenants.<name>] of the settings (docs/scaling.md 'Several shops')",
)
@click.pass_context
def keys_add(ctx, origins, label, tenant) -> None:
    """Make a key and print it (once: only its hash is stored)."""
    settings = _base_settings(ctx)
    if tenant != "default" and tenant not in settings.tenants:
        known = ", ".join(["default", *settings.tenants])
        raise click.UsageError(f"no tenant {tenant!r} in the settings ([tenants.<name>]); configured: {known}")
    store = _keystore(ctx)
    try:
        plain, record = store.add(list(origins), label, tenant)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(plain)
    click.echo(f"signing secret: {record.signing_secret}")
    where = ", ".join(record.origins) or "no browser origin (server-side use only)"
    click.echo(
        f"key {record.id} of tenant {record.tenant} for {where}. Store it now; it cannot be shown again. "
        "The signing secret is for your shop's backend only (it signs user tokens); never put it in a page.",
        err=True,
    )


@keys.command("list")
@click.pass_context
def keys_list(ctx) -> None:
    """List keys (id, prefix, origins, label, state, tenant)."""
    rows = _keystore(ctx).list()
    if not rows:
        click.echo("no site keys")
        return
    for k in rows:
        state = "active" if k.active else f"revoked {k.revoked_at}"
        origins = ",".join(k.origins) or "-"
        click.echo(f"{k.id}\t{k.prefix}…\t{origins}\t{k.label or '-'}\t{k.created_at}\t{state}\t{k.tenant}")


@keys.command("secret")
@click.argument("key_id", type=click.IntRange(1, 2**63 - 1))
@click.pass_context
def keys_secret(ctx, key_id) -> None:
    """Replace a key's signing secret and print the new one (user tokens signed with the old one stop working)."""
    secret = _keystore(ctx).rotate_secret(key_id)
    if secret is None:
        raise click.ClickException(f"no active key {key_id}")
    click.echo(secret)


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
