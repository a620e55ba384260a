"""The Gradio chat UI: streamed replies, recommendation panel, user picker, thumbs feedback.

Model and catalogue text is escaped before it reaches Markdown, so nothing a
user or a catalogue row contains is rendered as HTML.
"""

import html
from typing import Any, Iterator

from chatrec.chatbot import Chatbot, InputRejected, ResultEvent, TokenEvent
from chatrec.types import TurnResult

GUEST = "guest (no history)"


def message_text(content: Any) -> str:
    """Text of a Gradio 6 message ``content``: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, (list, tuple)):
        return "".join(message_text(p) for p in content)
    return ""


def escape(text: str) -> str:
    return html.escape(text).replace("*", "&#42;").replace("_", "&#95;").replace("`", "&#96;").replace("[", "&#91;")


def recommendations_markdown(result: TurnResult | None) -> str:
    if result is None or not result.recommendations:
        return "_No recommendations for this turn._"
    out = []
    for r in result.recommendations:
        price = "" if r.price is None else f"${r.price:.2f} · "
        out.append(f"**{escape(r.title)}** — {price}`{escape(r.item_id)}` · score {r.score:.2f}  \n{escape(r.reason)}")
        for p in r.evidence.kg_paths:
            out.append(f"  \n↳ KG: {escape(p)}")
        if r.evidence.history_items:
            out.append(f"  \n↳ from your history: {escape(', '.join(r.evidence.history_items))}")
        out.append("\n\n")
    grounding = result.trace.get("grounding", {})
    if grounding.get("planned"):
        note = "as planned: " + grounding["planned"]
    elif grounding.get("fallback"):
        note = "template fallback: " + "; ".join(grounding.get("problems", []))
    else:
        note = "generated"
    out.append(f"<small>route: {result.route} · template: {result.template_id or '-'} · {escape(note)}</small>")
    return "".join(out)


def respond(
    bot: Chatbot, message: str, history: list[dict], user_choice: str, session: dict
) -> Iterator[tuple[list[dict], str, dict, str]]:
    """The chat callback: yields (history, recommendations, session, textbox) as the reply streams."""
    user_id = None if user_choice in (None, "", GUEST) else user_choice.split(" ", 1)[0]
    session = dict(session or {})
    if session.get("user_id") != user_id or not session.get("conversation_id"):
        session = {"user_id": user_id, "conversation_id": bot.new_conversation(user_id), "turn_ids": []}
        history = []
    history = [{"role": h["role"], "content": message_text(h["content"])} for h in history]
    history = history + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
    try:
        for ev in bot.stream(message, session["conversation_id"], user_id):
            if isinstance(ev, TokenEvent):
                history[-1]["content"] += ev.text
                yield history, "_…_", session, ""
            elif isinstance(ev, ResultEvent):
                history[-1]["content"] = ev.result.text
                session["turn_ids"] = session.get("turn_ids", []) + [ev.result.turn_id]
                yield history, recommendations_markdown(ev.result), session, ""
    except InputRejected as exc:
        history[-1]["content"] = f"Sorry, I can't take that message: {exc}."
        yield history, "", session, ""


def record_like(bot: Chatbot, session: dict, index: Any, liked: bool) -> str:
    """Store thumbs feedback for the assistant message at ``index`` of the chat."""
    idx = index[0] if isinstance(index, (list, tuple)) else index
    turn_ids = (session or {}).get("turn_ids", [])
    assistant_no = int(idx) // 2
    if assistant_no >= len(turn_ids):
        return "Nothing to rate yet."
    bot.feedback(turn_ids[assistant_no], "thumbs_up" if liked else "thumbs_down")
    return "Thanks for the feedback."


def build_app(bot: Chatbot):
    import gradio as gr

    users = [GUEST] + [f"{u.id} · {u.name} ({u.segment})" for u in bot.kb.users.values()]
    with gr.Blocks(title=f"{bot.kb.shop.name} assistant") as app:
        gr.Markdown(
            f"## {escape(bot.kb.shop.name)} assistant\nAsk about orders, returns, warranty — or for product advice."
        )
        session = gr.State({})
        with gr.Row():
            with gr.Column(scale=3):
                user = gr.Dropdown(users, value=GUEST, label="Chatting as")
                chat = gr.Chatbot(label="Conversation", height=460)
                box = gr.Textbox(
                    placeholder="e.g. Can you recommend a case for my Pixel 8?",
                    label="Message",
                    max_length=bot.settings.max_message_chars,
                )
                status = gr.Markdown("")
            with gr.Column(scale=2):
                recs = gr.Markdown("_Recommendations appear here._", label="Recommended items")

        def _respond(message, history, user_choice, sess):
            if not message or not message.strip():
                yield history, gr.skip(), sess, message
                return
            yield from respond(bot, message, history or [], user_choice, sess)

        def _like(sess, data: gr.LikeData):
            return record_like(bot, sess, data.index, bool(data.liked))

        def _reset(_choice):
            return [], "_Recommendations appear here._", {}

        box.submit(_respond, [box, chat, user, session], [chat, recs, session, box])
        chat.like(_like, [session], [status])
        user.change(_reset, [user], [chat, recs, session])
    return app
