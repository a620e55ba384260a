"""Reply-quality metrics of ``chatrec eval --generate`` (issue 15 item 5) on hand-made replies."""

from chatrec.eval.metrics import clarify_scores, invented_entities, logged_agent_asks
from chatrec.eval.replay import reply_quality
from chatrec.turn.facts import missing_facts, template_facts

RETURNS = (
    "You can return the item within 30 days of delivery. Print the prepaid label on voltway.example; "
    "your refund is issued within 5-7 business days. Questions about order #VW-48213? Call 1-800-555-0142."
)


def test_template_facts_are_its_numbers_amounts_times_order_numbers_and_policy_terms():
    facts = template_facts(RETURNS + " Express delivery costs $9.99 and orders over $50 ship free.")
    for fact in ("30 days", "5-7 business days", "#VW-48213", "1-800-555-0142", "$9.99", "$50", "voltway.example"):
        assert fact in facts
    assert {"prepaid", "refund", "free"} <= set(facts)
    assert template_facts("Happy to help! What else can I do for you?") == []


def test_a_reply_keeping_every_fact_in_other_words_preserves_them():
    reply = (
        "No problem: you have 30 days from delivery to send it back with the prepaid label from voltway.example, "
        "and the refund arrives in 5 to 7 business days. For order #VW-48213 call 1-800-555-0142."
    )
    missing, total = missing_facts(RETURNS, reply)
    assert missing == [] and total == len(template_facts(RETURNS))


def test_a_changed_or_dropped_fact_is_missing():
    reply = (
        "You can return it within 14 days with the prepaid label on voltway.example; the refund takes "
        "5-7 business days. Call us about order #VW-48231."  # wrong window, wrong order number, no phone
    )
    missing, _ = missing_facts(RETURNS, reply)
    assert set(missing) == {"30 days", "#VW-48213", "1-800-555-0142"}


def test_invented_entities_are_the_checks_made_up_names_phones_emails_links_dates_and_amounts():
    problems = [
        "names a person 'Sarah' who is in no template, shop fact or listed item",
        "gives a phone number '555-0199' that is not in the shop facts",
        "gives a email 'sarah@voltway.example' that is not in the shop facts",
        "gives a link 'www.example.com' that is not in the shop facts",
        "gives a date 'December 3' that no template or shop fact states",
        "quotes a price $12.00 ('$12') that is not a listed item's price or a money fact",
        "drops the template's fact '30 days'",  # not an invention
        "strays from the answer template (similarity 0.31 < 0.55)",
    ]
    assert invented_entities(problems) == ["name", "phone", "email", "url", "date", "amount"]
    assert invented_entities(["repeats itself"]) == []


def test_reply_quality_scores_the_shown_reply_and_the_draft_separately():
    def check(text):  # a stand-in for the turn's grounding check: "Sarah" is invented
        from types import SimpleNamespace

        return SimpleNamespace(problems=["names a person 'Sarah' who is in no template"] if "Sarah" in text else [])

    draft = "Hi, I'm Sarah! You can return it within 30 days."  # invents a name, drops most facts
    m = reply_quality(RETURNS, draft, RETURNS, check)  # the gate answered with the template
    assert m["service.fact_preservation"] == (1.0, 1) and m["service.draft_fact_preservation"] == (0.0, 1)
    assert m["grounding.draft_invented_rate"] == (1.0, 1) and m["grounding.invented_rate"] == (0.0, 1)
    plain = reply_quality(None, "Here are two good options.", "Here are two good options.", check)
    assert "service.fact_preservation" not in plain  # no template, no facts to keep
    assert plain["grounding.invented_rate"] == (0.0, 1)


def test_clarify_precision_and_recall_against_the_logged_agent():
    assert logged_agent_asks("Could you share your order number? Then I can check it.", "ignored")
    assert not logged_agent_asks("You can return the item within 30 days.", "Anything else?")
    assert logged_agent_asks(None, "Which phone is it for?") and not logged_agent_asks(None, "Here you go.")
    turns = [(True, True), (True, False), (False, True), (False, False), (True, True)]
    total = {"clarify.precision": [0.0, 0.0], "clarify.recall": [0.0, 0.0]}
    for asks, logged in turns:
        for k, (num, den) in clarify_scores(asks, logged).items():
            total[k][0] += num
            total[k][1] += den
    assert total["clarify.precision"] == [2.0, 3.0] and total["clarify.recall"] == [2.0, 3.0]


