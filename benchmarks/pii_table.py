"""PII masking before and after, per category, on real-looking customer messages.

    python benchmarks/pii_table.py [--out benchmarks/results/pii_table.md] [--old-commit a1b8fb2]

Runs a fixed list of messages (per category, plus decoys that must stay as written) through
the masker of ``--old-commit`` (``git show <commit>:chatrec/turn/pii.py``, loaded as a
temporary module) and through today's ``mask_pii`` with its defaults (ORDER_REF kept, no NER),
and writes a Markdown table: category, message, before, after, and whether "after" is what it
should be. Also reports the time per message of both, and of the new one with the NER model
(``ner=True``) when the 'ner' extra is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chatrec.turn.pii import mask_pii, ner_available

REPO = Path(__file__).resolve().parents[1]

# (category, message, the placeholder that must appear; None: the message must stay as written)
MESSAGES: list[tuple[str, str, str | None]] = [
    ("card", "order: 4111111111111111 was charged twice", "<CARD_NUMBER>"),
    ("card", "customer 4111111111111111, please refund", "<CARD_NUMBER>"),
    ("card", "card 4111.1111.1111.1111 exp 12/27", "<CARD_NUMBER>"),
    ("card", "I paid with 5555/5555/5555/4444", "<CARD_NUMBER>"),
    ("card", "my card is four one one one one one one one one one one one one one one one", "<CARD_NUMBER>"),
    ("card", "card 4111 1111 1111 1111, cvv 123", "<CARD_NUMBER>"),
    ("email", "jane dot doe at gmail dot com is my email", "<EMAIL>"),
    ("email", "email me: jane_doe at gmail.com", "<EMAIL>"),
    ("email", "reach me at j.doe+air@example.co.uk", "<EMAIL>"),
    ("email", "my email is jdoe at acme dot fr", "<EMAIL>"),
    ("name", "my name is jane doe and my bag is lost", "<NAME>"),
    ("name", "Jane Doe here, my bag never arrived", "<NAME>"),
    ("name", "Hi, this is Priya. My order is late", "<NAME>"),
    ("name", "Mr. Okafor called about the refund", "<NAME>"),
    ("name (NER)", "I spoke to Maria Garcia at the desk and she promised a voucher", "<NAME>"),
    ("address", "12 rue de la Paix, 75002 Paris", "<ADDRESS>"),
    ("address", "livrer au 3 bis avenue Foch 75116 Paris", "<ADDRESS>"),
    ("address", "Calle Mayor 5, 28013 Madrid", "<ADDRESS>"),
    ("address", "ship to 221B Baker Street, London NW1 6XE", "<ADDRESS>"),
    ("secret", "my password is hunter2", "<SECRET>"),
    ("secret", "pin: 1234", "<SECRET>"),
    ("secret", "api key sk-abc123def456ghi789jkl stopped working", "<SECRET>"),
    ("secret", "the verification code is 482913", "<SECRET>"),
    ("phone", "Call me ... 5733013780", "<PHONE>"),
    ("phone", "Please call me ASAP about my lost luggage. 5733013780", "<PHONE>"),
    ("phone", "still waiting for a callback, 6155382099", "<PHONE>"),
    ("phone", "mon numéro: 0612345678", "<PHONE>"),
    ("phone", "+49 151 23456789 is my mobile", "<PHONE>"),
    ("phone", "call five seven three three zero one three seven eight zero", "<PHONE>"),
    ("booking ref", "booking ref ABC123, flight tomorrow", "<BOOKING_REF>"),
    ("booking ref", "my PNR is QX7T9K", "<BOOKING_REF>"),
    ("booking ref", "reservation number: 8841-2271", "<BOOKING_REF>"),
    ("booking ref", "confirmation code XK92LM", "<BOOKING_REF>"),
    ("booking ref", "e-ticket 0161234567890", "<BOOKING_REF>"),
    ("booking ref", "@USAirways on hold for 45 min, ref #AB12CD", "<BOOKING_REF>"),
    ("account id", "my frequent flyer number is AB1234567", "<ACCOUNT_ID>"),
    ("account id", "my member number is 5733013780", "<ACCOUNT_ID>"),
    ("name", "@united Hi, I am Susan Miller, my flight was cancelled", "<NAME>"),
    ("user id", "jane.doe@gmail.com", "<EMAIL>"),
    ("user id", "4111-1111-1111-1111", "<CARD_NUMBER>"),
    ("user id", "+14155550134", "<PHONE>"),
    ("user id", "5733013780", "<PHONE>"),
    ("decoy: handle", "@united123 my bag is lost", None),
    ("decoy: handle", "@AmericanAir2020 still waiting", None),
    ("decoy: handle", "@5733013780 hello", None),
    ("decoy: flight", "UA 1234 delayed again", None),
    ("decoy: flight", "flight 815 cancelled", None),
    ("decoy: flight", "flight UA815 to SFO, seat 44C, gate B12", None),
    ("decoy: flight", "my booking UA1234 was moved", None),
    ("decoy: order id", "order #VW-48213 has not arrived", None),
    ("decoy: order id", "order 615538209947 is late", None),
    ("decoy: order id", "tracking number 1Z999AA10123456784", None),
    ("decoy: price", "it was $349.99, now 1,299.00 €", None),
    ("decoy: quantity", "I need 3 cables and 10000 units", None),
    ("decoy: date", "delivered on 12/03/2025 at 10:30", None),
    ("decoy: shop", "I bought it at amazon.com", None),
    ("decoy: shop", "cheaper at bestbuy dot com", None),
    ("decoy: phrase", "my password is not working", None),
    ("decoy: phrase", "the pin is bent on the cable", None),
    ("decoy: phrase", "you are now sitting in row 44", None),
    ("decoy: phrase", "I rated it 5 via the app", None),
    ("decoy: product", "Sony WH-1000XM5 ($349.99)", None),
    ("decoy: product", "EAN 4006381333931", None),
    ("decoy: id", "1135426177 units", None),
    ("decoy: flight", "@JetBlue flight 1234 from BOS on 2/24 delayed", None),
    ("decoy: phrase", "I am a member since 2015", None),
]


def load_old(commit: str):
    source = subprocess.run(
        ["git", "show", f"{commit}:chatrec/turn/pii.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_pii.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_pii", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_pii"] = module
    spec.loader.exec_module(module)
    return module.mask_pii


def ms_per_message(fn, texts: list[str], rounds: int = 20) -> float:
    fn(texts[0])  # warm up (and load a model once)
    t0 = time.perf_counter()
    for _ in range(rounds):
        for t in texts:
            fn(t)
    return (time.perf_counter() - t0) / (rounds * len(texts)) * 1000


def _ok(text: str, after: str, want: str | None) -> bool:
    return after == text if want is None else want in after


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/pii_table.md"))
    ap.add_argument("--old-commit", default="a1b8fb2")
    args = ap.parse_args(argv)
    old = load_old(args.old_commit)
    ner = ner_available()
    texts = [m for _, m, _ in MESSAGES]
    rows, ok_before, ok_after = [], 0, 0
    for category, text, want in MESSAGES:
        before = old(text)
        after = mask_pii(text, ner=ner) if category == "name (NER)" else mask_pii(text)
        b, a = _ok(text, before, want), _ok(text, after, want)
        ok_before += b
        ok_after += a
        rows.append(
            f"| {category} | {_cell(text)} | {_cell(before)} {'✓' if b else '✗'} | {_cell(after)} {'✓' if a else '✗'} |"
        )
    old_ms = ms_per_message(old, texts)
    new_ms = ms_per_message(mask_pii, texts)
    ner_ms = ms_per_message(lambda t: mask_pii(t, ner=True), texts) if ner else None
    lines = [
        "# PII masking: before and after",
        "",
        f"Generated by `python benchmarks/pii_table.py`: {len(MESSAGES)} messages, the masker of commit "
        f"`{args.old_commit}` (before) against today's `mask_pii` with its defaults (after: `ORDER_REF` kept, "
        "rules only; the `name (NER)` row uses `ner=True`"
        + ("" if ner else ", but the 'ner' extra is not installed here, so it ran on the rules")
        + "). ✓ = the placeholder expected for the category is there (for a decoy: the message is unchanged).",
        "",
        f"- right before: **{ok_before}/{len(MESSAGES)}**, right after: **{ok_after}/{len(MESSAGES)}**",
        f"- time per message (mean of {len(texts)} messages x 20, one process, this machine): before "
        f"{old_ms:.3f} ms, after {new_ms:.3f} ms"
        + (f", after with the NER model {ner_ms:.3f} ms" if ner_ms is not None else ""),
        "",
        "| category | message | before | after |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print(
        f"right before {ok_before}/{len(MESSAGES)}, after {ok_after}/{len(MESSAGES)}; "
        f"ms/message before {old_ms:.3f}, after {new_ms:.3f}" + (f", NER {ner_ms:.3f}" if ner_ms else "")
    )
    print(f"wrote {args.out}")
    return 0 if ok_after == len(MESSAGES) else 1


if __name__ == "__main__":
    raise SystemExit(main())
