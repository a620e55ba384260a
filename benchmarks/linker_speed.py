"""Item linking per message: the one-scan linker against a regex per catalogue name.

Every customer and agent message of TRANSCRIPTS is linked against the KB's catalogue twice,
side by side in one run: by ``EntityLinker.items`` (one scan of the message, names looked up
by their first three characters) and by the reference it replaced (one regex per name,
longest name first). Reports both mean times per message, their ratio, and whether the
two found the same mentions (they must).

    python benchmarks/linker_speed.py /tmp/redial_kb /tmp/redial_valid/transcripts.jsonl \
        --limit 1500 --out benchmarks/results/linker_speed_redial.json
    python benchmarks/linker_speed.py kb kb/transcripts.jsonl --out benchmarks/results/linker_speed_demo.json
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

from chatrec.kb import load_kb
from chatrec.turn.state import EntityLinker, normalise


def regex_items(linker: EntityLinker, text: str) -> list[tuple[str, int, int]]:
    norm = normalise(text)
    taken, found = [False] * len(norm), []
    for name, item_id in linker._names:
        if len(name) < 3:
            continue
        for m in re.finditer(rf"(?<![\w]){re.escape(name)}(?![\w])", norm):
            if not any(taken[m.start() : m.end()]):
                taken[m.start() : m.end()] = [True] * (m.end() - m.start())
                found.append((item_id, m.start(), m.end()))
    return sorted(found, key=lambda x: x[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kb", type=Path)
    ap.add_argument("transcripts", type=Path)
    ap.add_argument("--limit", type=int, help="the first N messages only")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    kb = load_kb(args.kb)
    linker = EntityLinker(kb)
    texts = [
        t["text"]
        for line in args.transcripts.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for t in json.loads(line)["turns"]
    ][: args.limit]
    t_scan = t_regex = 0.0
    differ = 0
    for text in texts:
        a = time.perf_counter()
        new = [(m.item_id, m.start, m.end) for m in linker.items(text)]
        b = time.perf_counter()
        old = regex_items(linker, text)
        t_scan, t_regex = t_scan + b - a, t_regex + time.perf_counter() - b
        differ += new != old
    result = {
        "kb": str(args.kb),
        "catalogue_items": len(kb.items),
        "messages": len(texts),
        "one_scan_ms_per_message": round(1000 * t_scan / len(texts), 4),
        "regex_per_name_ms_per_message": round(1000 * t_regex / len(texts), 3),
        "ratio": round(t_regex / t_scan, 1),
        "messages_with_different_mentions": differ,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
