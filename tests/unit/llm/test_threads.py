"""Issue 14 item 5: torch work on a process's main thread ran with torch's default threads (one per
core), which on a busy 2-core machine was 5 to 15 times slower than 1 thread. Every entry point now
sets torch's threads by one rule (chatrec/llm/threads.py), which a setting overrides."""

from __future__ import annotations

import pytest
import torch

from chatrec.config import load_settings
from chatrec.llm.threads import configure_threads, rule_threads, torch_threads
from tests_support import fake_settings


@pytest.fixture
def torch_default(monkeypatch):
    """A process as torch starts it: no OMP_NUM_THREADS, one thread per core; restored afterwards."""
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(max(2, torch.get_num_threads()))  # torch's default on a 2-core machine is 2
    yield
    torch.set_num_threads(before)


def test_the_rule_is_half_the_cores_and_at_least_one():
    assert [rule_threads(c) for c in (1, 2, 3, 4, 16)] == [1, 1, 1, 2, 8]


def test_settings_override_the_rule_in_order(torch_default, monkeypatch):
    assert torch_threads(load_settings()) == (rule_threads(), torch_threads(None)[1])
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert torch_threads(load_settings())[0] == 3
    assert torch_threads(load_settings(llm={"threads": 4}))[0] == 4  # the transformers backend's own knob
    assert torch_threads(load_settings(llm={"backend": "llamacpp", "threads": 4}))[0] == 3  # llama.cpp's, not torch's
    assert torch_threads(load_settings(torch_threads=5, llm={"threads": 4})) == (5, "torch_threads")
    monkeypatch.setenv("CHATREC_TORCH_THREADS", "6")
    assert load_settings().torch_threads == 6


def test_main_thread_torch_work_does_not_run_with_torchs_default_threads(torch_default, tmp_path, kb, shared_index):
    """Building a chatbot (what chat, serve, evaluation and the UI do) sets torch's threads by the
    rule before any torch work, and OMP_NUM_THREADS for the processes it starts."""
    import os

    from chatrec.chatbot import Chatbot
    from chatrec.llm.fake import FakeLLM

    Chatbot(fake_settings(tmp_path), llm=FakeLLM(), kb=kb, index=shared_index)
    assert torch.get_num_threads() == rule_threads()
    assert os.environ["OMP_NUM_THREADS"] == str(rule_threads())
    assert configure_threads("train", fake_settings(tmp_path, torch_threads=1)) == 1 == torch.get_num_threads()


def test_every_chatrec_command_sets_the_threads(torch_default, tmp_path):
    """The CLI sets them in ``settings_from``, which every command that loads settings goes through."""
    from click.testing import CliRunner

    from chatrec.cli.main import main

    res = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path / "state"), "validate"], env={"CHATREC_TORCH_THREADS": "1"}
    )
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == 1
