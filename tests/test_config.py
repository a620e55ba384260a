import pytest

from chatrec.config import Settings, load_settings
from chatrec.llm import make_llm


def test_env_overrides_defaults(monkeypatch):
    monkeypatch.setenv("CHATREC_LLM__MAX_NEW_TOKENS", "42")
    assert load_settings().llm.max_new_tokens == 42


def test_toml_file_then_env_then_overrides(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text('history_turns = 2\n[llm]\nmax_new_tokens = 10\ntemperature = 0.5\n')
    monkeypatch.setenv("CHATREC_LLM__MAX_NEW_TOKENS", "20")
    s = load_settings(cfg, llm={"temperature": 0.1})
    assert s.history_turns == 2 and s.llm.max_new_tokens == 20 and s.llm.temperature == 0.1


def test_openai_backend_needs_base_url():
    with pytest.raises(ValueError, match="base_url"):
        load_settings(llm={"backend": "openai"})


def test_unknown_backend_lists_valid_ones():
    s = Settings()
    object.__setattr__(s.llm, "backend", "nope")
    with pytest.raises(ValueError, match="fake.*openai.*transformers"):
        make_llm(s)
