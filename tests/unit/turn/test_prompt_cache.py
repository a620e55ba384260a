"""Prompts built for caching (issue 14 part 3): what repeats comes first and each turn only appends.

An engine with a prompt cache (llama.cpp) then reads only a turn's new tokens: the previous
exchange and this turn's context. ``benchmarks/bench_conversation.py --prompts-only`` measures
the tokens; these tests hold the structure.
"""

from __future__ import annotations

from chatrec.chatbot import Chatbot
from chatrec.llm.fake import FakeLLM
from chatrec.turn.replay import advance
from chatrec.turn.state import DialogueState
from tests_support import fake_settings

MESSAGES = [
    "Hi, how do I return my headphones?",
    "Can you recommend a case for my Pixel 8?",
    "not that brand",
    "What payment methods do you accept?",
    "I like the second one",
    "How long does shipping take?",
]


def test_each_turn_prompt_starts_with_the_previous_turns_prompt_but_its_context(tmp_path, kb, shared_index):
    llm = FakeLLM()
    bot = Chatbot(fake_settings(tmp_path, history_turns=6), llm=llm, kb=kb, index=shared_index)
    cid = bot.new_conversation("U001")
    for m in MESSAGES:
        bot.ask(m, cid, "U001")
    calls = llm.calls
    assert len(calls) >= 4
    system = calls[0][0]
    assert system["role"] == "system" and "Customer profile: Maya R." in system["content"]
    for before, after in zip(calls, calls[1:]):
        # system (profile included) and the conversation so far are the same messages, in order;
        # only the previous turn's context message is replaced by the exchange and the new turn
        assert after[: len(before) - 1] == before[:-1]
        assert after[0] == system
        assert "Customer profile" not in after[-1]["content"]


def test_what_the_customer_liked_is_this_turns_context_not_the_system_prompt(kb):
    from chatrec.turn.compose import LIKED_PREFIX, build_messages, load_prompts

    def prompt(profile: str):
        return build_messages(load_prompts(), kb.shop.name, "VW-1001", [], 6, "hi", profile, [], [], None, "chitchat")

    base = prompt("Maya R., a gamer in Austin.")
    liked = prompt("Maya R., a gamer in Austin." + LIKED_PREFIX + "Spigen Thin Fit Case for Pixel 8.")
    assert liked[0] == base[0] and "Customer profile: Maya R., a gamer in Austin." in base[0]["content"]
    assert liked[-1]["content"].startswith("Liked in this conversation: Spigen Thin Fit Case for Pixel 8\n")


def test_history_past_the_limit_drops_the_oldest_half_at_once():
    state = DialogueState()
    lengths = []
    for i in range(10):
        advance(state, f"message {i}", f"reply {i}", [], history_turns=4)
        lengths.append(len(state.history) // 2)
    # grows to 4 exchanges, then drops to 2 at once and grows again: most turns only append
    assert lengths == [1, 2, 3, 4, 2, 3, 4, 2, 3, 4]
    assert state.history[-2:] == [{"role": "user", "content": "message 9"}, {"role": "assistant", "content": "reply 9"}]


def test_history_turns_zero_and_one_keep_the_last_exchange():
    for turns in (0, 1):
        state = DialogueState()
        for i in range(3):
            advance(state, f"m{i}", f"r{i}", [], history_turns=turns)
        assert [h["content"] for h in state.history] == ["m2", "r2"]
