"""End to end with the real embedded models: SmolLM2-135M in 4-bit NF4 (bitsandbytes),
MiniLM embeddings, a persistent Chroma index, the KG and SQLite. No fakes."""

import json

import pytest
from click.testing import CliRunner

from tests_support import assert_allowed

pytestmark = pytest.mark.slow


def test_model_is_really_4bit(real_bot):
    import bitsandbytes as bnb

    layers = [m for m in real_bot.llm.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and layers[0].weight.quant_type == "nf4"


def test_multi_turn_service_then_compatible_recommendation_then_brand_exclusion(real_bot, alias):
    bot = real_bot
    pixel = alias("pixel 8")

    r1 = bot.ask("Hi, how do I return my headphones?", user_id="U002")
    assert r1.route == "service"
    assert bot.kb.templates[r1.template_id].intent == "return_item"
    assert r1.trace["generation"]["tokens"] > 0  # the real model generated
    if r1.trace["grounding"]["fallback"]:
        assert r1.text.startswith(bot.kb.templates[r1.template_id].text[:25])

    r2 = bot.ask("Can you recommend a case for my Pixel 8?", r1.conversation_id, "U002")
    assert r2.route == "recommend" and r2.recommendations
    compatible = bot.kg.items_linked(pixel, "compatible_with")
    for rec in r2.recommendations:
        assert rec.item_id in compatible and bot.kb.items[rec.item_id].in_stock
        assert rec.evidence.kg_paths and "compatible_with" in rec.evidence.kg_paths[0]
        assert rec.reason
    assert_allowed(bot, r2, "U002")

    banned = r2.recommendations[0].brand
    r3 = bot.ask("not that brand", r1.conversation_id, "U002")
    assert r3.recommendations
    assert all(rec.brand != banned and rec.item_id in compatible for rec in r3.recommendations)
    # whatever the model wrote, the shown text cites only listed items
    listed = {rec.item_id for rec in r3.recommendations}
    assert all(i in listed for i in bot.kb.items if i in r3.text)

    rows = bot.store.turns(r1.conversation_id)
    assert [row["route"] for row in rows] == ["service", "recommend", "recommend"]
    assert json.loads(rows[2]["result_json"])["trace"]["rank"]["constraints"]["brands_out"] == [banned]


def test_gradio_chat_function_streams_with_the_real_model(real_bot):
    from chatrec.ui.gradio_app import respond

    updates = list(respond(real_bot, "Do you have wireless earbuds for running?", [], "U005 · z", {}))
    assert len(updates) > 3
    assert updates[-1][0][-1]["content"] and "_No recommendations" not in updates[-1][1]


def test_cli_ask_json_with_the_real_model(tmp_path, monkeypatch):
    from chatrec.cli.main import main

    out = CliRunner().invoke(main, ["ask", "What payment methods do you accept?", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert (
        data["route"] == "service"
        and data["template_id"]
        and data["trace"]["generation"]["backend"].startswith("transformers")
    )


def test_ranking_scores_with_a_shared_prefix_cache_equal_full_prompts(real_bot, kb):
    """The ranker's Yes/No scores reuse the KV cache of the tokens all prompts share
    (profile, request); they must equal scoring every prompt in full."""
    from chatrec.turn.compose import load_prompts
    from chatrec.turn.profile import profile_text

    profile = profile_text(kb, "U003")
    items = list(kb.items.values())[:20]  # more than one scoring chunk
    prompts = [
        [
            {
                "role": "user",
                "content": load_prompts().render(
                    "rank.j2",
                    profile=profile,
                    request="Can you recommend a wireless charger?",
                    item=f"{it.title} ({it.brand}, {it.category})",
                ),
            }
        ]
        for it in items
    ]
    shared = real_bot.llm.score_choices(prompts, ["Yes", "No"])
    full = real_bot.llm.score_choices(prompts, ["Yes", "No"], share_prefix=False)
    assert len(shared) == len(full) == 20
    # The two paths feed the NF4 matmuls different shapes (each prompt's tail after the
    # cached prefix vs whole left-padded prompts). Measured max |shared - full| over these
    # 20 x 2 log-probabilities (AMD EPYC, bitsandbytes 0.50.2, torch 2.13 CPU), 5 runs each:
    # - bitsandbytes' fused bf16 kernel (used on CPUs with AVX512-BF16: activations cast to
    #   bf16): 0.0559 in every run, idle (load ~1) and beside a `while True: pass` process
    #   (load 5-7), with 1 and with 2 torch threads -- deterministic, neither load nor thread
    #   dependent: bf16 rounding that depends on the batch shape (scoring the same prompts
    #   one at a time differs from the full batch by up to 0.05 too). Tolerance 0.1, about
    #   1.8x that; a broken cache (tail positions not offset by the prefix) differs by 3.04.
    # - dequantise-to-fp32 path (CPUs without AVX512-BF16): 1.6e-5 (load 5-7). Tolerance 1e-3.
    import bitsandbytes as bnb

    bf16_kernel = any(
        getattr(m, "support_avx512bf16_for_cpu", False)
        for m in real_bot.llm.model.modules()
        if isinstance(m, bnb.nn.Linear4bit)
    )
    tol = 0.1 if bf16_kernel else 1e-3
    for a, b in zip(shared, full):
        assert a == pytest.approx(b, abs=tol)
    assert len({round(y - n, 4) for y, n in shared}) > 1  # the candidates really differ
