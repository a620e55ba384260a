"""Turn question-answer logs (CSV or JSON Lines) into KB transcripts and seed answer templates.

Input: one *exchange* per row, a customer message and the agent's answer, found by a
:class:`ColumnMapping`. Rows sharing a conversation id become one multi-turn
conversation (in file order); without a conversation column every row is its own
one-exchange conversation. Presets name common layouts: ``bitext`` is the Bitext
customer-support CSV (``instruction``, ``response``, ``intent``; other columns ignored),
``generic`` expects ``user`` and ``agent`` columns unless told otherwise.

What happens to each row:

- Every text is masked with :func:`chatrec.turn.pii.mask_pii` before it is written.
- ``{{Order Number}}`` placeholders in answers become template slots ``{order_number}``
  (snake_case; a trailing "Anonymized" is dropped; a placeholder that is only a number
  or a hash becomes ``{reference_number}``). Each slot gets a human default ("your
  order number", "our customer support phone number", UI labels such as "Live Chat"
  stay as they are). A number of 4+ digits that the answer repeats from the question
  ("cancel order 12345678" -> "Order 12345678 is cancelled") becomes ``{order_id}``
  (or ``{reference_number}``), so no customer's number is frozen into a template.
  Transcript texts are written with the defaults filled in, as if rendered by the template.
- Intents are snake_cased. For each intent, the medoid answer (highest summed
  token-set Jaccard similarity to that intent's answers; ties go to the earliest)
  seeds a template ``<prefix>_<intent>`` (prefix = the preset name unless given).
  Every agent turn of that intent gets its ``template_id`` (``link_all``, the default):
  each logged customer message then teaches the router and the template index which
  answer it needs, in the shop's own wording. With ``link_all=False`` only answers that
  are the medoid or near-identical (Jaccard >= ``similarity``, default 0.8) are linked
  and the others keep only the intent.
  A template-id column, when mapped, groups answers explicitly instead: every row
  naming the same template id is linked to one template built from the medoid of
  those rows.
- A bad row (missing or empty required value, a value of the wrong type, an invalid
  JSON line, an unparsable timestamp, a CSV row with the wrong number of fields) is
  reported as ``file:line: reason`` and skipped; the rest is imported. No valid row
  at all raises :class:`ImportFailed`.

Encoding: UTF-8, with or without a byte-order mark. Anything else is refused with
the file, line and byte of the first invalid sequence, rather than guessed: a wrong
guess (cp1252 for a Shift-JIS file, say) would write mojibake into the KB without
anyone noticing. Pass ``encoding="cp1252"`` (``--encoding`` on the command line)
when you know the file's encoding.

Output (``transcripts.jsonl``, ``templates.jsonl``, and a minimal ``shop.json`` and
empty ``catalogue.jsonl`` when the folder has none) is staged in a temporary folder
inside the output folder, loaded there with :func:`chatrec.kb.load_kb`, and only then
moved into place with ``os.replace``: a failed import leaves the folder as it was.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

from chatrec.importers.staging import ImportFailed, csv_rows, write_validated
from chatrec.kb import json_objects
from chatrec.turn.pii import mask_pii
from chatrec.types import Conversation, Template

__all__ = ["ColumnMapping", "ImportFailed", "ImportReport", "PRESETS", "import_file", "read_exchanges"]

Format = Literal["csv", "jsonl"]
OnExisting = Literal["error", "overwrite", "merge"]
MAX_MEDOID_CANDIDATES = 400


@dataclass(frozen=True)
class ColumnMapping:
    """Which column (CSV header or JSON key) holds what. ``user`` and ``agent`` are required."""

    user: str
    agent: str
    conversation: str | None = None
    user_id: str | None = None
    intent: str | None = None
    template_id: str | None = None
    timestamp: str | None = None

    def columns(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


PRESETS: dict[str, ColumnMapping] = {
    "bitext": ColumnMapping(user="instruction", agent="response", intent="intent"),
    "generic": ColumnMapping(user="user", agent="agent"),
}


@dataclass
class ImportReport:
    source: Path
    out_dir: Path
    encoding: str = "utf-8"
    rows_read: int = 0
    rows_imported: int = 0
    conversations: int = 0
    turns: int = 0
    templates: int = 0
    turns_with_template: int = 0
    slots: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files_written: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ------------------------------------------------------------------ reading


@dataclass
class _Exchange:
    line: int
    conversation: str | None
    user_id: str | None
    intent: str | None
    template_hint: str | None
    started_at: datetime | None
    user_text: str  # masked, placeholders filled with defaults
    agent_text: str  # masked, placeholders filled with defaults
    agent_template: str  # masked, placeholders as {slot}, no other braces


class _Bad(Exception):
    pass


def _decode(path: Path, data: bytes, encoding: str) -> tuple[str, str]:
    if encoding.lower() not in ("auto", "utf-8", "utf8"):
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise ImportFailed(f"{path}: cannot read as {encoding}: {exc}") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data, used = data[3:], "utf-8-sig"
    else:
        used = "utf-8"
    try:
        return data.decode("utf-8"), used
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ImportFailed(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {col}: {exc.reason}); "
            "re-save the file as UTF-8, or give its encoding (e.g. --encoding cp1252)"
        ) from exc


def _detect_format(path: Path, text: str) -> Format:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def _csv_records(path: Path, text: str, mapping: ColumnMapping, skipped: list[str]) -> Iterator[tuple[int, dict]]:
    """``(line, {column: value})`` for each CSV row with the header's number of fields."""
    csv.field_size_limit(16 * 1024 * 1024)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    for start, row in csv_rows(path, reader, skipped):
        if header is None:
            header = [c.strip() for c in row]
            missing = [c for c in (mapping.user, mapping.agent) if c not in header]
            optional_missing = [
                c for k, c in mapping.columns().items() if k not in ("user", "agent") and c not in header
            ]
            if missing or optional_missing:
                raise ImportFailed(
                    f"{path}:{start}: column(s) {missing + optional_missing} not in the header "
                    f"(found: {', '.join(header) or 'nothing'})"
                )
            continue
        if len(row) != len(header):
            skipped.append(f"{path}:{start}: expected {len(header)} fields, got {len(row)}")
            continue
        yield start, dict(zip(header, row))
    if header is None:
        raise ImportFailed(f"{path}: no header line (the file is empty)")


