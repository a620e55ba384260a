"""Issue 15 item 1: the KB's own fine-tuned adapter by default, its card checked on load, and a
training that rebuilds it bit for bit."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest

from chatrec.config import EMBEDDED_LLM, load_settings
from chatrec.kb import load_kb
from chatrec.llm.adapter_card import kb_hash, read_card
from tests_support import KB_DIR, REPO, TINY

SHIPPED = REPO / "kb" / "adapter"
KB_FILES = ("shop.json", "catalogue.jsonl", "templates.jsonl", "kg.tsv", "users.jsonl", "events.jsonl")


def _kb_with_adapter(tmp_path: Path, card: dict | None = None) -> Path:
    kb = tmp_path / "kb"
    shutil.copytree(TINY, kb)
    (kb / "adapter").mkdir()
    (kb / "adapter" / "adapter_model.safetensors").write_bytes(b"not read by these tests")
    (kb / "adapter" / "chatrec_card.json").write_text(json.dumps(card or {}))
    return kb


def test_llm_adapter_unset_uses_the_kbs_own_adapter_and_none_gives_the_base_model(tmp_path):
    kb = _kb_with_adapter(tmp_path)
    assert load_settings(kb_dir=str(kb)).llm.adapter == str(kb / "adapter")
    assert load_settings(kb_dir=str(kb), llm={"adapter": "none"}).llm.adapter is None
    assert load_settings(kb_dir=str(kb), llm={"adapter": str(tmp_path)}).llm.adapter == str(tmp_path)
    assert load_settings(kb_dir=str(kb), llm={"backend": "fake"}).llm.adapter is None  # the scripted test model
    assert load_settings(kb_dir=str(TINY)).llm.adapter is None  # a KB without an adapter: the base model


def test_the_kb_hash_covers_only_the_files_training_reads(tmp_path):
    assert kb_hash(KB_DIR) == load_kb(KB_DIR).fingerprint()
    kb = _kb_with_adapter(tmp_path)
    before = kb_hash(kb)
    (kb / "adapter" / "adapter_model.safetensors").write_bytes(b"retrained")
    (kb / "README.md").write_text("notes")
    assert kb_hash(kb) == before
    with (kb / "transcripts.jsonl").open("a") as f:
        f.write("\n")
    assert kb_hash(kb) != before


def test_a_kb_changed_since_training_is_a_warning_naming_the_rebuild_command(tmp_path, caplog):
    from chatrec.llm.transformers_backend import check_adapter

    rebuild = "chatrec --kb kb train --out kb/adapter"
    kb = _kb_with_adapter(tmp_path, {"base_model": EMBEDDED_LLM, "rebuild": rebuild, "data": {}})
    card = read_card(kb / "adapter")
    card["data"]["kb_hash"] = kb_hash(kb)
    (kb / "adapter" / "chatrec_card.json").write_text(json.dumps(card))
    with caplog.at_level(logging.WARNING):
        assert check_adapter(kb / "adapter", EMBEDDED_LLM, kb) is True
    assert not caplog.records
    (kb / "templates.jsonl").write_text((kb / "templates.jsonl").read_text() + "\n")
    with caplog.at_level(logging.WARNING):
        assert check_adapter(kb / "adapter", EMBEDDED_LLM, kb) is True  # stale, still applied
    (warning,) = [r.getMessage() for r in caplog.records]
    assert card["data"]["kb_hash"] in warning and kb_hash(kb) in warning and rebuild in warning


def test_the_kbs_adapter_on_another_base_model_is_a_warning_not_a_crash(tmp_path, caplog):
    from chatrec.llm.transformers_backend import ModelUnavailable, check_adapter

    kb = _kb_with_adapter(tmp_path, {"base_model": EMBEDDED_LLM, "rebuild": "chatrec train --out kb/adapter"})
    with caplog.at_level(logging.WARNING):
        assert check_adapter(kb / "adapter", "some/other-model", kb) is False  # served without it
    (warning,) = [r.getMessage() for r in caplog.records]
    assert EMBEDDED_LLM in warning and "some/other-model" in warning and "chatrec train --out kb/adapter" in warning
    with pytest.raises(ModelUnavailable, match="trained on"):  # an adapter asked for by name is still refused
        check_adapter(kb / "adapter", "some/other-model", tmp_path / "another-kb")


def test_the_demo_kb_ships_a_small_adapter_whose_card_matches_the_demo_kb():
    if not (SHIPPED / "adapter_model.safetensors").is_file():
        pytest.skip("kb/adapter not built")
    card = read_card(SHIPPED)
    assert card["base_model"] == EMBEDDED_LLM
    assert card["data"]["kb_hash"] == kb_hash(REPO / "kb"), (
        f"kb/ changed since kb/adapter was trained: {card['rebuild']}"
    )
    assert (SHIPPED / "adapter_model.safetensors").stat().st_size <= 3.2e6
    weights = hashlib.sha256((SHIPPED / "adapter_model.safetensors").read_bytes()).hexdigest()
    assert card["adapter_sha256"] == weights
    assert "chatrec" in card["rebuild"] and "train" in card["rebuild"] and "--out kb/adapter" in card["rebuild"]
    assert card["data"]["examples"].startswith("the KB's training conversations")
    assert card["metrics"]["steps"] == card["config"]["max_steps"] and card["config"]["time_budget_s"] is None


def test_training_twice_with_the_same_inputs_and_seed_gives_identical_adapter_bytes(tmp_path):
    """Item 1's bit-for-bit rebuild, on a tiny model: two trainings (2 steps, dropout on, shuffled
    data) write byte-identical ``adapter_model.safetensors``."""
    pytest.importorskip("trl")
    from types import SimpleNamespace

    from chatrec.train.sft import TrainConfig, train
    from tests_support import make_tiny_model

    model = make_tiny_model(tmp_path / "tiny")
    settings = load_settings(
        kb_dir=str(KB_DIR),
        data_dir=str(tmp_path / "state"),
        llm={"backend": "fake", "model": str(model), "quantization": "none"},
    )
    bot = SimpleNamespace(settings=settings, kb=load_kb(KB_DIR))
    system = {"role": "system", "content": "You are the shop's assistant."}
    examples = [
        {
            "prompt": [system, {"role": "user", "content": f"Where is order {i}?"}],
            "completion": [{"role": "assistant", "content": f"Order {i} ships within 3-5 business days."}],
        }
        for i in range(12)
    ]
    cfg = TrainConfig(max_steps=2, lora_r=4, lora_alpha=8, eval_steps=10, save_steps=10, learning_rate=1e-2)
    digests = []
    for run in ("a", "b"):
        card = train(bot, tmp_path / run, cfg, examples=(examples, examples[:2]), command=f"run {run}")
        digests.append(hashlib.sha256((tmp_path / run / "adapter_model.safetensors").read_bytes()).hexdigest())
        assert card["adapter_sha256"] == digests[-1]
    assert digests[0] == digests[1]
