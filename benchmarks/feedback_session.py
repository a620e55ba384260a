"""A scripted feedback session: demo users chat with the live Chatbot (scripted fake LLM) and vote,
so ``chatrec learn --adapter`` has labelled turns to learn from (docs/feedback.md).

Each of ``--users`` demo users asks four questions (recommendations, orders, returns, shipping);
the scripted customer gives a thumbs up to a reply that recommends items and a thumbs down to
one that does not (a rule an adapter can learn; real shops' votes are noisier). Everything is
written to the store under ``--data-dir``; no dialogue text from ../shared is used.

    python benchmarks/feedback_session.py --data-dir /tmp/fb --users 10
    chatrec --data-dir /tmp/fb learn --adapter --steps 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from chatrec.chatbot import Chatbot
from chatrec.config import load_settings
from chatrec.llm.fake import FakeLLM

MESSAGES = [
    "Can you recommend wireless earbuds?",
    "How do I return my headphones?",
    "I need a phone case",
    "Where is my order #VW-48213?",
    "recommend a gaming mouse",
    "what is your shipping policy?",
    "any good laptops under $900?",
    "my email is a@b.com, can I change my address?",
]


def session(bot: Chatbot, users: int) -> dict[str, int]:
    """Run the scripted conversations on ``bot``; returns the votes given by kind."""
    votes = {"thumbs_up": 0, "thumbs_down": 0}
    for n in range(1, users + 1):
        cid = None
        for message in MESSAGES[n % 2 :: 2]:
            r = bot.ask(message, cid, f"U{n:03d}")
            cid = r.conversation_id
            kind = "thumbs_up" if r.recommendations else "thumbs_down"
            bot.store.add_feedback(r.turn_id, kind)  # type: ignore[arg-type]
            votes[kind] += 1
    return votes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--users", type=int, default=10)
    args = ap.parse_args()
    settings = load_settings(data_dir=str(args.data_dir), llm={"backend": "fake"})
    t0 = time.perf_counter()
    votes = session(Chatbot(settings, llm=FakeLLM()), args.users)
    print(f"{args.users} conversations, votes {votes}, {time.perf_counter() - t0:.0f} s; store: {settings.db_path}")


if __name__ == "__main__":
    main()