def _text_value(record: dict, column: str, required: bool) -> str | None:
    if column not in record or record[column] is None:
        if required:
            raise _Bad(f"missing value for column {column!r}")
        return None
    value = record[column]
    if not isinstance(value, str):
        raise _Bad(f"column {column!r} must be text, got {type(value).__name__}")
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not value and required:
        raise _Bad(f"empty text in column {column!r}")
    return value or None


def _id_value(record: dict, column: str) -> str | None:
    value = record.get(column)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Bad(f"column {column!r} must be text or a whole number, got {type(value).__name__}")
    value = re.sub(r"\s+", "_", str(value).strip())
    return value or None


_TS_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


def _timestamp(record: dict, column: str) -> datetime | None:
    value = record.get(column)
    if value is None or value == "":
        return None
    dt: datetime | None = None
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        or (isinstance(value, str) and re.fullmatch(r"\d{9,13}(?:\.\d+)?", value.strip()))
    ):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        try:
            dt = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            dt = None
    elif isinstance(value, str):
        s = value.strip()
        try:
            dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
        except ValueError:
            for fmt in _TS_FORMATS:
                try:
                    dt = datetime.strptime(s, fmt)
                    break
                except ValueError:
                    continue
    if dt is None:
        raise _Bad(f"unparsable timestamp {value!r} in column {column!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).replace(second=0, microsecond=0)


# ------------------------------------------------------------------ placeholders and slots

_PLACEHOLDER = re.compile(r"\{\{\s*(.+?)\s*\}\}", re.DOTALL)
_SENTINEL = re.compile("\ue000(\\d+)\ue001")
_OUR_WORDS = re.compile(
    r"\b(?:support|service|assistance|care|company|complaint|feedback|business|shop|store|"
    r"helpline|hotline|team)\b",
    re.IGNORECASE,
)
_YOUR_WORDS = re.compile(
    r"\b(?:number|id|date|name|address|amount|method|card|email\s+address|phone|username|"
    r"password|account\s+number|postcode|zip)\b",
    re.IGNORECASE,
)
_SPECIAL_DEFAULTS = {
    "website_name": "website",
    "website": "website",
    "website_or_app": "website or app",
    "website_app_name": "website or app",
    "website_url": "website address",
    "company_website": "website",
    "company_name": "our company",
    "mobile_app_name": "app",
    "customer_support_availability": "during our opening hours",
    "support_team_availability": "during our opening hours",
    "customer_support_hours": "our opening hours",
    "customer_service_hours": "our opening hours",
    "customer_assistance_hours": "our opening hours",
    "operating_hours": "our opening hours",
    "business_hours": "our opening hours",
    "reference_number": "your reference number",
    "order_id": "your order number",
}


def snake_case(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def _placeholder_label(raw: str) -> str:
    label = re.sub(r"\s+", " ", raw).strip()
    return re.sub(r"\s+anonymi[sz]ed$", "", label, flags=re.IGNORECASE).strip() or label


def slot_name(placeholder: str) -> str:
    """``Order Number`` -> ``order_number``; a bare number or hash -> ``reference_number``."""
    label = _placeholder_label(placeholder)
    name = snake_case(label)
    if not re.search(r"[a-z]{2}", name) or (" " not in label and len(label) > 20):
        return "reference_number"
    if name[0].isdigit():
        name = "slot_" + name
    if len(name) > 40:
        name = name[:40].rsplit("_", 1)[0]
    return name


def slot_default(placeholder: str) -> str:
    """A phrase that reads naturally where the placeholder stood."""
    label = _placeholder_label(placeholder)
    name = slot_name(placeholder)
    if name in _SPECIAL_DEFAULTS:
        return _SPECIAL_DEFAULTS[name]
    if label[:1].islower():
        return label
    lowered = " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in label.split())
    if _OUR_WORDS.search(label):
        return "our " + lowered
    if _YOUR_WORDS.search(label) or label != re.sub(r"\s+", " ", placeholder).strip():
        return "your " + lowered
    return label  # a button or page name such as "Live Chat" or "Order Details"


class _Slots:
    def __init__(self) -> None:
        self.defaults: dict[str, str] = {}

    def prepare(self, raw: str) -> tuple[str, list[str]]:
        """Mask ``raw`` with its placeholders held aside: (masked text with sentinels, slot names)."""
        names: list[str] = []

        def hold(m: re.Match[str]) -> str:
            name = slot_name(m.group(1))
            self.defaults.setdefault(name, slot_default(m.group(1)))
            names.append(name)
            return f"\ue000{len(names) - 1}\ue001"

        return mask_pii(_PLACEHOLDER.sub(hold, raw)), names

    def render(self, held: str, names: list[str]) -> str:
        return _SENTINEL.sub(lambda m: self.defaults[names[int(m.group(1))]], held)

    @staticmethod
    def template(held: str, names: list[str]) -> str:
        text = held.replace("{", "(").replace("}", ")")  # templates hold no literal braces
        return _SENTINEL.sub(lambda m: "{" + names[int(m.group(1))] + "}", text)


# ------------------------------------------------------------------ rows -> exchanges


def read_exchanges(
    path: str | Path,
    mapping: ColumnMapping,
    *,
    fmt: Format | None = None,
    encoding: str = "auto",
    progress: bool = False,
    report: ImportReport | None = None,
    slots: _Slots | None = None,
) -> list[_Exchange]:
    """Read and mask every valid row of ``path``; bad rows go to ``report.skipped``."""
    path = Path(path)
    report = report or ImportReport(path, path.parent)
    slots = slots or _Slots()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc.strerror or exc}") from exc
    text, report.encoding = _decode(path, data, encoding)
    if not text.strip():
        raise ImportFailed(f"{path}: the file is empty")
    fmt = fmt or _detect_format(path, text)
    records = (
        _csv_records(path, text, mapping, report.skipped)
        if fmt == "csv"
        else json_objects(path, text.split("\n"), report.skipped)
    )

    from tqdm import tqdm

    total_lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    bar = tqdm(
        total=total_lines, unit="line", desc=f"import {path.name}", disable=not progress, mininterval=0.5, leave=False
    )
    out: list[_Exchange] = []
    done = 0
    try:
        for line, record in records:
            bar.update(line - done)
            done = line
            try:
                out.append(_exchange(line, record, mapping, slots))
            except _Bad as exc:
                report.skipped.append(f"{path}:{line}: {exc}")
        bar.update(total_lines - done)
    finally:
        bar.close()
    report.rows_read = len(out) + len(report.skipped)
    if not out:
        raise ImportFailed(
            f"{path}: no valid rows to import ({report.rows_read} read, {len(report.skipped)} skipped)", report.skipped
        )
    report.rows_imported = len(out)
    return out


def _exchange(line: int, record: dict, m: ColumnMapping, slots: _Slots) -> _Exchange:
    user_raw = _text_value(record, m.user, required=True)
    agent_raw = _text_value(record, m.agent, required=True)
    intent = _text_value(record, m.intent, required=False) if m.intent else None
    hint = _id_value(record, m.template_id) if m.template_id else None
    conv = _id_value(record, m.conversation) if m.conversation else None
    if m.conversation and conv is None:
        raise _Bad(f"missing value for column {m.conversation!r}")
    user_id = _id_value(record, m.user_id) if m.user_id else None
    started = _timestamp(record, m.timestamp) if m.timestamp else None
    assert user_raw is not None and agent_raw is not None
    held_user, user_names = slots.prepare(user_raw)
    held_agent, agent_names = slots.prepare(_slot_echoes(user_raw, agent_raw))
    intent = snake_case(intent) if intent else None
    if user_id and mask_pii(user_id) != user_id:
        user_id = _pseudonym(user_id)  # an e-mail or phone number as a user id
    if hint:
        hint = snake_case(hint) or None
    return _Exchange(
        line=line,
        conversation=conv,
        user_id=user_id,
        intent=intent or None,
        template_hint=hint,
        started_at=started,
        user_text=slots.render(held_user, user_names),
        agent_text=slots.render(held_agent, agent_names),
        agent_template=_Slots.template(held_agent, agent_names),
    )


_ID_TOKEN = re.compile(r"(?<![\w-])#?((?=[A-Za-z0-9-]*(?:[0-9][^0-9]*){4})[A-Za-z0-9][A-Za-z0-9-]{4,})(?![\w-])")
_ORDER_WORD = re.compile(r"\b(?:order|purchase)", re.IGNORECASE)


def _slot_echoes(user: str, agent: str) -> str:
    """An order or reference number that the answer repeats from the question becomes a
    placeholder, so no customer's number is frozen into a template."""
    for m in _ID_TOKEN.finditer(user):
        token = m.group(1)
        label = (
            "{{Order ID}}" if _ORDER_WORD.search(user[max(0, m.start() - 40) : m.start()]) else "{{Reference Number}}"
        )
        variants = {token, token.lstrip("0")} - {""}
        for v in sorted(variants, key=len, reverse=True):
            agent = re.sub(r"(?<![\w-])#?" + re.escape(v) + r"(?![\w-])", label, agent)
    return agent


def _pseudonym(value: str) -> str:
    import hashlib

    return "U" + hashlib.sha256(value.encode()).hexdigest()[:12]


# ------------------------------------------------------------------ templates


def _tokens(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def medoid(texts: list[str]) -> str:
    """The text with the highest summed token-set Jaccard similarity to all ``texts``
    (ties: the earliest). Deterministic; at most ``MAX_MEDOID_CANDIDATES`` distinct texts
    (the most frequent, then the earliest) are compared."""
    counts = Counter(texts)
    first: dict[str, Any] = {}
    for i, t in enumerate(texts):
        first.setdefault(t, i)
    distinct = sorted(counts, key=lambda t: (-counts[t], first[t]))[:MAX_MEDOID_CANDIDATES]
    toks = [_tokens(t) for t in distinct]
    weights = [counts[t] for t in distinct]
    score = [0.0] * len(distinct)
    for i in range(len(distinct)):
        for j in range(i + 1, len(distinct)):
            s = jaccard(toks[i], toks[j])
            score[i] += s * weights[j]
            score[j] += s * weights[i]
        score[i] += weights[i] - 1  # its own duplicates
    best = max(range(len(distinct)), key=lambda i: (score[i], -first[distinct[i]]))
    return distinct[best]


def _build_templates(
    exchanges: list[_Exchange], prefix: str, similarity: float, slots: _Slots, link_all: bool = True
) -> tuple[list[dict], dict[int, str]]:
    """Seed templates; return them and ``{exchange index: template id}``."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, ex in enumerate(exchanges):
        if ex.template_hint:
            groups[("hint", ex.template_hint)].append(i)
        elif ex.intent:
            groups[("intent", ex.intent)].append(i)
    templates: list[dict] = []
    linked: dict[int, str] = {}
    used_ids: set[str] = set()
    for (kind, key), members in sorted(groups.items(), key=lambda kv: min(kv[1])):
        texts = [exchanges[i].agent_template for i in members]
        chosen = medoid(texts)
        if kind == "hint":
            tid = key
            intent = Counter(exchanges[i].intent for i in members if exchanges[i].intent).most_common(1)
            intent_name = intent[0][0] if intent else key
        else:
            tid = snake_case(f"{prefix}_{key}")
            intent_name = key
        base, n = tid, 2
        while tid in used_ids:
            tid, n = f"{base}_{n}", n + 1
        used_ids.add(tid)
        slot_names = list(dict.fromkeys(re.findall(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}", chosen)))
        templates.append(
            {"id": tid, "intent": intent_name, "text": chosen, "slots": {s: slots.defaults[s] for s in slot_names}}
        )
        chosen_tokens = _tokens(chosen)
        for i in members:
            text = exchanges[i].agent_template
            if link_all or kind == "hint" or text == chosen or jaccard(_tokens(text), chosen_tokens) >= similarity:
                linked[i] = tid
    return templates, linked


# ------------------------------------------------------------------ writing


def _conversations(exchanges: list[_Exchange], linked: dict[int, str], prefix: str) -> list[dict]:
    convs: dict[str, list[int]] = {}
    for i, ex in enumerate(exchanges):
        key = ex.conversation if ex.conversation is not None else f"{snake_case(prefix) or 'import'}-{i + 1:06d}"
        convs.setdefault(key, []).append(i)
    out = []
    for cid, members in convs.items():
        turns: list[dict[str, Any]] = []
        for i in members:
            ex = exchanges[i]
            turns.append({"role": "user", "text": ex.user_text})
            agent: dict[str, Any] = {"role": "agent", "text": ex.agent_text}
            if ex.intent:
                agent["intent"] = ex.intent
            if i in linked:
                agent["template_id"] = linked[i]
            turns.append(agent)
        row: dict[str, Any] = {"conversation_id": cid}
        user_id = next((exchanges[i].user_id for i in members if exchanges[i].user_id), None)
        if user_id:
            row["user_id"] = user_id
        stamps = [s for i in members if (s := exchanges[i].started_at) is not None]
        if stamps:
            row["started_at"] = min(stamps).strftime("%Y-%m-%dT%H:%M:00Z")
        row["turns"] = turns
        Conversation.model_validate(row)  # fails loudly here rather than at load time
        out.append(row)
    return out


def jsonl_text(rows: Iterable[dict]) -> str:
    def line(r: dict) -> str:
        s = json.dumps(r, ensure_ascii=False)
        return s.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")

    return "".join(line(r) + "\n" for r in rows)


def _merge(existing: Path, new_rows: list[dict], key: str) -> str:
    """Existing lines (verbatim) whose ``key`` is not re-imported, then the new rows."""
    new_ids = {r[key] for r in new_rows}
    kept = []
    for raw in existing.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        try:
            if json.loads(raw).get(key) in new_ids:
                continue
        except (json.JSONDecodeError, AttributeError):
            pass  # kept as is: load_kb reports it, and nothing is replaced
        kept.append(raw + "\n")
    return "".join(kept) + jsonl_text(new_rows)


def write_kb(
    out_dir: str | Path,
    conversations: list[dict],
    templates: list[dict],
    on_existing: OnExisting = "error",
    shop_name: str = "Imported shop",
) -> list[str]:
    """Stage, validate with ``load_kb`` and atomically move the files into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    present = [n for n in ("transcripts.jsonl", "templates.jsonl") if (out / n).exists()]
    if present and on_existing == "error":
        raise ImportFailed(f"{out}: already holds {', '.join(present)}; choose to overwrite or merge")
    contents: dict[str, str] = {}
    for name, rows, key in (
        ("transcripts.jsonl", conversations, "conversation_id"),
        ("templates.jsonl", templates, "id"),
    ):
        if on_existing == "merge" and (out / name).exists():
            contents[name] = _merge(out / name, rows, key)
        else:
            contents[name] = jsonl_text(rows)
    if not (out / "shop.json").exists():
        contents["shop.json"] = json.dumps({"name": shop_name, "currency": "USD"}, indent=2) + "\n"
    if not (out / "catalogue.jsonl").exists():
        contents["catalogue.jsonl"] = ""
    return write_validated(out, contents)


# ------------------------------------------------------------------ the whole import


def import_file(
    path: str | Path,
    out_dir: str | Path,
    *,
    preset: str = "generic",
    mapping: ColumnMapping | None = None,
    fmt: Format | None = None,
    encoding: str = "auto",
    template_prefix: str | None = None,
    similarity: float = 0.8,
    link_all: bool = True,
    on_existing: OnExisting = "error",
    progress: bool = False,
) -> ImportReport:
    """Import ``path`` into the KB folder ``out_dir``; see the module docstring.

    ``mapping`` overrides the preset's columns. Raises :class:`ImportFailed` when
    nothing valid could be read or the result would not load.
    """
    t0 = time.perf_counter()
    if preset not in PRESETS:
        raise ImportFailed(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    if not 0.0 < similarity <= 1.0:
        raise ImportFailed(f"similarity must be in (0, 1], got {similarity}")
    mapping = mapping or PRESETS[preset]
    prefix = snake_case(template_prefix or preset) or "imported"
    path = Path(path)
    report = ImportReport(source=path, out_dir=Path(out_dir))
    slots = _Slots()
    exchanges = read_exchanges(path, mapping, fmt=fmt, encoding=encoding, progress=progress, report=report, slots=slots)
    templates, linked = _build_templates(exchanges, prefix, similarity, slots, link_all)
    for t in templates:
        Template.model_validate(t)
    conversations = _conversations(exchanges, linked, prefix)
    report.files_written = write_kb(out_dir, conversations, templates, on_existing)
    report.conversations = len(conversations)
    report.turns = sum(len(c["turns"]) for c in conversations)
    report.templates = len(templates)
    report.turns_with_template = len(linked)
    report.slots = dict(sorted(slots.defaults.items()))
    long = sum(1 for c in conversations if len(c["turns"]) > 8)
    if long:
        report.warnings.append(f"{long} conversation(s) have more than 8 turns (docs/formats.md suggests 2 to 8)")
    report.seconds = time.perf_counter() - t0
    return report


def mapping_with(base: ColumnMapping, **overrides: str | None) -> ColumnMapping:
    """``base`` with the non-empty ``overrides`` applied (command-line flags)."""
    return replace(base, **{k: v for k, v in overrides.items() if v})
