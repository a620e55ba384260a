"""The GGUF LoRA written from a peft adapter is applied by llama.cpp, and applied faithfully:
greedy tokens agree with the training-time model (transformers, fp32 base + peft LoRA, unmerged).

The base llama.cpp reads for the agreement check is the packaged Q4_1 GGUF dequantised to F32
(the very weights transformers loads from that file), so that only the adapter's conversion is
under test; the Q4_1 numbers (quantised kernels in between) are printed alongside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("xllamacpp", reason="the llamacpp backend needs the llamacpp extra (xllamacpp)")
pytest.importorskip("peft")

from chatrec.config import EMBEDDED_LLM, Settings  # noqa: E402
from chatrec.llm.llamacpp_backend import REPEAT_PENALTY, LlamaCppLLM, gguf_model  # noqa: E402
from chatrec.train.gguf_lora import GGUF_FILE, ConversionError, convert, dequantised_base, permute_rows  # noqa: E402
from tests_support import KB_DIR  # noqa: E402

TOKENS = 32
LORA_STD = 0.02  # random lora_A and lora_B: the adapter moves greedy output off the base within a few tokens
PROMPTS = [
    "Do you sell cases for the Pixel 8?",
    "What is your return policy?",
    "I need a laptop under $800 for school.",
    "Recommend headphones for running.",
    "Can I change my delivery address?",
    "Which phone has the best camera for under $500?",
    "My order arrived damaged, what should I do?",
    "Is the Galaxy S23 compatible with wireless chargers?",
    "Show me something like the last thing I bought.",
    "Do you ship to Canada, and how long does it take?",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A peft LoRA (the training defaults: rank, alpha, every linear layer) on the fp32 base with
    random non-zero weights, the model it belongs to, and its GGUF form."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from chatrec.config import TrainSettings
    from chatrec.models import llm_path

    settings = Settings(kb_dir=KB_DIR, data_dir=tmp_path_factory.mktemp("state"))
    base = llm_path(EMBEDDED_LLM, settings.cache_dir)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    cfg = TrainSettings()
    peft_model = get_peft_model(
        model,
        LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=cfg.target_modules, task_type="CAUSAL_LM"),
    )
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * LORA_STD)
    peft_model.eval()
    folder = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(folder)
    gguf_file = convert(folder)  # the base's config.json found through adapter_config.json
    return peft_model, folder, gguf_file


@pytest.fixture(scope="module")
def f32_base(tmp_path_factory) -> Path:
    return dequantised_base(gguf_model(EMBEDDED_LLM), tmp_path_factory.mktemp("f32") / "smollm2-f32.gguf")


def _backend(tmp_path: Path, **llm) -> LlamaCppLLM:
    from chatrec.llm import make_llm

    s = Settings(kb_dir=KB_DIR, data_dir=tmp_path, llm={"backend": "llamacpp", "threads": 1, "temperature": 0, **llm})
    backend = make_llm(s)
    assert isinstance(backend, LlamaCppLLM)
    return backend


def _llamacpp_tokens(llm: LlamaCppLLM, ids: list[int]) -> list[int]:
    """Greedy tokens after ``ids``, with the backend's repetition penalty over the whole context
    (prompt included), as transformers applies ``repetition_penalty``."""
    r = llm._server.handle_completions(
        {
            "prompt": ids,
            "n_predict": TOKENS,
            "temperature": 0,
            "top_k": 1,
            "repeat_penalty": REPEAT_PENALTY,
            "repeat_last_n": len(ids) + TOKENS,  # the whole context
            "n_probs": 1,
            "cache_prompt": False,
        }
    )
    assert "choices" in r, str(r)[:300]
    return [int(t["id"]) for t in r["choices"][0]["logprobs"]["content"]]


def _transformers_tokens(model, ids: list[int]) -> tuple[list[int], list[float]]:
    """Greedy tokens as the transformers backend samples (repetition_penalty 1.15), and at each
    step the margin between the best and second-best (penalised) logit."""
    import torch

    with torch.no_grad():
        out = model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=TOKENS,
            do_sample=False,
            repetition_penalty=REPEAT_PENALTY,
            output_scores=True,
            return_dict_in_generate=True,
        )
    tokens = out.sequences[0, len(ids) :].tolist()
    margins = [float(s[0].topk(2).values.diff().abs()) for s in out.scores]
    return tokens, margins


def agreement(a: list[int], b: list[int]) -> int:
    """Tokens of the first ``TOKENS`` on which two greedy runs agree: the common prefix, or all of
    them when both runs are equal (both stopped at the same end-of-turn token)."""
    if a[:TOKENS] == b[:TOKENS]:
        return TOKENS
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_gguf_lora_has_llama_cpp_names_shapes_and_keys(trained):
    import gguf

    _, folder, path = trained
    assert path == folder / GGUF_FILE
    reader = gguf.GGUFReader(str(path))
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == 32.0
    tensors = {t.name: t for t in reader.tensors}
    assert len(tensors) == 30 * 7 * 2  # 30 blocks, 7 wrapped linear layers, lora_a and lora_b
    q_a, q_b = tensors["blk.0.attn_q.weight.lora_a"], tensors["blk.0.attn_q.weight.lora_b"]
    assert list(q_a.shape) == [576, 16] and list(q_b.shape) == [16, 576]  # ne: a = [in, r], b = [r, out]
    assert list(tensors["blk.29.ffn_down.weight.lora_a"].shape) == [1536, 16]
    assert list(tensors["blk.3.attn_k.weight.lora_b"].shape) == [16, 192]


def test_q_and_k_lora_b_rows_are_permuted_like_the_base_weights(trained):
    """llama.cpp's GGUF holds q/k rows in its rotary order; the LoRA's output side must follow."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    _, folder, path = trained
    peft_state = load_file(str(folder / "adapter_model.safetensors"))
    stored = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(str(path)).tensors}
    key = "base_model.model.model.layers.{}.self_attn.{}_proj.lora_{}.weight"
    assert np.array_equal(stored["blk.2.attn_q.weight.lora_b"], permute_rows(peft_state[key.format(2, "q", "B")], 9))
    assert np.array_equal(stored["blk.2.attn_k.weight.lora_b"], permute_rows(peft_state[key.format(2, "k", "B")], 3))
    assert not np.array_equal(stored["blk.2.attn_q.weight.lora_b"], peft_state[key.format(2, "q", "B")])
    assert np.array_equal(stored["blk.2.attn_q.weight.lora_a"], peft_state[key.format(2, "q", "A")])
    assert np.array_equal(stored["blk.2.attn_v.weight.lora_b"], peft_state[key.format(2, "v", "B")])


