"""``chatrec ask`` and ``chatrec chat``: one message, or a streamed terminal chat."""

from __future__ import annotations

import sys
import time

import click

from chatrec.cli.context import make_chatbot, settings_from


def _print_result(result, as_json: bool) -> None:
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    for r in result.recommendations:
        click.echo(f"  * [{r.item_id}] {r.title} {'' if r.price is None else f'${r.price:.2f} '}- {r.reason}")
        for p in r.evidence.kg_paths:
            click.echo(f"      KG: {p}")


@click.command()
@click.argument("message")
@click.option("--user", "user_id", help="user id from kb/users.jsonl")
@click.option("--conversation", "conversation_id", help="continue this conversation")
@click.option("--adapter", help="LoRA adapter folder")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.pass_context
def ask(ctx, message, user_id, conversation_id, adapter, as_json) -> None:
    """Answer one message."""
    from chatrec.chatbot import InputRejected

    bot = make_chatbot(settings_from(ctx, adapter=adapter), progress=not as_json)
    try:
        result = bot.ask(message, conversation_id, user_id)
    except InputRejected as exc:
        raise click.UsageError(str(exc)) from exc
    if not as_json:
        click.echo(result.text)
    _print_result(result, as_json)


@click.command()
@click.option("--user", "user_id", help="user id from kb/users.jsonl")
@click.option("--adapter", help="LoRA adapter folder")
@click.option("--timing", is_flag=True, help="after each reply, its latency, time to first text and prompt tokens read")
@click.pass_context
def chat(ctx, user_id, adapter, timing) -> None:
    """Terminal chat with streamed replies. Empty line or Ctrl-D quits."""
    from chatrec.chatbot import InputRejected, ResultEvent, TokenEvent

    bot = make_chatbot(settings_from(ctx, adapter=adapter))
    cid = bot.new_conversation(user_id)
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
        t0 = time.perf_counter()
        try:
            for ev in bot.stream(message, cid, user_id):
                if isinstance(ev, TokenEvent):
                    click.echo(ev.text, nl=False)
                elif isinstance(ev, ResultEvent):
                    res = ev.result
                    click.echo("")
                    grounding = res.trace.get("grounding", {})
                    drafted = not grounding.get("planned")  # a clarifying question etc. is sent as planned
                    if drafted and (grounding.get("fallback") or grounding.get("cut")):  # shown text was checked
                        what = "grounded answer" if grounding.get("fallback") else "draft cut short"
                        click.echo(f"[{what}: {len(grounding.get('problems', []))} problem(s) in the model's draft]")
                    _print_result(res, False)
                    if timing:
                        click.echo(_timing(res.trace, time.perf_counter() - t0))
        except InputRejected as exc:
            click.echo(f"\n[rejected: {exc}]")
        sys.stdout.flush()


def _timing(trace: dict, seconds: float) -> str:
    """``[2.31 s · first text 1.02 s · prompt: 382 of 903 tokens read]`` for one turn."""
    gen = trace.get("generation", {})
    parts = [f"{seconds:.2f} s"]
    if gen.get("first_text_s"):
        parts.append(f"first text {gen['first_text_s']:.2f} s")
    if "prompt_read" in gen and "prompt_tokens" in gen:
        parts.append(f"prompt: {gen['prompt_read']} of {gen['prompt_tokens']} tokens read")
    if not gen.get("tokens"):
        parts.append("no model draft")
    return "[" + " · ".join(parts) + "]"


def register(main: click.Group) -> None:
    main.add_command(ask)
    main.add_command(chat)