def test_eval_generate_reports_reply_quality_and_clarifying_questions(tmp_path):
    """``chatrec eval --generate`` on the demo's held-out conversations (scripted model): the shown
    replies keep the template's facts and invent nothing; the clarify policy is scored against the
    logged agents' questions."""
    import json

    from chatrec.config import Settings
    from chatrec.eval.options import EvalOptions
    from chatrec.eval.runner import run_eval
    from chatrec.kb import is_heldout
    from tests_support import KB_DIR

    held = [
        ln
        for ln in (KB_DIR / "transcripts.jsonl").read_text().splitlines()
        if is_heldout(json.loads(ln)["conversation_id"])
    ]
    logs = tmp_path / "held.jsonl"
    logs.write_text("\n".join(held) + "\n")
    settings = Settings(kb_dir=KB_DIR, data_dir=tmp_path / "state", llm={"backend": "fake"})
    opts = EvalOptions(
        transcripts=str(logs), out=str(tmp_path / "out"), ablations=[], baselines=False, generate=True, bootstrap=200
    )
    full = run_eval(settings, opts, progress=False)["systems"]["full"]["metrics"]
    assert full["grounding.invented_rate"]["value"] == 0.0  # what a user sees passed the check
    assert full["service.fact_preservation"]["n"] > 0 and full["service.fact_preservation"]["value"] >= 0.98
    assert 0.0 <= full["service.draft_fact_preservation"]["value"] <= 1.0
    assert full["clarify.recall"]["n"] > 0  # the held-out logs have agents asking for the order number
    rows = [json.loads(x) for x in (tmp_path / "out" / "turns.jsonl").read_text().splitlines()]
    assert rows and all("draft" in r and isinstance(r["problems"], list) for r in rows if r["system"] == "full")
    planned = [r for r in rows if r["system"] == "full" and r["planned"]]
    # a clarifying question (the held-out logs ask for order numbers) is sent as planned: no draft,
    # and it is not counted as a draft that failed
    assert all(not r["draft"] for r in planned)
    drafted = sum(1 for r in rows if r["system"] == "full" and not r["planned"])
    assert full["grounding.draft_pass_rate"]["n"] == drafted


