"""``chatrec learn``: update the ranking policy from logged feedback behind an off-policy gate;
``chatrec learn rollback`` and ``chatrec learn status`` (docs/feedback.md)."""

from __future__ import annotations

import json

import click


def _versions(ctx: click.Context):
    from chatrec.cli.context import settings_from
    from chatrec.turn.policy import PolicyStore, policy_folder

    settings = settings_from(ctx)
    return settings, PolicyStore(policy_folder(settings.data_dir))


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
@click.pass_context
def learn(ctx, holdout, margin, min_turns, shuffle_rewards, as_json) -> None:
    """Build a candidate ranking policy (the bandit) from the store's ranking log and votes, compare
    it with the current one by IPS and doubly robust estimates on the newest logged turns (paired
    bootstrap 95% intervals), and promote it only if not worse. Every candidate is kept as a version."""
    if ctx.invoked_subcommand is not None:
        return
    from chatrec.eval.offpolicy import learn_and_gate, report_text
    from chatrec.store import open_store

    settings, versions = _versions(ctx)
    store = open_store(settings)
    result = learn_and_gate(
        versions,
        store.ranking_log(),
        store.feedback(),
        holdout=holdout,
        margin=margin,
        min_turns=min_turns,
        shuffle_rewards=shuffle_rewards,
    )
    if result.version is not None:
        path = versions.folder / f"{result.version}.gate.json"
        path.write_text(json.dumps(result.report, indent=2), encoding="utf-8")
    click.echo(json.dumps(result.report, indent=2) if as_json else report_text(result.report))
    if settings.ranking.policy != "bandit":
        click.echo('note: ranking.policy is "fusion"; live turns use a promoted version once it is "bandit"')


@learn.command()
@click.pass_context
def rollback(ctx) -> None:
    """Make the version before the current one current again (a running chatbot follows)."""
    _, versions = _versions(ctx)
    try:
        now = versions.rollback()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"current policy: {now or 'untrained (no version)'}")


@learn.command()
@click.pass_context
def status(ctx) -> None:
    """The saved versions, their gate figures, and which one is current."""
    _, versions = _versions(ctx)
    current = versions.current()
    for v in versions.versions():
        meta = versions.meta(v)
        mark = "*" if v == current else " "
        click.echo(
            f"{mark} {v}  {meta['created_at']}  parent {meta['parent']}  learned up to turn {meta['learned_turn']}"
            f"  {json.dumps(meta.get('gate', {}))}"
        )
    if current is None:
        click.echo("current: none (the untrained bandit = the fused order)")


def register(main: click.Group) -> None:
    main.add_command(learn)
