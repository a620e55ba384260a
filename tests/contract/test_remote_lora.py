"""A remote engine with LoRA adapters per request (issue 20 items 3 and 8): a real llama.cpp
server process (``xllamacpp``, the dev extra) on 127.0.0.1 serving the packaged SmolLM2 GGUF
with two GGUF LoRA adapters built here (random weights, converted by chatrec's own
``convert``), driven through chatrec's ``openai`` backend with ``llm.adapters`` mapping names
to the server's adapters (``lora:N``: llama.cpp picks adapters with its per-request ``lora``
field, not by model name).

The server is started once for the module and stopped at teardown; a server that cannot
start fails the test (it is not skipped)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from chatrec.config import EMBEDDED_LLM, Settings
from chatrec.llm.openai_compat import OpenAICompatibleLLM
from tests_support import KB_DIR

HERE = Path(__file__).resolve().parent
TOKENS = 24
LORA_STD = 0.02  # random lora_A and lora_B: moves greedy output off the base within a few tokens
PROMPTS = [
    "Do you sell cases for the Pixel 8?",
    "What is your return policy?",
    "Recommend headphones for running.",
]


def test_adapters_mapped_to_lora_ids_send_llama_cpps_lora_field():
    """No server: the request bodies. A lora:N adapter sends llm.model and every mapped id's scale;
    a model-name adapter sends its name; a request without adapter turns every mapped id off."""
    llm = OpenAICompatibleLLM(
        "http://127.0.0.1:9/v1", "base", adapters={"a": "lora:0", "b": "lora:1", "v": "vllm-shop"}
    )
    msgs = [{"role": "user", "content": "hi"}]
    body = llm._body(msgs, llm.adapters["b"], 8)
    assert (body["model"], body["lora"]) == ("base", [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 1.0}])
    assert llm._body(msgs, None, 8)["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 0.0}]
    assert llm._body(msgs, "vllm-shop", 8)["model"] == "vllm-shop"
    assert "lora" not in OpenAICompatibleLLM("http://127.0.0.1:9/v1", "m", adapters={"a": "a"})._body(msgs, "a", 8)
    with pytest.raises(ValueError, match="lora:N"):
        OpenAICompatibleLLM("http://127.0.0.1:9/v1", "m", adapters={"a": "lora:x"})
    llm.close()


@pytest.fixture(scope="module")
def loras(tmp_path_factory) -> list[Path]:
    """Two GGUF LoRAs (the training defaults: rank, alpha, every linear layer) with different random weights."""
    pytest.importorskip("peft")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from chatrec.config import TrainSettings
    from chatrec.models import llm_path
    from chatrec.train.gguf_lora import convert

    settings = Settings(kb_dir=KB_DIR, data_dir=tmp_path_factory.mktemp("state"))
    model = AutoModelForCausalLM.from_pretrained(llm_path(EMBEDDED_LLM, settings.cache_dir), dtype=torch.float32)
    cfg = TrainSettings()
    peft_model = get_peft_model(
        model,
        LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=cfg.target_modules, task_type="CAUSAL_LM"),
    )
    out = []
    for seed in (0, 1):
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_" in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * LORA_STD)
        folder = tmp_path_factory.mktemp(f"adapter{seed}")
        peft_model.save_pretrained(folder)
        out.append(convert(folder))
    return out


@pytest.fixture(scope="module")
def lora_server(tmp_path_factory, loras):
    """``http://127.0.0.1:<port>/v1`` of a llama.cpp server process: SmolLM2 + the two adapters (ids 0, 1, off)."""
    pytest.importorskip("xllamacpp", reason="the OpenAI-compatible test server needs the dev extra (xllamacpp)")
    from conftest import free_port

    from chatrec.llm.llamacpp_backend import gguf_model

    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [sys.executable, str(HERE / "llama_server.py"), str(gguf_model(EMBEDDED_LLM)), str(port), *map(str, loras)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the llama.cpp server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the llama.cpp server did not come up in 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base + "/v1"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the server script exits at end of stdin
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_llama_cpp_server_applies_the_adapter_each_request_chooses(tmp_path, lora_server):
    """Through the settings (llm.backend = openai, llm.adapters): greedy output with an adapter
    differs from the base; requests alternating base / shop_a / shop_b each get their own
    adapter (the same reply as before for the same choice, streamed or not)."""
    from chatrec.llm import make_llm

    settings = Settings(
        kb_dir=KB_DIR,
        data_dir=tmp_path,
        llm={
            "backend": "openai",
            "base_url": lora_server,
            "model": "smollm2",
            "temperature": 0,
            "adapters": {"shop_a": "lora:0", "shop_b": "lora:1"},
        },
    )
    llm = make_llm(settings)
    assert isinstance(llm, OpenAICompatibleLLM)
    a, b = llm.with_adapter("shop_a"), llm.with_adapter("shop_b")
    differs_a = differs_b = differs_ab = 0
    for prompt in PROMPTS:
        msgs = [{"role": "user", "content": prompt}]
        base = llm.generate(msgs, TOKENS)
        tuned_a = a.generate(msgs, TOKENS)
        tuned_b = b.generate(msgs, TOKENS)
        assert llm.generate(msgs, TOKENS) == base  # back to the base on the next request
        assert "".join(a.stream(msgs, TOKENS)) == tuned_a  # and to shop_a after shop_b, streamed
        assert b.generate(msgs, TOKENS) == tuned_b
        differs_a += tuned_a != base
        differs_b += tuned_b != base
        differs_ab += tuned_a != tuned_b
    assert differs_a >= 2 and differs_b >= 2, "an adapter should change the greedy reply"
    assert differs_ab >= 2, "two adapters with different weights should give different replies"
    llm.close()