def test_unsupported_adapters_are_refused_with_the_reason(tmp_path, trained):
    _, folder, _ = trained
    cfg = json.loads((folder / "adapter_config.json").read_text())
    bad = tmp_path / "rslora"
    bad.mkdir()
    (bad / "adapter_config.json").write_text(json.dumps({**cfg, "use_rslora": True}))
    (bad / "adapter_model.safetensors").write_bytes((folder / "adapter_model.safetensors").read_bytes())
    with pytest.raises(ConversionError, match="use_rslora"):
        convert(bad)
    assert not (bad / GGUF_FILE).exists()


@pytest.mark.slow
def test_gguf_lora_is_applied_and_agrees_with_the_training_time_model(tmp_path, trained, f32_base, capsys):
    peft_model, folder, _ = trained
    served = _backend(tmp_path / "q41", adapter=str(folder))  # the packaged Q4_1 file, as served
    plain = _backend(tmp_path / "q41-base")
    prompts = [[{"role": "user", "content": p}] for p in PROMPTS]
    ids = [served._prompt_ids(p) for p in prompts]

    # (a) applied: with the adapter, llama.cpp's greedy output is not the base's
    with_adapter = [_llamacpp_tokens(served, i) for i in ids]
    without = [_llamacpp_tokens(plain, i) for i in ids]
    base_agree = [agreement(a, b) for a, b in zip(with_adapter, without)]
    assert sum(a < TOKENS for a in base_agree) >= 0.7 * len(PROMPTS), base_agree  # measured: 9 of 10
    # also through the chat path (stream); on a given prompt the base can happen to say the same
    assert any(served.generate(p, 16) != plain.generate(p, 16) for p in prompts[1:4])
    del served, plain

    # (b) faithful: llama.cpp (F32 base + GGUF LoRA) vs transformers (fp32 base + peft LoRA, unmerged)
    exact = _backend(tmp_path / "f32", model=str(f32_base), adapter=str(folder))
    ours = [_llamacpp_tokens(exact, i) for i in ids]
    theirs = [_transformers_tokens(peft_model, i) for i in ids]
    agree = [agreement(a, t) for a, (t, _) in zip(ours, theirs)]
    q41_agree = [agreement(a, t) for a, (t, _) in zip(with_adapter, theirs)]
    with capsys.disabled():
        print(f"\nfirst {TOKENS} greedy tokens agreeing with transformers fp32 + peft LoRA, per prompt:")
        print(f"  llama.cpp F32 base + GGUF LoRA : {agree}")
        print(f"  llama.cpp Q4_1 base + GGUF LoRA: {q41_agree}")
        print(f"  llama.cpp Q4_1 + LoRA vs Q4_1 without: {base_agree}")
        for n, ((_, margins), a) in enumerate(zip(theirs, agree)):
            if a < TOKENS and a < len(margins):
                print(f"  prompt {n}: diverges at token {a}, transformers' top-2 logit margin there {margins[a]:.4f}")
    assert sum(a >= 28 for a in agree) >= 0.9 * len(PROMPTS), agree  # measured: 32 of 32 on 10 of 10
    del exact

    # the check can fail: the same adapter without the q/k row permutation disagrees
    unpermuted = _backend(tmp_path / "f32-unpermuted", model=str(f32_base), adapter=str(_unpermuted(folder, tmp_path)))
    wrong = [agreement(_llamacpp_tokens(unpermuted, i), t) for i, (t, _) in zip(ids, theirs)]
    with capsys.disabled():
        print(f"  llama.cpp F32 base + GGUF LoRA without the q/k permutation: {wrong}")
    assert sum(a >= 28 for a in wrong) < sum(a >= 28 for a in agree), wrong


