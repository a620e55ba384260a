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
ADAPTER = click.option(
    "--adapter", is_flag=True, help="the LoRA adapter refreshed from feedback (KTO) instead of the ranking policy"
)


def _adapter_versions(ctx: click.Context, tenant: str | None):
    """The (tenant's) settings, the store and the shop's adapter versions in it."""
    from chatrec.cli.context import settings_from
    from chatrec.store import open_store
    from chatrec.train.kto import AdapterVersions, adapter_folder, adapter_kind

    settings = settings_from(ctx)
    if tenant and tenant != "default":
        if tenant not in settings.tenants:
            raise click.ClickException(f"unknown tenant {tenant!r}; configured: {sorted(settings.tenants)}")
        from chatrec.serve.tenants import tenant_settings

        settings = tenant_settings(settings, tenant)
    store = open_store(settings)
    return settings, store, AdapterVersions(store, adapter_kind(tenant), adapter_folder(settings.data_dir, tenant))


def _tenant_ids(settings, store, tenant: str | None) -> set[int | None]:
    """The conversations' tenant ids (site key ids) of a shop; ``None`` stands for conversations
    without a key, which belong to the default shop."""
    from chatrec.store import open_keys
    from chatrec.store.keys import DEFAULT_TENANT

    name = tenant or DEFAULT_TENANT
    keys = [k for k in open_keys(settings, store).list() if k.tenant == name]
    return {k.id for k in keys} | ({None} if name == DEFAULT_TENANT else set())


def _shop_ranking_log(settings, store, tenant: str | None) -> list[dict]:
    """The ranking log rows of one shop's conversations (shops share the store, not their logs)."""
    tenants = _tenant_ids(settings, store, tenant)
    conversation_of = {int(t["id"]): t["conversation_id"] for t in store.turn_log()}
    shop: dict[str | None, bool] = {}
    out = []
    for rec in store.ranking_log():
        cid = conversation_of.get(int(rec["turn_id"]))
        if cid not in shop:
            shop[cid] = cid is not None and (store.conversation(cid) or {}).get("tenant_id") in tenants
        if shop[cid]:
            out.append(rec)
    return out


def _learn_adapter(ctx, tenant, holdout, margin, min_turns, as_json, params, shuffle, flip) -> None:
    from chatrec.chatbot import build_planner
    from chatrec.train.kto import refresh_adapter, report_text

    if shuffle and flip:
        raise click.UsageError("--shuffle-labels and --flip-labels exclude each other")
    settings, store, versions = _adapter_versions(ctx, tenant)
    tenants = _tenant_ids(settings, store, tenant)
    result = refresh_adapter(
        versions,
        settings,
        lambda: build_planner(settings, store=store),  # built only if there are labelled turns to replay
        store,
        tenants=tenants,
        params=params,
        holdout=holdout,
        margin_=margin,
        min_turns=min_turns,
        labels="shuffled" if shuffle else "flipped" if flip else "logged",
    )
    click.echo(json.dumps(result.report, indent=2) if as_json else report_text(result.report))
    if result.promoted and versions.folder is not None:
        click.echo(
            f"the current adapter is in {versions.folder}: serve it with llm.adapter = {versions.folder.name!r} "
            "(an engine loads its adapter at start: restart it)"
        )


