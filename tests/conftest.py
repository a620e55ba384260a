"""Shared fixtures. All state (Chroma, SQLite) lives under tmp paths; the model
cache (converted weights) is the user's, so the GGUF is converted once."""

from __future__ import annotations

import pytest

from chatrec.config import Settings, apply_offline_env, load_settings
from chatrec.kb import KnowledgeBase, load_kb
from tests_support import KB_DIR, fake_settings

apply_offline_env()


def pytest_configure(config: pytest.Config) -> None:
    """One torch/OpenMP thread for the whole suite, subprocesses included. On this 2-core
    machine, torch with 2 threads ran 5 to 15 times slower than with 1 as soon as other
    work shared the cores (its threads spin at barriers while one of them waits for a
    core); with 1 thread the suite's time depends much less on the load (figures in
    docs/architecture.md, "Tests")."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATREC_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CHATREC_KB_DIR", str(KB_DIR))
    monkeypatch.delenv("CHATREC_CONFIG", raising=False)


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_kb(KB_DIR)


@pytest.fixture(scope="session")
def shared_index(tmp_path_factory, kb):
    from chatrec.retrieval.chroma import ChromaIndex

    settings = Settings(kb_dir=KB_DIR, data_dir=tmp_path_factory.mktemp("index"))
    index = ChromaIndex(settings)
    index.build(kb)
    return index


@pytest.fixture
def fake_bot(tmp_path, kb, shared_index):
    from chatrec.chatbot import Chatbot
    from chatrec.llm.fake import FakeLLM

    return Chatbot(fake_settings(tmp_path), llm=FakeLLM(), kb=kb, index=shared_index)


@pytest.fixture(scope="session")
def real_bot(tmp_path_factory, kb):
    """The real pipeline: SmolLM2 in 4-bit NF4, MiniLM, persistent Chroma, the KG, SQLite."""
    from chatrec.chatbot import Chatbot

    settings = load_settings(kb_dir=str(KB_DIR), data_dir=str(tmp_path_factory.mktemp("real")))
    assert settings.llm.backend == "transformers" and settings.llm.quantization == "nf4"
    return Chatbot(settings)


@pytest.fixture(scope="session")
def alias(kb):
    """``alias("pixel 8")`` -> that device's item id."""

    def find(name: str) -> str:
        for item in kb.items.values():
            if name in item.aliases:
                return item.id
        raise KeyError(name)

    return find
