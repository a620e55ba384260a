"""The llamacpp backend's own promises beyond the shared contract (tests/contract/test_llm_contract.py):
its tokens are llama.cpp's, its settings reach llama.cpp, and bad model or adapter paths fail with the fix."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from chatrec.config import Settings

pytest.importorskip("xllamacpp", reason="the llamacpp backend needs the llamacpp extra (xllamacpp)")

from chatrec.llm.llamacpp_backend import ADAPTER_FILE, EngineUnavailable, LlamaCppLLM, _params, gguf_model  # noqa: E402

KB_DIR = Path(__file__).resolve().parents[3] / "kb"


def _settings(tmp_path: Path, **llm) -> Settings:
    return Settings(kb_dir=KB_DIR, data_dir=tmp_path, llm={"backend": "llamacpp", "threads": 1, **llm})


@pytest.fixture(scope="module")
def llm(tmp_path_factory) -> LlamaCppLLM:
    from chatrec.llm import make_llm

    backend = make_llm(_settings(tmp_path_factory.mktemp("llamacpp"), slots=2, context_size=1024))
    assert isinstance(backend, LlamaCppLLM)
    return backend


@pytest.mark.slow
def test_count_tokens_equals_llama_cpp_prompt_tokens(llm):
    for text in ["Our return window is thirty days", "héllo wörld 123,45 $19.99 <|im_start|>", "a\n\n  b\tc"]:
        got = llm._server.handle_completions({"prompt": text, "n_predict": 1, "cache_prompt": False})
        assert llm.count_tokens(text) == got["usage"]["prompt_tokens"]


@pytest.mark.slow
def test_chat_prompt_tokens_equal_llama_cpp_chat_template(llm):
    messages = [
        {"role": "system", "content": "You are the shop's assistant."},
        {"role": "user", "content": "Do you sell Pixel 8 cases?"},
    ]
    got = llm._server.handle_chat_completions({"messages": messages, "max_tokens": 1, "temperature": 0})
    assert len(llm._prompt_ids(messages)) == got["usage"]["prompt_tokens"]


@pytest.mark.slow
def test_two_slots_serve_two_streams_at_once(llm):
    messages = [{"role": "user", "content": "Name three colours."}]
    replies: list[str] = []
    workers = [threading.Thread(target=lambda: replies.append(llm.generate(messages, 8))) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert len(replies) == 2 and replies[0] and replies[0] == replies[1]


@pytest.mark.slow
def test_the_engines_own_http_port_refuses_other_local_processes(llm):
    import json
    import urllib.error
    import urllib.request

    body = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}).encode()
    req = urllib.request.Request(
        llm._server.listening_address + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 401


def test_settings_reach_llama_cpp(tmp_path):
    s = _settings(tmp_path, threads=2, slots=3, context_size=1024, adapter="none")
    p = _params(s.llm, gguf_model(s.llm.model))
    assert (p.cpuparams.n_threads, p.cpuparams_batch.n_threads) == (2, 2)
    assert (p.n_parallel, p.n_ctx) == (3, 3 * 1024)
    assert p.lora_adapters == []  # "none": the base model
    s = _settings(tmp_path)  # llm.adapter unset: the KB's own adapter, as its GGUF LoRA
    p = _params(s.llm, gguf_model(s.llm.model))
    assert [(a.path, a.scale) for a in p.lora_adapters] == [(str(KB_DIR / "adapter" / ADAPTER_FILE), 1.0)]


def test_a_gguf_lora_adapter_is_applied_at_load(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / ADAPTER_FILE).write_bytes(b"GGUF")  # only the path is checked here; llama.cpp reads it at load
    s = _settings(tmp_path, adapter=str(folder))
    p = _params(s.llm, gguf_model(s.llm.model))
    assert [(a.path, a.scale) for a in p.lora_adapters] == [(str(folder / ADAPTER_FILE), 1.0)]


def test_a_peft_adapter_folder_is_refused_with_the_fix(tmp_path):
    folder = tmp_path / "peft"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(EngineUnavailable, match="GGUF LoRA"):
        LlamaCppLLM(_settings(tmp_path, adapter=str(folder)).llm)


def test_a_model_that_is_no_gguf_file_is_refused_with_the_fix(tmp_path):
    with pytest.raises(EngineUnavailable, match="no GGUF file"):
        LlamaCppLLM(_settings(tmp_path, model=str(tmp_path)).llm)


@pytest.mark.slow
def test_a_conversations_next_turn_reads_only_its_new_tokens(llm):
    """KV reuse (issue 14 part 2): with another conversation in between, the next turn of a
    conversation goes to the slot holding its prefix (or its state is restored from RAM) and
    llama.cpp reads only the tokens after it; with the cache off it reads the whole prompt."""
    system = {"role": "system", "content": "You are the assistant of a small electronics shop. " * 6}
    a1 = [system, {"role": "user", "content": "How do I return my headphones?"}]
    reply = llm.generate(a1, 8)
    first = llm.last_usage()
    assert first is not None and first["prompt_tokens"] == len(llm._prompt_ids(a1))
    llm.generate([{"role": "system", "content": "Another shop."}, {"role": "user", "content": "Hi there"}], 4)
    a2 = [*a1, {"role": "assistant", "content": reply}, {"role": "user", "content": "And my earbuds?"}]
    llm.generate(a2, 4)
    second = llm.last_usage()
    assert second is not None and second["prompt_tokens"] == len(llm._prompt_ids(a2))
    assert second["prompt_cached"] >= first["prompt_tokens"] - 8  # the chat template may re-read the last tokens
    assert second["prompt_read"] == second["prompt_tokens"] - second["prompt_cached"] < 40


@pytest.mark.slow
def test_without_the_prompt_cache_every_turn_reads_its_whole_prompt(tmp_path):
    llm = LlamaCppLLM(_settings(tmp_path, context_size=512).llm, prompt_cache=False)
    messages = [{"role": "user", "content": "How do I return my headphones?"}]
    for _ in range(2):
        llm.generate(messages, 4)
        usage = llm.last_usage()
        assert usage is not None and usage["prompt_cached"] == 0
        assert usage["prompt_read"] == len(llm._prompt_ids(messages))
