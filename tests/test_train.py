import json
from pathlib import Path

import pytest

from chatrec.kb import is_heldout
from chatrec.llm.fake import FakeLLM
from chatrec.pipeline import Chatbot
from chatrec.train import TrainConfig, TrainingError, build_examples, train

TINY = Path(__file__).parent / "fixtures" / "kb_tiny"


def test_examples_use_the_inference_prompt_and_the_logged_items(fake_bot):
    train_ex = build_examples(fake_bot, heldout=False)
    held = build_examples(fake_bot, heldout=True)
    assert train_ex and held
    assert not {e["conversation_id"] for e in train_ex} & {e["conversation_id"] for e in held}
    assert all(is_heldout(e["conversation_id"]) for e in held)
    ex = next(e for e in train_ex if "Items to recommend:" in e["prompt"][-1]["content"])
    assert ex["prompt"][0]["role"] == "system" and ex["completion"][0]["role"] == "assistant"
    conv = next(c for c in fake_bot.kb.transcripts if c.conversation_id == ex["conversation_id"])
    shown = {i for t in conv.turns for i in t.recommended}
    listed = {line.split("]")[0][3:] for line in ex["prompt"][-1]["content"].splitlines() if line.startswith("- [")}
    assert listed and listed <= shown  # the prompt lists what the logged agent showed


def test_too_little_data_is_a_clear_error(tmp_path, shared_index):
    from chatrec.kb import load_kb

    from chatrec.config import load_settings

    settings = load_settings(kb_dir=str(TINY), data_dir=str(tmp_path / "state"), llm={"backend": "fake"})
    bot = Chatbot(settings, llm=FakeLLM(), kb=load_kb(TINY), index=shared_index)
    with pytest.raises(TrainingError, match="need at least 8"):
        train(bot, tmp_path / "adapter", TrainConfig(max_steps=1))
    assert not (tmp_path / "adapter").exists()


@pytest.mark.slow
def test_one_qlora_step_writes_an_adapter_with_its_card(tmp_path, fake_bot):
    out = tmp_path / "adapter"
    card = train(fake_bot, out, TrainConfig(max_steps=1, max_eval_examples=2, eval_steps=10))
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    saved = json.loads((out / "chatrec_card.json").read_text())
    assert saved["data"]["kb_hash"] == fake_bot.kb.fingerprint() and saved["metrics"]["steps"] == 1
    assert card["metrics"]["eval_loss"] > 0
    assert not out.with_name(out.name + ".tmp").exists() and not out.with_name(out.name + ".work").exists()