def test_reply_quality_reports_rouge_and_cosine_of_the_generated_draft(tmp_path, kb, shared_index):
    """ROUGE-L and cosine were computed on the reply shown only, which for the base model is almost
    always the template fallback, so adapter vs base compared templates, not generated text. The
    model's draft is now scored too (``service.draft_rouge_l``, ``service.draft_cosine``) on the
    service turns the model drafted, the same turns for both generating systems, so they pair."""
    from chatrec.chatbot import build_planner
    from chatrec.config import load_settings
    from chatrec.eval.metrics import rouge_l
    from chatrec.eval.options import EvalOptions
    from chatrec.eval.replay import Replayer
    from chatrec.eval.summary import ScoreTable, compare
    from chatrec.kb import is_heldout
    from chatrec.llm.fake import FakeLLM

    # "full": a model whose drafts invent a colleague (the gate falls back to the template);
    # "-adapter": the scripted default, which drafts the template text itself (it passes)
    settings = load_settings(data_dir=str(tmp_path / "state"), llm={"backend": "fake", "adapter": "kb/adapter"})
    invents = FakeLLM(lambda messages: "Hi, I'm Sarah from support! Call me at 555-0199 tomorrow.")
    planner = build_planner(settings, kb=kb, retriever=shared_index, llm=invents)
    opts = EvalOptions(
        transcripts="unused", out=str(tmp_path / "out"), ablations=["adapter"], baselines=False, generate=True
    )
    replayer = Replayer(settings, opts, frozenset(), planner=planner)
    assert replayer.systems == ["full", "-adapter"]
    convs = [c for c in kb.transcripts if is_heldout(c.conversation_id) and not any(t.recommended for t in c.turns)]
    results = [replayer.conversation(c) for c in convs[:4]]
    rows = [r for res in results for r in res["turns"] if r["kind"] == "service"]
    drafted = [r for r in rows if r["planned"] is None]
    assert drafted and {r["system"] for r in drafted} == {"full", "-adapter"}
    by_id = {c.conversation_id: c for c in convs}
    passed = 0
    for r in rows:
        m = r["metrics"]
        if r["planned"] is not None:  # sent as planned: no draft, nothing to score
            assert "service.draft_rouge_l" not in m and "service.draft_cosine" not in m
            continue
        logged = by_id[r["conversation_id"]].turns[r["turn_index"]].text
        assert m["service.draft_rouge_l"] == round(rouge_l(r["draft"], logged), 4)
        assert m["service.rouge_l"] == round(rouge_l(r["output"], logged), 4)  # the shown reply's, kept
        assert -1.0 <= m["service.draft_cosine"] <= 1.0
        if r["system"] == "full":  # the draft failed: shown is the fallback, the draft is scored apart
            assert "Sarah" in r["draft"] and "Sarah" not in r["output"]
            assert m["service.draft_rouge_l"] < m["service.rouge_l"]
            assert m["service.draft_cosine"] < m["service.cosine"]
        elif not r["problems"]:  # the draft passed whole: it is the reply shown
            assert r["draft"] == r["output"] and m["service.draft_rouge_l"] == m["service.rouge_l"]
            passed += 1
    assert passed
    # per conversation both systems score the same draft turns, so `chatrec eval compare` pairs them
    table = ScoreTable([res["conversation_id"] for res in results], [None] * len(results))
    for res in results:
        for system, sums in res["sums"].items():
            table.put(res["conversation_id"], system, sums)
            assert sums["service.draft_rouge_l"][1] == sum(
                1 for r in drafted if r["system"] == system and r["conversation_id"] == res["conversation_id"]
            )
    table.save(tmp_path / "scores.jsonl")
    paired = compare(f"{tmp_path}:full", f"{tmp_path}:-adapter", resamples=200)["metrics"]
    n = sum(1 for r in drafted if r["system"] == "full")
    for name in ("service.draft_rouge_l", "service.draft_cosine"):
        assert paired[name]["n"] == n and paired[name]["diff"] < 0  # the inventing drafts score lower
    assert paired["service.rouge_l"]["n"] == sum(1 for r in rows if r["system"] == "full")


def test_context_ablations_generate_so_the_tokens_each_context_part_costs_are_measured(tmp_path, kb, shared_index):
    """Issue 14 item 3, "measure which parts earn their tokens": with ``--generate`` only the full
    system and ``-adapter`` generated, so removing the KG facts, the profile or the history changed
    the ranking but never the reply, and no prompt size was recorded. Every ablation of the live
    turn now generates through the same gate and reports ``cost.prompt_tokens``, so reply quality
    and prompt tokens pair per conversation with the full system's."""
    from chatrec.chatbot import build_planner
    from chatrec.config import load_settings
    from chatrec.eval.options import EvalOptions
    from chatrec.eval.replay import Replayer
    from chatrec.kb import is_heldout
    from chatrec.llm.fake import FakeLLM

    settings = load_settings(data_dir=str(tmp_path / "state"), llm={"backend": "fake"})
    planner = build_planner(settings, kb=kb, retriever=shared_index, llm=FakeLLM())
    opts = EvalOptions(
        transcripts="unused", out=str(tmp_path / "out"), ablations=["kg", "profile"], baselines=True, generate=True
    )
    replayer = Replayer(settings, opts, frozenset(), planner=planner)
    ablated = ["-kg", "-profile"]
    assert replayer.systems[:3] == ["full", *ablated]
    convs = [c for c in kb.transcripts if is_heldout(c.conversation_id) and any(t.recommended for t in c.turns)]
    rows = [r for c in convs[:3] for r in replayer.conversation(c)["turns"]]
    drafted = {s: [r for r in rows if r["system"] == s and r.get("draft")] for s in ["full", *ablated]}
    assert all(drafted.values()), {s: len(v) for s, v in drafted.items()}
    tokens = {s: sum(r["metrics"]["cost.prompt_tokens"] for r in v) for s, v in drafted.items()}
    assert all(r["metrics"]["cost.prompt_tokens"] > 0 for v in drafted.values() for r in v)
    assert tokens["-kg"] < tokens["full"]  # the KG facts are in the full prompt, and cost tokens
    baselines = [r for r in rows if r["system"] not in ("full", *ablated)]
    assert baselines and not any(r.get("draft") for r in baselines)  # baselines rank only
