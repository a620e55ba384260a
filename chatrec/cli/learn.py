"""``chatrec learn``: update the ranking policy from logged feedback behind an off-policy gate;
``chatrec learn rollback`` and ``chatrec learn status`` (docs/feedback.md)."""

from __future__ import annotations

import json

import click


def _versions(ctx: click.Context, tenant: str | None):
    """The settings, the store and the shop's policy versions in it (shared by every replica)."""
    from chatrec.cli.context import settings_from
    from chatrec.store import open_store
    from chatrec.turn.policy import PolicyStore, policy_kind

    settings = settings_from(ctx)
    if tenant and tenant != "default" and tenant not in settings.tenants:
        raise click.ClickException(f"unknown tenant {tenant!r}; configured: {sorted(settings.tenants)}")
    store = open_store(settings)
    return settings, store, PolicyStore(store, policy_kind(tenant))


TENANT = click.option(
    "--tenant", default=None, help="the shop ([tenants.<name>]) whose policy versions to use; default: the default shop"
)


@click.group(invoke_without_command=True)
@click.option(
    "--holdout",
    type=click.FloatRange(0.05, 0.9),
    default=0.3,
    show_default=True,
    help="share of the newest logged turns held out for the comparison",
)
@click.option(
    "--margin",
    type=click.FloatRange(0, None),
    default=0.02,
    show_default=True,
    help="promote when the 95%% lower bound of candidate - current is at least -margin",
)
@click.option("--min-turns", type=int, default=20, show_default=True, help="new logged turns needed to try")
@click.option(
    "--shuffle-rewards",
    is_flag=True,
    help="train on shuffled accepts (a deliberately worse candidate: checks the gate)",
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@TENANT
@click.pass_context
def learn(ctx, holdout, margin, min_turns, shuffle_rewards, as_json, tenant) -> None:
    """Build a candidate ranking policy (the bandit) from the store's ranking log and votes, compare
    it with the current one by IPS and doubly robust estimates on the newest logged turns (paired
    bootstrap 95% intervals), and promote it only if not worse. Every candidate is kept as a version."""
    if ctx.invoked_subcommand is not None:
        return
    from chatrec.eval.offpolicy import learn_and_gate, report_text

    settings, store, versions = _versions(ctx, tenant)
    result = learn_and_gate(
        versions,
        store.ranking_log(),
        store.feedback(),
        holdout=holdout,
        margin=margin,
        min_turns=min_turns,
        shuffle_rewards=shuffle_rewards,
    )
    click.echo(json.dumps(result.report, indent=2) if as_json else report_text(result.report))
    if settings.ranking.policy != "bandit":
        click.echo('note: ranking.policy is "fusion"; live turns use a promoted version once it is "bandit"')


@learn.command()
@TENANT
@click.pass_context
def rollback(ctx, tenant) -> None:
    """Make the version before the current one current again (running chatbots on the store follow)."""
    _, _, versions = _versions(ctx, tenant)
    try:
        now = versions.rollback()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"current policy: {now or 'untrained (no version)'}")


@learn.command()
@TENANT
@click.pass_context
def status(ctx, tenant) -> None:
    """The saved versions, their gate figures, and which one is current."""
    _, _, versions = _versions(ctx, tenant)
    current = versions.current()
    for meta in versions.store.policy_versions(versions.kind):
        v = meta["version"]
        mark = "*" if v == current else " "
        click.echo(
            f"{mark} {v}  {meta['created_at']}  parent {meta['parent']}  learned up to turn {meta['learned_turn']}"
            f"  {json.dumps(meta.get('gate', {}))}"
        )
    if current is None:
        click.echo("current: none (the untrained bandit = the fused order)")


def register(main: click.Group) -> None:
    main.add_command(learn)
