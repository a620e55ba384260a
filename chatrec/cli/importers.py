"""``chatrec import``: QA logs (CSV / JSON Lines) -> KB transcripts and seed templates;
``chatrec import-redial``: the ReDial movie dialogues (and their DBpedia graph) -> a whole KB;
``chatrec import-inspired``: the INSPIRED movie dialogues and their movie database -> a whole KB.

Wired into the main command group by ``register(main)`` in chatrec/cli/main.py.
"""

from __future__ import annotations

import click

MAX_REASONS_SHOWN = 20


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="KB folder to write transcripts.jsonl and templates.jsonl into (created if missing)",
)
@click.option(
    "--preset",
    type=click.Choice(["bitext", "generic"]),
    default="generic",
    show_default=True,
    help="column layout: bitext = instruction/response/intent; generic = user/agent",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default=None,
    help="input format [default: from the file name, else sniffed]",
)
@click.option("--user-col", help="column with the customer's message")
@click.option("--agent-col", help="column with the agent's answer")
@click.option("--conversation-col", help="column with a conversation id (rows sharing it become one conversation)")
@click.option("--user-id-col", help="column with the customer's id")
@click.option("--intent-col", help="column with the intent")
@click.option("--template-col", help="column with a template id (groups answers into templates explicitly)")
@click.option("--timestamp-col", help="column with a timestamp (ISO 8601 or epoch seconds)")
@click.option(
    "--encoding",
    default="auto",
    show_default=True,
    help="input encoding; auto = UTF-8 with or without BOM, anything else is refused",
)
@click.option("--template-prefix", default=None, help="template ids are PREFIX_<intent> [default: the preset]")
@click.option(
    "--similarity",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.8,
    show_default=True,
    help="with --link-similar-only: Jaccard similarity at which an answer counts as its intent's template",
)
@click.option(
    "--link-similar-only",
    is_flag=True,
    help="link only answers near-identical to the template (default: every row of an intent is linked to it)",
)
@click.option(
    "--overwrite",
    "on_existing",
    flag_value="overwrite",
    help="replace transcripts.jsonl / templates.jsonl already in --out",
)
@click.option(
    "--merge", "on_existing", flag_value="merge", help="keep rows already in --out, replacing those with the same ids"
)
@click.option("--no-progress", is_flag=True, help="no progress bar")
def import_cmd(
    path,
    out_dir,
    preset,
    fmt,
    user_col,
    agent_col,
    conversation_col,
    user_id_col,
    intent_col,
    template_col,
    timestamp_col,
    encoding,
    template_prefix,
    similarity,
    link_similar_only,
    on_existing,
    no_progress,
):
    """Import a question-answer log (CSV or JSON Lines) as KB transcripts and seed answer templates.

    Every text is PII-masked; bad rows are reported as file:line: reason and skipped.
    """
    from chatrec.importers import get_importer
    from chatrec.importers.qa_logs import PRESETS, mapping_with
    from chatrec.importers.staging import ImportFailed

    import_file = get_importer("qa-logs")

    mapping = mapping_with(
        PRESETS[preset],
        user=user_col,
        agent=agent_col,
        conversation=conversation_col,
        user_id=user_id_col,
        intent=intent_col,
        template_id=template_col,
        timestamp=timestamp_col,
    )
    try:
        rep = import_file(
            path,
            out_dir,
            preset=preset,
            mapping=mapping,
            fmt=fmt,
            encoding=encoding,
            template_prefix=template_prefix,
            similarity=similarity,
            link_all=not link_similar_only,
            on_existing=on_existing or "error",
            progress=not no_progress,
        )
    except ImportFailed as exc:
        msg = str(exc)
        if "choose to overwrite or merge" in msg:
            msg = msg.replace("choose to overwrite or merge", "pass --overwrite or --merge")
        raise click.ClickException(msg) from exc
    click.echo(
        f"{rep.source} ({rep.encoding}): {rep.rows_read} rows read, {rep.rows_imported} imported, "
        f"{len(rep.skipped)} skipped"
    )
    click.echo(
        f"{rep.out_dir}: {rep.conversations} conversations, {rep.turns} turns, {rep.templates} templates "
        f"({rep.turns_with_template} agent turns linked to a template), {len(rep.slots)} slots "
        f"in {rep.seconds:.1f}s"
    )
    _echo_skipped(rep.skipped)
    for warning in rep.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.command("import-redial")