def _unpermuted(folder: Path, tmp_path: Path) -> Path:
    """The GGUF LoRA with q/k lora_b rows in peft's order (the conversion bug this test guards against)."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(folder / GGUF_FILE))
    out = tmp_path / "unpermuted.gguf"
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(reader.fields["adapter.lora.alpha"].contents()))
    heads = {"attn_q": 9, "attn_k": 3}
    for t in reader.tensors:
        data = np.array(t.data)
        kind = t.name.split(".")[2]
        if t.name.endswith(".lora_b") and kind in heads:  # undo the permutation: inverse index order
            order = permute_rows(np.arange(data.shape[0]), heads[kind])
            data = data[np.argsort(order)]
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def test_chatrec_train_writes_the_gguf_lora_next_to_the_peft_adapter(tmp_path):
    """``train()`` (QLoRA path, here on a tiny full-precision Llama) leaves adapter_model.gguf in
    the adapter folder, named in the card, in the form llama.cpp loads."""
    from types import SimpleNamespace

    import gguf

    from chatrec.config import load_settings
    from chatrec.kb import load_kb
    from chatrec.train.sft import TrainConfig, train
    from tests_support import make_tiny_model

    tiny = make_tiny_model(tmp_path / "tiny")
    settings = load_settings(
        kb_dir=str(KB_DIR),
        data_dir=str(tmp_path / "state"),
        llm={"backend": "fake", "model": str(tiny), "quantization": "none"},
    )
    system = {"role": "system", "content": "You are the shop's assistant."}
    examples = [
        {
            "prompt": [system, {"role": "user", "content": f"Where is order {i}?"}],
            "completion": [{"role": "assistant", "content": f"Order {i} ships tomorrow."}],
        }
        for i in range(8)
    ]
    out = tmp_path / "adapter"
    card = train(
        SimpleNamespace(settings=settings, kb=load_kb(KB_DIR)),
        out,
        TrainConfig(max_steps=1, eval_steps=10),
        examples=(examples, []),
    )
    assert card["gguf_adapter"] == GGUF_FILE
    assert json.loads((out / "chatrec_card.json").read_text())["gguf_adapter"] == GGUF_FILE
    reader = gguf.GGUFReader(str(out / GGUF_FILE))
    assert reader.fields["general.type"].contents() == "adapter"
    names = {t.name for t in reader.tensors}
    assert len(names) == 2 * 7 * 2 and "blk.1.attn_k.weight.lora_b" in names  # 2 blocks, 7 linear layers


def test_chatrec_export_gguf_converts_an_adapter_trained_before(tmp_path, trained):
    import shutil

    from click.testing import CliRunner

    from chatrec.cli.main import main

    _, folder, path = trained
    old = tmp_path / "old-adapter"
    shutil.copytree(folder, old, ignore=shutil.ignore_patterns(GGUF_FILE))
    res = CliRunner().invoke(main, ["export-gguf", "--adapter", str(old)])
    assert res.exit_code == 0, res.output
    assert (old / GGUF_FILE).read_bytes() == path.read_bytes()
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["export-gguf", "--adapter", str(tmp_path / "empty")])
    assert res.exit_code != 0 and "no peft adapter" in res.output


def test_several_adapters_loaded_at_start_are_chosen_per_request(tmp_path, trained):
    """Issue 14 part 2: ``llm.adapters`` loads named GGUF LoRAs with the model; each request picks
    one by name (or none). The picked adapter changes the output, the base comes back when none is
    picked, and a request with the adapter gives what an engine serving only that adapter gives
    (so a slot's cache computed under another adapter is not reused wrongly)."""
    from chatrec.llm.base import UnknownAdapter

    _, _, gguf_file = trained
    llm = _backend(tmp_path / "a", adapters={"shop_a": str(gguf_file), "shop_b": str(gguf_file)}, context_size=512)
    only = LlamaCppLLM(
        Settings(
            kb_dir=KB_DIR,
            data_dir=tmp_path / "b",
            llm={"backend": "llamacpp", "threads": 1, "temperature": 0, "adapter": str(gguf_file), "context_size": 512},
        ).llm,
        prompt_cache=False,
    )
    differs = 0
    for prompt in PROMPTS[:3]:
        msgs = [{"role": "user", "content": prompt}]
        base = llm.generate(msgs, TOKENS)
        tuned = llm.with_adapter("shop_a").generate(msgs, TOKENS)
        assert llm.generate(msgs, TOKENS) == base  # switching back per request
        assert llm.with_adapter("shop_b").generate(msgs, TOKENS) == tuned  # the same file under another name
        assert tuned == only.generate(msgs, TOKENS)
        differs += tuned != base
    assert differs >= 2, "the adapter should change the greedy reply"
    with pytest.raises(UnknownAdapter, match="shop_c"):
        llm.with_adapter("shop_c")
