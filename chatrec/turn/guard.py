"""The first stage of a turn: size and encoding limits, PII masked, prompt injection flagged.

Everything after this stage sees only the masked text, so nothing downstream (prompt,
store, logs, training data) can hold what the mask removed.
"""

from __future__ import annotations

import re
from typing import Any

from chatrec.turn.pii import mask_pii

_INJECTION = re.compile(
    r"(?i)\b(?:ignore (?:all |any )?(?:previous|prior|above) (?:instructions|prompts?)|"
    r"you are now|system prompt|disregard (?:the )?(?:rules|instructions)|jailbreak)\b"
)


class InputRejected(ValueError):
    """The message breaks a size or encoding limit."""


def guard(message: Any, max_chars: int, trace: dict[str, Any]) -> str:
    """The message as later stages may see it (PII masked); raises :class:`InputRejected`."""
    if not isinstance(message, str):
        raise InputRejected("message must be text")
    text = message.replace("\x00", "").strip()
    if not text:
        raise InputRejected("message is empty")
    if len(text) > max_chars:
        raise InputRejected(f"message is {len(text)} characters; the limit is {max_chars}")
    masked = mask_pii(text)
    trace["guard"] = {"pii_masked": masked != text, "injection_suspected": bool(_INJECTION.search(text))}
    return masked
