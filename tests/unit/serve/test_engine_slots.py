"""The serve edge and the engine (issue 14 parts 2 and 4): the gate's slot count follows the
engine, and a request picks a LoRA adapter by name (``/v1/chat`` ``adapter``, the OpenAI ``model``).

The engine here is the scripted fake with named "adapters" (each a scripted model of its own);
the real llama.cpp adapters are tested in tests/unit/train/test_gguf_lora.py.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from chatrec.chatbot import Chatbot
from chatrec.config import ServeSettings
from chatrec.llm.base import UnknownAdapter
from chatrec.llm.fake import FakeLLM
from chatrec.serve.app import create_app
from chatrec.serve.gate import engine_slots
from tests_support import fake_settings


class SlottedFake(FakeLLM):
    """The fake engine with llama.cpp's two extra promises: parallel slots and named adapters."""

    def __init__(self, slots: int = 1, adapters: tuple[str, ...] = ()):
        super().__init__()
        self.slots, self.adapters = slots, adapters
        self.adapted = {name: FakeLLM() for name in adapters}  # each records the prompts it was given

    def with_adapter(self, name: str | None):
        if name is None:
            return self
        if name not in self.adapters:
            raise UnknownAdapter(f"unknown adapter {name!r}")
        return self.adapted[name]


def _client(tmp_path, kb, index, llm, **serve) -> TestClient:
    settings = fake_settings(tmp_path)
    settings.llm.adapters = {a: "-" for a in getattr(llm, "adapters", ())}  # what /v1/models lists
    bot = Chatbot(settings, llm=llm, kb=kb, index=index)
    return TestClient(create_app(bot, ServeSettings(ui=False, rate_per_minute_ip=0, rate_per_minute_key=0, **serve)))


def test_the_gate_takes_the_engines_slots_unless_max_concurrent_is_set(tmp_path, kb, shared_index):
    assert engine_slots(FakeLLM()) == 1  # an engine without slots (NF4) runs one turn at a time
    assert engine_slots(SlottedFake(slots=4)) == 4
    assert engine_slots(SlottedFake(slots=4), configured=2) == 2
    with _client(tmp_path, kb, shared_index, SlottedFake(slots=4)) as c:
        assert c.app.state.gate.max_concurrent == 4  # type: ignore[attr-defined]
    with _client(tmp_path / "b", kb, shared_index, SlottedFake(slots=4), max_concurrent=1) as c:
        assert c.app.state.gate.max_concurrent == 1  # type: ignore[attr-defined]


def test_an_adapter_is_chosen_per_request_by_name(tmp_path, kb, shared_index):
    llm = SlottedFake(adapters=("shop_a",))
    adapted = llm.adapted["shop_a"]
    msg = "How long does shipping take?"
    with _client(tmp_path, kb, shared_index, llm) as c:

        def sent() -> tuple[int, int]:
            return len(llm.calls), len(adapted.calls)

        assert c.post("/v1/chat", json={"message": msg, "stream": False}).status_code == 200
        assert sent() == (1, 0)
        assert c.post("/v1/chat", json={"message": msg, "stream": False, "adapter": "shop_a"}).status_code == 200
        assert sent() == (1, 1)
        oai = c.post("/v1/chat/completions", json={"model": "shop_a", "messages": [{"role": "user", "content": msg}]})
        assert oai.status_code == 200 and sent() == (1, 2)
        oai = c.post("/v1/chat/completions", json={"model": "chatrec", "messages": [{"role": "user", "content": msg}]})
        assert oai.status_code == 200 and sent() == (2, 2)
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["chatrec", "shop_a"]


def test_an_unknown_adapter_name_is_400(tmp_path, kb, shared_index):
    for i, llm in enumerate([SlottedFake(adapters=("shop_a",)), FakeLLM()]):  # FakeLLM: no named adapters
        with _client(tmp_path / str(i), kb, shared_index, llm) as c:
            r = c.post("/v1/chat", json={"message": "hi", "stream": False, "adapter": "shop_x"})
            assert r.status_code == 400 and "shop_x" in r.text
            r = c.post(
                "/v1/chat/completions", json={"model": "shop_x", "messages": [{"role": "user", "content": "hi"}]}
            )
            assert r.status_code == 400 and "shop_x" in r.text
            assert c.get("/v1/models/shop_x").status_code == 404
