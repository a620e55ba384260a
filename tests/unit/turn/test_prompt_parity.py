"""The live turn, training and evaluation build byte-identical prompts for the same logged turn.

All three plan through one :class:`~chatrec.turn.plan.Planner` and advance logged
conversations through one :func:`~chatrec.turn.replay.replay`; this test holds them to it.
For each agent turn of some demo conversations it records the prompt evaluation's full
system planned, the prompt of the training example, and the prompt a live
:class:`~chatrec.chatbot.Chatbot` sends to its model when its stored state is the
replayed state before that turn and the customer sends the raw logged message.
Training shows the logged agent's own items and template, so it is compared where the
log and the live router agree (a service turn answered with the template the router
picks); evaluation ranks at every recommendation turn, so it is compared wherever the
live router recommends too.
"""

from __future__ import annotations

import json
import sqlite3

from chatrec.chatbot import Chatbot
from chatrec.eval.fusion import fold_of
from chatrec.eval.options import EvalOptions
from chatrec.eval.replay import Replayer
from chatrec.llm.fake import FakeLLM
from chatrec.train.examples import build_examples
from chatrec.turn.replay import replay
from tests_support import fake_settings


def _exact(messages) -> str:
    return json.dumps(messages, ensure_ascii=False, sort_keys=True)


def test_live_training_and_evaluation_prompts_are_byte_identical(tmp_path, kb, shared_index):
    settings = fake_settings(tmp_path)
    llm = FakeLLM()
    bot = Chatbot(settings, llm=llm, kb=kb, index=shared_index)
    convs = [c for c in kb.transcripts if sum(t.role == "agent" for t in c.turns) >= 3][:12]
    assert len(convs) == 12

    # evaluation: record every plan of the full system
    replayer = Replayer(
        settings,
        EvalOptions("-", str(tmp_path / "eval"), ablations=[], baselines=False),
        frozenset(),
        planner=bot.planner,
    )
    evaluated: dict[tuple[str, str], str] = {}
    plan = bot.planner.plan

    def recording(turn, options=None, trace=None):
        result = plan(turn, options, trace) if options is not None else plan(turn, trace=trace)
        evaluated[(turn.text, _exact(turn.state.history))] = _exact(result.messages)
        return result

    bot.planner.plan = recording  # type: ignore[method-assign]
    try:
        for conv in convs:
            replayer.conversation(conv)
    finally:
        del bot.planner.plan
    bot.ranker.behaviour = replayer.behaviours[0]  # the same behaviour statistics as the replay

    trained = {}
    for ex in build_examples(bot.planner, conversation_ids=[c.conversation_id for c in convs]):
        trained.setdefault(ex["conversation_id"], []).append(_exact(ex["prompt"]))

    same_as_train = same_as_eval = 0
    for conv in convs:
        bot.ranker.behaviour = replayer.behaviours[fold_of(conv.conversation_id)]
        examples = iter(trained[conv.conversation_id])
        for step in replay(conv, bot.planner):
            if not step.input.text:
                continue
            # live: the stored state is the replayed one; the customer sends the raw logged text
            pending = []
            for t in reversed(conv.turns[: step.index]):
                if t.role != "user":
                    break
                pending.insert(0, t.text)
            raw = " ".join(pending)
            cid = bot.store.new_conversation(conv.user_id)
            with sqlite3.connect(settings.db_path) as db:  # the conversation started when the logged one did
                db.execute("UPDATE conversations SET created_at = ? WHERE id = ?", (conv.started_at.isoformat(), cid))
            bot.store.save_turn(cid, step.input.state.model_dump(), "", "", "service", None, [], {})
            result = bot.ask(raw, cid, conv.user_id)
            live = _exact(llm.calls[-1])
            example = next(examples)
            step.continue_with(bot.planner.plan(step.input).state)

            agent = step.agent
            if not agent.recommended and agent.template_id and result.template_id == agent.template_id:
                assert example == live, f"training prompt differs at {conv.conversation_id} turn {step.index}"
                same_as_train += 1
            key = (step.input.text, _exact(step.input.state.history))
            if key in evaluated and (result.route in ("recommend", "both")) == bool(agent.recommended):
                assert evaluated[key] == live, f"evaluation prompt differs at {conv.conversation_id} turn {step.index}"
                same_as_eval += 1
    assert same_as_train >= 5 and same_as_eval >= 10, (same_as_train, same_as_eval)
