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
