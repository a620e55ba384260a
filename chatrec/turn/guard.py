"""The first stage of a turn: size and encoding limits, PII masked, prompt injection flagged.

Everything after this stage sees only the masked text, so nothing downstream (prompt,
store, logs, training data) can hold what the mask removed.
"""

from __future__ import annotations

import re
from typing import Any

from chatrec.config import PIISettings
from chatrec.turn.pii import mask_pii

# Attempts to re-instruct the model, not everyday phrases that share a word with them:
# "you are now sitting in row 44", "ignore my previous message", "the system prompted me".
_INJECTION = re.compile(
    r"(?i)\b(?:"
    r"(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|each\s+|every\s+)?(?:of\s+)?(?:the\s+|your\s+|these\s+)?"
    r"(?:previous|prior|above|earlier|preceding|original|system|initial)?\s*(?:instructions?|prompts?|rules|guidelines|directives)"
    r"|you\s+are\s+now\s+(?:in\s+)?(?:an?\s+|the\s+)?(?:(?:\w+\s+){0,2}(?:assistant|ai|chatbot|bot|model|persona|character|"
    r"hacker|pirate|villain)|dan|jailbroken|unrestricted|unfiltered|uncensored|free\s+(?:of|from)\s+\w+|no\s+longer\s+\w+|"
    r"(?:developer|dev|god|debug|admin|jailbreak|dan)\s+mode)"
    r"|from\s+now\s+on,?\s+you\s+(?:are|will|must|shall)\s+(?:an?\s+\w+|no\s+longer|ignore|act|respond|answer)"
    r"|(?:pretend|act)\s+(?:to\s+be|as\s+if\s+you|you\s+are|like\s+you\s+are)\s+(?:an?\s+)?(?:\w+\s+){0,2}(?:ai|assistant|model|"
    r"unrestricted|unfiltered|dan|jailbroken|without)"
    r"|(?:reveal|show|print|repeat|output|leak)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+|initial\s+|hidden\s+)?"
    r"(?:prompt|instructions)"
    r"|system\s+prompts?|jailbreak\w*|developer\s+mode|dan\s+mode|do\s+anything\s+now"
    r")(?!\w)"
    r"|</?(?:system|assistant|im_start|im_end)>|\[/?(?:system|inst)\]"
)


# zero-width and other invisible format characters: a message of only these says nothing
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad"))


class InputRejected(ValueError):
    """The message breaks a size or encoding limit."""


def guard(message: Any, max_chars: int, trace: dict[str, Any], pii: PIISettings | None = None) -> str:
    """The message as later stages may see it (PII masked as ``pii`` says: the labels it keeps,
    the optional NER model); raises :class:`InputRejected`."""
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
    pii = pii or PIISettings()
    masked = mask_pii(text, keep=pii.keep, ner=pii.ner)
    trace["guard"] = {"pii_masked": masked != text, "injection_suspected": bool(_INJECTION.search(text))}
    return masked
