"""Issue 14 part 3 on the NF4 backend: the transformers backend keeps a small LRU of earlier
generations' KV caches (``llm.prefix_cache_entries``), so a turn whose prompt starts like an
earlier prompt + reply reads only its new tokens, as llama.cpp's slots do.

The SmolLM2 tests load the real embedded model in NF4 (marked slow like the other real-model
tests). Reading a prefix from the cache is not bit-identical to reading the prompt in one pass:
with SDPA attention the next-token logits differ by up to about 0.2 (of about 35), as they do
between SDPA and eager attention on the same full prompt; so logits are compared with a tolerance
and greedy tokens over a short window."""

from __future__ import annotations

import threading

import pytest

from chatrec.llm.transformers_backend import MIN_SHARED, PrefixCache

SYSTEM = {
    "role": "system",
    "content": "You are the assistant of a small electronics shop. Answer briefly and only from the shop's facts. " * 3,
}
LOGIT_TOLERANCE = 0.5  # max |cached - full| of the next-token logits (measured: <= 0.22 on SmolLM2 NF4)


def _cache(n: int, layers: int = 2, value: float = 0.0):
    import torch
    from transformers import DynamicCache

    kv = [(torch.full((1, 2, n, 4), value), torch.full((1, 2, n, 4), value)) for _ in range(layers)]
    return DynamicCache(ddp_cache_data=kv)


# -- the LRU itself (no model) ------------------------------------------------------------------


def test_lookup_returns_a_cropped_copy_of_the_longest_shared_prefix():
    pc = PrefixCache(4)
    a = list(range(100))
    b = list(range(50)) + [999] * 50
    pc.store(a, _cache(100, value=1.0))
    pc.store(b, _cache(100, value=2.0))
    n, cache = pc.lookup(list(range(80)) + [5, 6])
    assert n == 80 and cache.get_seq_length() == 80 and float(cache.layers[0].keys[0, 0, 0, 0]) == 1.0
    cache.layers[0].keys.fill_(7.0)  # a copy: the stored entry is untouched
    assert [c for _, c in pc.entries()] == [100, 100]
    n, again = pc.lookup(list(range(80)))  # the same prompt again: its last token is still read
    assert n == 79 and float(again.layers[0].keys[0, 0, 0, 0]) == 1.0
    assert pc.lookup(list(range(MIN_SHARED - 2)) + [-1, -1, -1]) == (0, None)  # too short to be worth a copy
    assert (pc.hits, pc.misses) == (2, 1)


def test_the_prefix_cache_is_bounded_and_a_turn_replaces_the_entry_it_extends():
    pc = PrefixCache(2)
    pc.store(list(range(40)), _cache(40))
    pc.store(list(range(40)) + [1, 2, 3], _cache(43))  # extends the first: replaces it
    assert [c for _, c in pc.entries()] == [43]
    for k in range(3):
        pc.store([1000 * (k + 1) + i for i in range(30)], _cache(30))
    assert len(pc.entries()) == 2 and [e[0] for e, _ in pc.entries()] == [2000, 3000]  # oldest gone
    assert pc.nbytes() == 2 * 30 * 2 * 2 * (2 * 4) * 4  # entries x tokens x layers x (K, V) x heads*dims x float32


def test_conversations_taking_turns_each_keep_their_entry_up_to_the_capacity():
    """A hit does not renew the entry it used (the generation stores a newer one with the same
    prefix), so 3 conversations taking turns in a cache of 3 each find their previous turn."""
    pc = PrefixCache(3)
    convs = {k: [100 * k + i for i in range(40)] for k in range(3)}
    for turn in range(4):
        for k, ids in convs.items():
            prompt = ids + [7, 7, 7]  # the next turn: the previous one + new tokens
            n, _ = pc.lookup(prompt)
            assert n == (len(ids) if turn else 0), (turn, k)
            convs[k] = prompt + [k, turn]  # prompt + reply, stored as one entry
            pc.store(convs[k], _cache(len(convs[k])))
    assert len(pc.entries()) == 3


