"""The knowledge base: load and validate the files under ``kb/`` (see docs/formats.md).

A bad row is reported as ``file:line: reason`` and nothing is half-loaded.
"""

from chatrec.kb.load import (
    FILES,
    RECOMMEND_LABEL,
    KBError,
    KnowledgeBase,
    check_conversation,
    is_heldout,
    json_objects,
    load_kb,
    read_jsonl,
    read_triples,
    template_examples,
)

__all__ = [
    "FILES",
    "RECOMMEND_LABEL",
    "KBError",
    "KnowledgeBase",
    "check_conversation",
    "is_heldout",
    "json_objects",
    "load_kb",
    "read_jsonl",
    "read_triples",
    "template_examples",
]