@click.group(invoke_without_command=True)
@click.option(
    "--holdout",
    type=click.FloatRange(0.05, 0.9),
    default=0.3,
    show_default=True,
    help="--adapter: share of the newest labelled turns held out for the comparison",
)
@click.option(
    "--folds",
    type=click.IntRange(2, 20),
    default=5,
    show_default=True,
    help="ranking policy: cross-fitting folds (each new turn is scored by a candidate that did not learn it)",
)
@click.option(
    "--margin",
    type=click.FloatRange(0, None),
    default=0.02,
    show_default=True,
    help="promote when the 95% lower bound of candidate - current is at least -margin",
)
@click.option("--min-turns", type=int, default=20, show_default=True, help="new logged turns needed to try")
@click.option(
    "--shuffle-rewards",
    is_flag=True,
    help="train on shuffled accepts (a deliberately worse candidate: checks the gate)",
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@TENANT
@ADAPTER
@click.option("--steps", type=click.IntRange(1), default=8, show_default=True, help="--adapter: KTO optimiser steps")
@click.option(
    "--learning-rate", type=click.FloatRange(0, min_open=True), default=1e-4, show_default=True, help="--adapter: KTO"
)
@click.option(
    "--shuffle-labels",
    is_flag=True,
    help="--adapter: train on labels permuted at random (a deliberately worse candidate: checks the gate)",
)
@click.option(
    "--flip-labels", is_flag=True, help="--adapter: train on inverted labels (a deliberately worse candidate)"
)
@click.option(
    "--max-length", type=click.IntRange(64), default=1024, show_default=True, help="--adapter: tokens per example"
)
@click.pass_context
def learn(
    ctx,
    holdout,
    folds,
    margin,
    min_turns,
    shuffle_rewards,
    as_json,
    tenant,
    adapter,
    steps,
    learning_rate,
    shuffle_labels,
    flip_labels,
    max_length,
) -> None:
    """Build a candidate ranking policy (the bandit) from the store's ranking log and votes, compare
    it with the current one by IPS and doubly robust estimates on the new logged turns, cross-fitted
    (paired 95% intervals, a cluster bootstrap over customers), and promote it only if not worse.
    Every candidate is kept as a version.

    With --adapter: build a candidate LoRA adapter by KTO from the voted turns instead, and gate it
    by its reward margin on the newest ones (docs/feedback.md)."""
    if ctx.invoked_subcommand is not None:
        return
    if adapter:
        from chatrec.train.kto import KTOParams

        params = KTOParams(steps=steps, learning_rate=learning_rate, max_length=max_length)
        _learn_adapter(ctx, tenant, holdout, margin, min_turns, as_json, params, shuffle_labels, flip_labels)
        return
    from chatrec.eval.offpolicy import learn_and_gate, report_text

    settings, store, versions = _versions(ctx, tenant)
    result = learn_and_gate(
        versions,
        _shop_ranking_log(settings, store, tenant),
        store.feedback(),
        folds=folds,
        margin=margin,
        min_turns=min_turns,
        shuffle_rewards=shuffle_rewards,
        position_bias=settings.ranking.position_bias,
    )
    click.echo(json.dumps(result.report, indent=2) if as_json else report_text(result.report))
    if settings.ranking.policy != "bandit":
        click.echo('note: ranking.policy is "fusion"; live turns use a promoted version once it is "bandit"')


@learn.command()
@TENANT
@ADAPTER
@click.pass_context
def rollback(ctx, tenant, adapter) -> None:
    """Make the version before the current one current again (running chatbots on the store follow;
    --adapter: the adapter folder is rewritten, engines load it at their next start)."""
    _, _, versions = _adapter_versions(ctx, tenant) if adapter else _versions(ctx, tenant)
    try:
        now = versions.rollback()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    what = "adapter" if adapter else "policy"
    click.echo(f"current {what}: {now or ('none' if adapter else 'untrained (no version)')}")


@learn.command()
@TENANT
@ADAPTER
@click.pass_context
def status(ctx, tenant, adapter) -> None:
    """The saved versions, their gate figures, and which one is current."""
    _, _, versions = _adapter_versions(ctx, tenant) if adapter else _versions(ctx, tenant)
    current = versions.current()
    for meta in versions.store.policy_versions(versions.kind):
        v = meta["version"]
        mark = "*" if v == current else " "
        click.echo(
            f"{mark} {v}  {meta['created_at']}  parent {meta['parent']}  learned up to turn {meta['learned_turn']}"
            f"  {json.dumps(meta.get('gate', {}))}"
        )
    if current is None:
        click.echo(
            "current: none ("
            + ("llm.adapter as configured" if adapter else "the untrained bandit = the fused order")
            + ")"
        )


def register(main: click.Group) -> None:
    main.add_command(learn)