@click.argument("dialogues", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--movies",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="the catalogue, movies_with_mentions.csv (movieId,movieName,nbMentions)",
)
@click.option(
    "--kg",
    "triples",
    type=click.Path(exists=True, dir_okay=False),
    help="DBpedia triples, subkg_triples.tsv (head_uri, relation_id, tail_uri); needs --kg-map",
)
@click.option(
    "--kg-map",
    "movie_uris",
    type=click.Path(exists=True, dir_okay=False),
    help="movieId -> DBpedia URI, redial_movie_to_dbpedia.tsv; needs --kg",
)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="KB folder to write (created if missing)"
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="read only the first N dialogue lines")
@click.option("--overwrite", is_flag=True, help="replace the KB files already in --out")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def import_redial_cmd(dialogues, movies, triples, movie_uris, out_dir, limit, overwrite, no_progress):
    """Import ReDial dialogues (JSON Lines) and their movie catalogue as a whole KB.

    Malformed dialogues and bad catalogue or graph rows are reported as file:line: reason and skipped.
    """
    from pathlib import Path

    from chatrec.importers import get_importer
    from chatrec.importers.staging import ImportFailed

    import_redial = get_importer("redial")

    if (triples is None) != (movie_uris is None):
        raise click.UsageError("--kg and --kg-map go together")
    try:
        rep = import_redial(
            Path(dialogues),
            Path(movies),
            Path(out_dir),
            triples=Path(triples) if triples else None,
            movie_uris=Path(movie_uris) if movie_uris else None,
            limit=limit,
            overwrite=overwrite,
            progress=not no_progress,
        )
    except ImportFailed as exc:
        raise click.ClickException(str(exc).replace("choose to overwrite", "pass --overwrite")) from exc
    unknown = rep.unknown_mentions
    click.echo(
        f"{rep.dialogues}: {rep.dialogues_read} dialogues read, {rep.conversations} imported, "
        f"{len(rep.skipped)} rows skipped in all"
    )
    click.echo(
        f"{rep.out_dir}: {rep.items} items, {rep.triples} triples, {rep.users} users, "
        f"{rep.conversations} conversations, {rep.turns} turns, {rep.recommendation_turns} recommendation "
        f"turns ({rep.accepted} accepted items) in {rep.seconds:.1f}s"
    )
    click.echo(
        f"{rep.leading_agent_turns_dropped} leading recommender turns dropped, "
        f"{sum(unknown.values())} mentions of {len(unknown)} movie ids not in the catalogue dropped"
    )
    _echo_skipped(rep.skipped)


@click.command("import-inspired")
@click.argument("dialogues", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--movies",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="the movie database, movie_database.tsv (video_id, title, year, genre, actors, director, short_plot)",
)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="KB folder to write (created if missing)"
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="import only the first N dialogues")
@click.option("--overwrite", is_flag=True, help="replace the KB files already in --out")
def import_inspired_cmd(dialogues, movies, out_dir, limit, overwrite):
    """Import INSPIRED dialogue files (dialog_data/*.tsv) and their movie database as a whole KB.

    Bad rows are reported as file:line: reason and skipped.
    """
    from pathlib import Path

    from chatrec.importers import get_importer
    from chatrec.importers.staging import ImportFailed

    import_inspired = get_importer("inspired")
    try:
        rep = import_inspired(
            [Path(d) for d in dialogues], Path(movies), Path(out_dir), limit=limit, overwrite=overwrite
        )
    except ImportFailed as exc:
        raise click.ClickException(str(exc).replace("choose to overwrite", "pass --overwrite")) from exc
    unknown = rep.unknown_mentions
    click.echo(
        f"{', '.join(map(str, rep.dialogues))}: {rep.rows_read} rows, {rep.dialogues_read} dialogues read, "
        f"{rep.conversations} imported, {len(rep.skipped)} rows skipped in all"
    )
    click.echo(
        f"{rep.out_dir}: {rep.items} items, {rep.triples} triples, {rep.conversations} conversations, "
        f"{rep.turns} turns, {rep.recommendation_turns} recommendation turns ({rep.accepted} accepted items, "
        f"{rep.rejected} rejected recommendations) in {rep.seconds:.1f}s"
    )
    click.echo(
        f"{rep.leading_agent_turns_dropped} leading recommender turns dropped, {sum(unknown.values())} mentions of "
        f"{len(unknown)} titles not in the database dropped, {rep.targets_unknown} recommended trailer ids not in the "
        f"database, {rep.targets_not_recommended} recommended movies never named by the recommender"
    )
    _echo_skipped(rep.skipped)


def _echo_skipped(skipped: list[str]) -> None:
    if skipped:
        click.echo("skipped rows:")
        for reason in skipped[:MAX_REASONS_SHOWN]:
            click.echo(f"  {reason}")
        if len(skipped) > MAX_REASONS_SHOWN:
            click.echo(f"  ... and {len(skipped) - MAX_REASONS_SHOWN} more")


def register(main_group: click.Group) -> None:
    main_group.add_command(import_cmd)
    main_group.add_command(import_redial_cmd)
    main_group.add_command(import_inspired_cmd)
