from chatrec.ui.gradio_app import message_text, recommendations_markdown, record_like, respond


def test_gradio_chat_function_streams_and_shows_recommendations(fake_bot):
    updates = list(respond(fake_bot, "Can you recommend a case for my Pixel 8?", [], "U001 · x", {}))
    assert len(updates) > 3  # token by token, then the final result
    partial = [u[0][-1]["content"] for u in updates[:-1]]
    assert all(len(a) <= len(b) for a, b in zip(partial, partial[1:]))
    history, recs_md, session, box = updates[-1]
    assert history[-1]["role"] == "assistant" and history[-1]["content"]
    assert "KG:" in recs_md and session["user_id"] == "U001" and box == ""


def test_history_with_gradio6_content_parts_is_accepted(fake_bot):
    first = list(respond(fake_bot, "hi", [], "guest (no history)", {}))[-1]
    history = [{"role": h["role"], "content": [{"type": "text", "text": h["content"]}]} for h in first[0]]
    last = list(respond(fake_bot, "how do I return my headphones?", history, "guest (no history)", first[2]))[-1]
    assert [h["content"] for h in last[0][:2]] == [message_text(h["content"]) for h in history]
    assert len(last[2]["turn_ids"]) == 2


def test_thumbs_are_stored_on_the_right_turn(fake_bot):
    *_, (history, _, session, _) = respond(fake_bot, "how do I return my headphones?", [], "U002 · y", {})
    assert record_like(fake_bot, session, 1, True) == "Thanks for the feedback."
    fb = fake_bot.store.feedback(session["turn_ids"][0])
    assert [f["kind"] for f in fb] == ["thumbs_up"]


def test_markdown_escapes_model_and_catalogue_text(fake_bot):
    r = fake_bot.ask("Can you recommend a case for my Pixel 8?")
    evil = r.recommendations[0].model_copy(
        update={"title": "<img src=x onerror=alert(1)>", "reason": "*[x](javascript:1)*"}
    )
    md = recommendations_markdown(r.model_copy(update={"recommendations": [evil]}))
    assert "<img" not in md and "&lt;img" in md and "[x](" not in md


def test_build_app_constructs(fake_bot):
    from chatrec.ui.gradio_app import build_app

    assert build_app(fake_bot) is not None
