"""Issue 14 item 4, "concurrency that scales with the engine, not a global lock": the NF4 engine
ran one generation at a time, so 8 visitors waited for each other's whole replies. Now the
transformers backend decodes concurrent generations together (``chatrec.llm.batching``): a new
request is prefilled on its own, then joins the running batch with its keys and values
left-padded and masked, and leaves it when it ends.

On a float32 model a row decodes in a batch what it decodes alone (logits agree to about 1e-5),
so greedy replies are compared exactly. In NF4, bitsandbytes' CPU kernel for one row differs from
its kernel for several rows by up to about 0.3 in the logits, as reading a prompt in one pass
differs from reading it token by token, so a long reply may take another word at a near-tie: the
NF4 test compares the logits with a tolerance."""

from __future__ import annotations

import threading

import pytest

from chatrec.config import LLMSettings
from chatrec.llm.transformers_backend import TransformersLLM
from tests_support import make_random_lora, make_tiny_model

SYSTEM = {"role": "system", "content": "You are the assistant of a small electronics shop. Answer briefly."}
NF4_TOLERANCE = 0.6  # max |batched - alone| of a row's next-token logits in NF4 (measured: 0.31)
QUESTIONS = [
    "Do you ship to Canada?",
    "How do I return my headphones if the box is already open and I lost the receipt?",
    "Which power bank would you take on a long flight?",
    "What payment methods do you accept?",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


def _llm(tiny, tmp_path, slots: int, quantization: str = "none", cache: int = 0) -> TransformersLLM:
    settings = LLMSettings(
        model=str(tiny), quantization=quantization, temperature=0.0, slots=slots, prefix_cache_entries=cache
    )
    return TransformersLLM(settings, tmp_path)


def _messages(q: str) -> list[dict]:
    return [SYSTEM, {"role": "user", "content": q}]


def _start_together(llm: TransformersLLM, threads: list[threading.Thread]) -> None:
    """Start ``threads`` (each submits one generation) while holding the model lock until all
    have submitted, so their generations decode in one batch."""
    before = llm.batcher.submitted
    with llm._lock:
        for t in threads:
            t.start()
        while llm.batcher.submitted < before + len(threads):
            threading.Event().wait(0.01)


def _together(llm: TransformersLLM, jobs: list[tuple[list[dict], int]]) -> list[str]:
    """Run ``jobs`` (messages, max tokens) concurrently. The model lock is held until every job
    has been submitted, so they all decode in one batch (the first is prefilled, then the others
    join it after its first step)."""
    out: list[str | BaseException] = [""] * len(jobs)

    def work(k: int) -> None:
        try:
            out[k] = llm.generate(*jobs[k])
        except BaseException as exc:
            out[k] = exc

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(jobs))]
    _start_together(llm, threads)
    for t in threads:
        t.join(timeout=120)
    assert all(isinstance(o, str) for o in out), out
    return out  # type: ignore[return-value]


def test_concurrent_generations_decode_in_one_batch_and_each_reply_is_what_it_is_alone(tiny, tmp_path):
    llm = _llm(tiny, tmp_path, slots=4)
    jobs = [(_messages(q), n) for q, n in zip(QUESTIONS, (24, 9, 17, 30))]  # rows end at different steps
    alone = [llm.generate(*job) for job in jobs]
    assert llm.batcher.max_rows_seen == 1
    assert _together(llm, jobs) == alone
    assert llm.batcher.max_rows_seen == 4
    assert not llm.batcher._rows and llm.batcher._batch is None  # everything left the batch


def test_slots_bound_the_rows_decoded_at_once(tiny, tmp_path):
    llm = _llm(tiny, tmp_path, slots=2)
    jobs = [(_messages(q), 12) for q in QUESTIONS]
    alone = [llm.generate(*job) for job in jobs]
    assert _together(llm, jobs) == alone
    assert llm.batcher.max_rows_seen == 2
    one = _llm(tiny, tmp_path, slots=1)
    assert _together(one, jobs) == alone and one.batcher.max_rows_seen == 1


def test_a_cancelled_row_leaves_the_batch_and_the_others_finish_unchanged(tiny, tmp_path):
    llm = _llm(tiny, tmp_path, slots=4)
    jobs = [(_messages(q), 20) for q in QUESTIONS[:3]]
    alone = [llm.generate(*job) for job in jobs]
    cancel = threading.Event()
    results: dict[int, str] = {}

    def work(k: int) -> None:
        pieces = []
        for piece in llm.stream(*jobs[k], cancel=cancel if k == 1 else None):
            pieces.append(piece)
            if k == 1 and len(pieces) == 2:
                cancel.set()
        results[k] = "".join(pieces)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    _start_together(llm, threads)
    for t in threads:
        t.join(timeout=120)
    assert results[0] == alone[0] and results[2] == alone[2]
    assert alone[1].startswith(results[1]) and len(results[1]) < len(alone[1])
    assert not llm.batcher._rows and llm.batcher._batch is None