def test_an_inconsistent_or_disabled_cache_is_never_stored():
    pc = PrefixCache(2)
    pc.store(list(range(40)), _cache(39))  # ids and cache disagree
    pc.store(list(range(40)), None)
    assert pc.entries() == []
    off = PrefixCache(0)
    off.store(list(range(40)), _cache(40))
    assert off.entries() == []


def test_concurrent_lookups_and_stores_keep_every_entry_whole():
    pc = PrefixCache(3)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(30):
                ids = [k] * 20 + list(range(i % 7 + 20))
                pc.store(ids, _cache(len(ids)))
                n, cache = pc.lookup(ids + [1])
                assert cache is None or cache.get_seq_length() == n
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(pc.entries()) <= 3 and all(len(e) == c for e, c in pc.entries())


# -- the backend with a peft adapter (tiny model) -----------------------------------------------


def test_the_prefix_cache_works_with_the_peft_adapter_on_nf4(tmp_path):
    """On an NF4 base with a peft LoRA applied at run time: a second turn reads only its new tokens
    and streams what the same backend streams with the cache off."""
    pytest.importorskip("peft")
    from peft import PeftModel

    from chatrec.config import LLMSettings
    from chatrec.llm.transformers_backend import TransformersLLM
    from tests_support import make_random_lora, make_tiny_model

    base = make_tiny_model(tmp_path / "tiny")
    folder = make_random_lora(base, tmp_path / "adapter")
    settings = LLMSettings(model=str(base), quantization="nf4", temperature=0.0, adapter=str(folder))
    llm = TransformersLLM(settings, tmp_path)
    assert isinstance(llm.model, PeftModel)
    first = [SYSTEM, {"role": "user", "content": "How do I return my headphones?"}]
    reply = llm.generate(first, 8)
    second = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "And my earbuds?"}]
    cached = llm.generate(second, 12)
    usage = llm.last_usage()
    assert usage is not None and usage["prompt_cached"] >= len(llm._encode(first)["input_ids"][0]) - 1
    assert usage["prompt_read"] == usage["prompt_tokens"] - usage["prompt_cached"] < 30
    llm.prefix_cache.capacity = 0
    assert llm.generate(second, 12) == cached
    assert llm.last_usage()["prompt_cached"] == 0  # type: ignore[index]


# -- the real model: SmolLM2 in NF4 -------------------------------------------------------------


@pytest.fixture(scope="module")
def smol():
    from chatrec.config import load_settings
    from chatrec.llm.transformers_backend import TransformersLLM

    s = load_settings(llm={"temperature": 0.0, "prefix_cache_entries": 8})
    assert s.llm.quantization == "nf4"
    return TransformersLLM(s.llm, s.cache_dir)


@pytest.fixture
def llm(smol):
    smol.prefix_cache = PrefixCache(8)  # every test starts empty
    return smol


def _next_logits(llm, messages):
    """Next-token logits of ``messages`` read in full, and read after the prefix cache's best entry."""
    import torch

    ids = llm._encode(messages)["input_ids"][0].tolist()
    with torch.inference_mode():
        full = llm.model(input_ids=torch.tensor([ids])).logits[0, -1]
        n, cache = llm.prefix_cache.lookup(ids)
        assert cache is not None
        part = llm.model(input_ids=torch.tensor([ids[n:]]), **{llm._cache_arg: cache}).logits[0, -1]
    return full, part


def _uncached(llm, messages, n):
    capacity, llm.prefix_cache.capacity = llm.prefix_cache.capacity, 0
    try:
        return llm.generate(messages, n)
    finally:
        llm.prefix_cache.capacity = capacity


