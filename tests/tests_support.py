"""Helpers shared by the fake-LLM and real-model tests."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatrec.config import Settings, load_settings
from chatrec.types import Evidence, Recommendation

REPO = Path(__file__).resolve().parent.parent
KB_DIR = REPO / "kb"
TINY = REPO / "tests" / "fixtures" / "kb_tiny"


def fake_settings(tmp_path: Path, **overrides) -> Settings:
    return load_settings(kb_dir=str(KB_DIR), data_dir=str(tmp_path / "state"), llm={"backend": "fake"}, **overrides)


def assert_allowed(bot, result, user_id):
    from chatrec.turn.profile import history_of

    history = history_of(bot.kb, user_id)
    state = bot.store.load_state(result.conversation_id)
    c = state["constraints"]
    for rec in result.recommendations:
        item = bot.kb.items[rec.item_id]  # exists
        assert item.in_stock, rec.item_id
        assert item.id not in history.owned, rec.item_id
        assert item.brand not in c["brands_out"], (item.brand, c)
        assert c["max_price"] is None or item.price <= c["max_price"]
        assert rec.price == item.price and rec.title == item.title


def make_tiny_model(folder: Path) -> Path:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer: trains in milliseconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from chatrec.config import load_settings
    from chatrec.models import llm_path

    s = load_settings()
    tok = AutoTokenizer.from_pretrained(llm_path(s.llm.model, s.cache_dir))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make_random_lora(base: Path, folder: Path, seed: int = 0, std: float = 0.5) -> Path:
    """A peft LoRA on ``base`` with random non-zero weights (a fresh LoRA is a no-op), saved to ``folder``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], task_type="CAUSAL_LM")
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    peft_model.save_pretrained(folder)
    return folder


def recommendation_of(item: Any, reason: str = "r") -> Recommendation:
    """A shown recommendation of catalogue ``item`` with ``reason`` (grounding and reply tests)."""
    return Recommendation(
        item_id=item.id,
        title=item.title,
        price=item.price,
        brand=item.brand,
        category=item.category,
        score=1.0,
        reason=reason,
        evidence=Evidence(),
    )


@dataclass
class SlateItem:
    """What a ranking policy reads of an item (policy and gate tests)."""

    id: str
    brand: str
    category: str = "c"


@dataclass
class SlateCandidate:
    """What a ranking policy reads of a ranker candidate (chatrec.turn.policy.Scored)."""

    item: SlateItem
    score: float
    features: dict[str, float] = field(default_factory=dict)