def test_rows_leaving_a_batch_keep_their_own_prefix_cache_entry(tiny, tmp_path):
    """Each row's tokens (padding dropped) go to the prefix cache when it leaves, so the
    conversation's next turn reads only its new tokens and replies as it would uncached."""
    llm = _llm(tiny, tmp_path, slots=4, cache=8)
    firsts = [_messages(q) for q in QUESTIONS[:3]]
    replies = _together(llm, [(m, 10 + 3 * k) for k, m in enumerate(firsts)])
    entries = llm.prefix_cache.entries()
    assert len(entries) == 3 and all(len(ids) == cached for ids, cached in entries)
    seconds = [
        [*m, {"role": "assistant", "content": r}, {"role": "user", "content": "And a cheaper one?"}]
        for m, r in zip(firsts, replies)
    ]
    cached = _together(llm, [(m, 8) for m in seconds])
    llm.prefix_cache.capacity = 0
    assert cached == [llm.generate(m, 8) for m in seconds]


def test_a_failed_step_ends_every_row_with_the_error_and_the_engine_goes_on(tiny, tmp_path):
    llm = _llm(tiny, tmp_path, slots=4)
    job = (_messages(QUESTIONS[0]), 6)
    expected = llm.generate(*job)
    forward = llm.model.forward
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("out of memory (simulated)")
        return forward(*args, **kwargs)

    llm.model.forward = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="simulated"):
        llm.generate(*job)
    llm.model.forward = forward  # type: ignore[method-assign]
    assert llm.generate(*job) == expected


def test_named_adapters_are_picked_per_request_and_mixed_in_one_batch(tiny, tmp_path):
    """Issue 14 item 2 on the NF4 engine: several adapters loaded (``llm.adapters``), one chosen per
    request (``with_adapter``, as a tenant or /v1/chat 'adapter' does); rows with different
    adapters decode in one batch (peft's mixed-batch LoRA), each as a model with only its adapter."""
    pytest.importorskip("peft")
    from chatrec.llm.base import UnknownAdapter

    a, b = make_random_lora(tiny, tmp_path / "a", seed=1), make_random_lora(tiny, tmp_path / "b", seed=2)

    def engine(**kw) -> TransformersLLM:
        return TransformersLLM(LLMSettings(model=str(tiny), quantization="none", temperature=0.0, **kw), tmp_path)

    jobs = [(_messages(q), 14) for q in QUESTIONS[:3]]
    only = {"base": engine(), "a": engine(adapter=str(a)), "b": engine(adapter=str(b))}
    want = {k: [e.generate(*job) for job in jobs] for k, e in only.items()}
    assert want["a"] != want["base"] and want["b"] != want["a"]
    llm = engine(adapter=str(a), adapters={"b": str(b)}, slots=4, prefix_cache_entries=8)
    assert [llm.generate(*job) for job in jobs] == want["a"]  # llm.adapter for requests naming none
    shop_b = llm.with_adapter("b")
    assert shop_b.generate(*jobs[0]) == want["b"][0]
    assert llm.last_usage()["prompt_cached"] == 0  # type: ignore[index]  # a's cache of this prompt is not b's
    assert [shop_b.generate(*job) for job in jobs[1:]] == want["b"][1:]

    out: dict[int, str] = {}

    def work(k: int) -> None:
        view = shop_b if k % 2 else llm
        out[k] = view.generate(*jobs[k // 2])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    _start_together(llm, threads)
    for t in threads:
        t.join(timeout=120)
    assert llm.batcher.max_rows_seen >= 4
    assert [out[k] for k in range(0, 6, 2)] == want["a"] and [out[k] for k in range(1, 6, 2)] == want["b"]
    base_too = engine(adapters={"b": str(b)})  # no llm.adapter: requests naming none get the base model
    assert [base_too.generate(*job) for job in jobs] == want["base"]
    with pytest.raises(UnknownAdapter):
        llm.with_adapter("c")


@pytest.mark.slow
def test_smollm2_nf4_rows_in_a_batch_get_the_logits_they_get_alone(tmp_path):
    """The real embedded model in NF4: a batched step's logits for each row are those of the
    same row decoded alone, within the NF4 kernels' difference (measured up to about 0.3)."""
    import copy

    import torch

    from chatrec.config import load_settings
    from chatrec.llm.batching import Request

    s = load_settings(llm={"temperature": 0.0, "adapter": "none", "slots": 4, "prefix_cache_entries": 0})
    llm = TransformersLLM(s.llm, s.cache_dir)
    batcher, rows = llm.batcher, []

    class Sink:
        def put(self, _):
            pass

        def end(self):
            pass

    with torch.inference_mode():
        for q in QUESTIONS[:3]:
            r = Request(llm._encode(_messages(q))["input_ids"][0].tolist(), 32, threading.Event(), Sink())
            batcher._prefill(r)
            rows.append(r)
        alone = []
        for r in rows:
            step = llm.model(
                input_ids=torch.tensor([[r.generated[-1]]]),
                logits_to_keep=1,
                **{llm._cache_arg: copy.deepcopy(r.cache)},
            )
            alone.append(step.logits[0, -1])
        chosen: list = []
        choose = batcher._choose
        batcher._choose = lambda r, logits: (chosen.append(logits[0]), choose(r, logits))[1]  # type: ignore[method-assign]
        batcher._rows = list(rows)
        batcher._step()
    assert batcher._batch is not None and min(batcher._pads) == 0 and max(batcher._pads) > 0  # padded rows
    for r, batched, single in zip(rows, chosen, alone):
        assert float((batched - single).abs().max()) < NF4_TOLERANCE
        penalised = llm._processors(torch.tensor([r.ids + r.generated[:1]]), single[None].float())
        assert r.generated[1] == int(penalised.argmax())  # the token chosen in the batch is the token alone