@pytest.mark.slow
def test_a_second_turn_reads_only_the_tokens_after_the_first_turns_prompt_and_reply(llm):
    first = [SYSTEM, {"role": "user", "content": "How do I return my headphones?"}]
    reply = llm.generate(first, 16)
    one = llm.last_usage()
    assert one == {"prompt_tokens": one["prompt_tokens"], "prompt_read": one["prompt_tokens"], "prompt_cached": 0}
    second = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "And my earbuds?"}]
    cached = llm.generate(second, 8)
    two = llm.last_usage()
    assert two["prompt_tokens"] == len(llm._encode(second)["input_ids"][0])
    assert two["prompt_cached"] >= one["prompt_tokens"]  # the first prompt and (most of) its reply
    assert two["prompt_read"] == two["prompt_tokens"] - two["prompt_cached"] < 30
    assert len(llm.prefix_cache.entries()) == 1  # the second turn's entry replaced the first's
    assert cached == _uncached(llm, second, 8)  # same greedy tokens as reading the prompt in full
    third = [*second, {"role": "assistant", "content": cached}, {"role": "user", "content": "Thanks!"}]
    full, part = _next_logits(llm, third)
    assert float((full - part).abs().max()) < LOGIT_TOLERANCE and int(full.argmax()) == int(part.argmax())


@pytest.mark.slow
def test_two_interleaved_conversations_each_hit_their_own_entry(llm):
    a1 = [SYSTEM, {"role": "user", "content": "How do I return my headphones?"}]
    b1 = [SYSTEM, {"role": "user", "content": "Which power bank would you take on a long flight?"}]
    system_only = len(llm._encode([SYSTEM])["input_ids"][0])
    ra = llm.generate(a1, 6)
    rb = llm.generate(b1, 6)
    assert 0 < llm.last_usage()["prompt_cached"] <= system_only + 4  # b1 shares only the system prompt with a1
    prompts = {"a": len(llm._encode(a1)["input_ids"][0]), "b": len(llm._encode(b1)["input_ids"][0])}
    a2 = [*a1, {"role": "assistant", "content": ra}, {"role": "user", "content": "And my earbuds?"}]
    b2 = [*b1, {"role": "assistant", "content": rb}, {"role": "user", "content": "A cheaper one?"}]
    for name, messages in (("a", a2), ("b", b2)):
        llm.generate(messages, 4)
        assert llm.last_usage()["prompt_cached"] >= prompts[name], name
    assert len(llm.prefix_cache.entries()) == 2


@pytest.mark.slow
def test_a_cancelled_generation_leaves_no_broken_entry(llm):
    first = [SYSTEM, {"role": "user", "content": "Tell me about your return policy in detail."}]
    cancel = threading.Event()
    stream = llm.stream(first, 64, cancel=cancel)
    partial = next(stream)
    cancel.set()
    stream.close()  # the consumer leaves: generation stops at the next token
    assert all(len(ids) == cached for ids, cached in llm.prefix_cache.entries())
    second = [*first, {"role": "assistant", "content": partial}, {"role": "user", "content": "Thanks, and exchanges?"}]
    full, part = _next_logits(llm, second)
    assert float((full - part).abs().max()) < LOGIT_TOLERANCE and int(full.argmax()) == int(part.argmax())
    before = llm.prefix_cache.entries()
    cancelled = threading.Event()
    cancelled.set()
    assert list(llm.stream(second, 8, cancel=cancelled)) == []  # cancelled before it started: nothing stored
    assert llm.prefix_cache.entries() == before


@pytest.mark.slow
def test_the_real_prefix_cache_is_bounded(llm):
    llm.prefix_cache = PrefixCache(2)
    for q in ("Do you ship to Canada?", "What payment methods do you accept?", "Do you price match?"):
        llm.generate([SYSTEM, {"role": "user", "content": q}], 2)
    entries = llm.prefix_cache.entries()
    assert len(entries) == 2
    c = llm.model.config
    per_token = 2 * c.num_hidden_layers * c.num_key_value_heads * (c.hidden_size // c.num_attention_heads) * 4
    assert per_token == 46080  # SmolLM2-135M in float32: 45 KiB per token (docs/engines.md)
    assert llm.prefix_cache.nbytes() == per_token * sum(n for _, n in entries)
