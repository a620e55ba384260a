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


# zero-width and other invisible format characters: a message of only these says nothing
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad"))


class InputRejected(ValueError):
    """The message breaks a size or encoding limit."""


def guard(message: Any, max_chars: int, trace: dict[str, Any]) -> str:
    """The message as later stages may see it (PII masked); raises :class:`InputRejected`."""
    if not isinstance(message, str):
        raise InputRejected("message must be text")
    text = message.replace("\x00", "").strip()
    if not text.translate(_INVISIBLE).strip():
        raise InputRejected("message is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputRejected("message is not valid text (a lone UTF-16 surrogate)") from None
    if len(text) > max_chars:
        raise InputRejected(f"message is {len(text)} characters; the limit is {max_chars}")
    masked = mask_pii(text)
    trace["guard"] = {"pii_masked": masked != text, "injection_suspected": bool(_INJECTION.search(text))}
    return masked
