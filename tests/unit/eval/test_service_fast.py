"""Issue 17: `chatrec eval` spent ~2.6 s per one-turn service conversation, most of it in
per-turn embedding calls (the message, then the reply and the logged answer for the cosine
metric). The runner now embeds a window of conversations in one batched call first."""

from __future__ import annotations

from chatrec.config import load_settings
from chatrec.eval.options import EvalOptions
from chatrec.eval.replay import Replayer


def test_eval_2_6_s_per_service_conversation_is_fixed_messages_embedded_in_one_batch(tmp_path, kb, shared_index):
    from chatrec.chatbot import build_planner

    settings = load_settings(data_dir=str(tmp_path / "state"), llm={"backend": "fake"})
    planner = build_planner(settings, kb=kb, retriever=shared_index)
    assert planner.router  # trained (or loaded) before counting
    opts = EvalOptions(transcripts="unused", out=str(tmp_path / "out"), ablations=[], baselines=False)
    replayer = Replayer(settings, opts, frozenset(), planner=planner)
    convs = [c for c in kb.transcripts if not any(t.recommended for t in c.turns)][:8]
    turns = sum(1 for c in convs for t in c.turns if t.role == "agent")
    embedder = shared_index.embedder
    calls: list[list[str]] = []
    inner = embedder.embed

    def spy(texts: list[str]):
        calls.append(list(texts))
        return inner(texts)

    embedder.embed = spy  # type: ignore[method-assign]
    try:
        replayer.prewarm(convs)
        assert len(calls) == 1 and len(calls[0]) >= turns  # every message and logged answer, one call
        rows = [replayer.conversation(c) for c in convs]
    finally:
        del embedder.embed
    later = [t for call in calls[1:] for t in call]
    # after the batch only the system's own replies (filled templates, each once) are embedded
    assert len(later) <= turns and all(not any(t == m for m in calls[0]) for t in later)
    scored = [t for r in rows for t in r["turns"] if t["kind"] == "service"]
    assert scored and all("service.cosine" in t["metrics"] for t in scored)
