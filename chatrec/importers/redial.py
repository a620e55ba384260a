"""Import the ReDial movie-recommendation dialogues (and the KGSF DBpedia graph) as a chatrec KB.

Inputs, in the ReDial / KGSF layout (see ``docs/formats.md``, section "ReDial"):

- ``DIALOGUES.jsonl``: one ReDial dialogue per line (``conversationId``,
  ``initiatorWorkerId`` = the seeker, ``respondentWorkerId`` = the recommender,
  ``messages[]`` whose texts mention movies as ``@<movieId>``, and the
  ``initiatorQuestions`` / ``respondentQuestions`` forms with ``liked`` 0/1/2).
- ``movies_with_mentions.csv``: the catalogue (``movieId,movieName,nbMentions``).
- optionally ``subkg_triples.tsv`` (``head_uri  relation_id  tail_uri``) with
  ``redial_movie_to_dbpedia.tsv`` (``redial_movieId  dbpedia_uri``).

Output, a whole KB folder: ``catalogue.jsonl`` (one ``movie`` item ``M<movieId>`` per
movie, no price), ``kg.tsv`` (the DBpedia triples that touch a catalogue movie, movie
URIs replaced by item ids, other URIs by ``dbr:<Name>``), ``transcripts.jsonl``
(``R<conversationId>``: consecutive messages of one sender merged into one turn,
``@<movieId>`` replaced by the title, ``mentions`` on every turn, ``recommended`` /
``accepted`` on recommender turns that mention movies, ``liked`` / ``disliked`` on
seeker turns), ``users.jsonl`` (``W<seeker worker id>``), a minimal ``shop.json`` and
an empty ``templates.jsonl``.

What is read, and why none of it leaks evaluation information: the catalogue's
``movieId`` and ``movieName`` (the year in the name becomes ``attributes.year``);
``nbMentions`` is validated but dropped, because it counts mentions over all of ReDial,
the validation and test splits included (popularity is recomputed by the ranker from
the training conversations only). From each dialogue: ``conversationId``, the two
worker ids, the messages' ``text`` and ``senderWorkerId``, ``movieMentions`` (names of
movies missing from the catalogue) and the questionnaires' ``liked`` answers, all of
which belong to that one dialogue; ``suggested`` / ``seen`` are not read. The graph
files are a fixed DBpedia extract with no dialogue counts. Nothing is aggregated across
dialogues at import time, so importing the training and the evaluated split into two
folders with the same catalogue (``M<movieId>`` ids) keeps them apart.

Texts are masked with :func:`chatrec.turn.pii.mask_pii` like every other import; the
``@<movieId>`` mentions are held aside while masking, so titles are never altered.

Bad input rows (a malformed dialogue, an unparsable catalogue or graph row) are
reported as ``file:line: reason`` and skipped. The files are staged in a temporary
folder next to the output folder, loaded there with :func:`chatrec.kb.load_kb`, and
only then moved into place with ``os.replace``: a failed import leaves the output
folder as it was.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Iterable, TextIO
from urllib.parse import unquote

from chatrec.importers.qa_logs import jsonl_text
from chatrec.importers.staging import FILM_SITE, ImportFailed, csv_rows, write_validated
from chatrec.turn.pii import mask_pii

__all__ = ["RedialReport", "import_redial"]

SHOP = {"name": "ReDial movies", "currency": "USD", **FILM_SITE}
CATEGORY = "movie"
RECOMMEND_INTENT = "recommend_product"
# DBpedia relation ids of the KGSF graph, named by inspecting their triples; any other id stays
# ``rel_<id>`` in kg.tsv (still walked by the ranker) and is never shown as a reason
PREDICATES = {
    "68": "starring",
    "121": "director",
    "113": "producer",
    "124": "writer",
    "70": "music",
    "18": "cinematography",
    "30": "editing",
    "182": "distributor",
    "55": "based_on",
    "211": "narrator",
    "149": "language",
    "24": "country",
    "104": "country",
    "137": "occupation",
}
# reasons.json: a film site's words for its reasons (chatrec.turn.explain.ReasonWording); only these
# relations are said, and co-occurrence is counted from conversations, so it is "mentioned", not "bought"
# (each reads on its own and after "The <title> is", as grounding's sentences put it)
_ALSO = {
    "starring": "another film starring {entity}",
    "director": "another film directed by {entity}",
    "producer": "another film produced by {entity}",
    "writer": "another film written by {entity}",
    "music": "another film with music by {entity}",
    "cinematography": "another film shot by {entity}",
    "editing": "another film edited by {entity}",
    "distributor": "another film distributed by {entity}",
    "based_on": "another film based on {entity}",
    "narrator": "another film narrated by {entity}",
    "language": "another film in {entity}",
    "country": "another film from {entity}",
}
REASONS = {
    "relations": {p: {"label": p.replace("_", " "), "shared": f"{also}, like {{start}}"} for p, also in _ALSO.items()},
    "only_listed_relations": True,
    "co_anchor": "often mentioned together with {anchor}",
    "popular": "popular with other movie fans",
    "linked": "connected to {start} through {entity}",
}
SELF_LOOP_RELATION = "86"
DESCRIPTION_ACTORS = 3
DESCRIPTION_DIRECTORS = 2
WRITTEN = (
    "shop.json",
    "catalogue.jsonl",
    "templates.jsonl",
    "kg.tsv",
    "users.jsonl",
    "transcripts.jsonl",
    "reasons.json",
)

_MENTION = re.compile(r"@(\d+)")
_YEAR = re.compile(r"\((\d{4})\)$")
_QUALIFIER = re.compile(r"\s*\([^()]*\)$")  # "Ben Johnson (actor)" -> "Ben Johnson"
_IDENTIFIER = re.compile(r"^\S+$")


@dataclass
class RedialReport:
    dialogues: Path
    out_dir: Path
    dialogues_read: int = 0
    conversations: int = 0
    turns: int = 0
    recommendation_turns: int = 0
    accepted: int = 0
    users: int = 0
    items: int = 0
    triples: int = 0
    kg_rows_read: int = 0
    leading_agent_turns_dropped: int = 0
    unknown_mentions: Counter[str] = field(default_factory=Counter)  # movie id -> @-mentions dropped
    skipped: list[str] = field(default_factory=list)
    files_written: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _Bad(Exception):
    """One input row is unusable; the message is its reason."""


# ------------------------------------------------------------------ catalogue


def _open_text(path: Path) -> TextIO:
    try:
        return path.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc.strerror or exc}") from exc


def read_movies(path: Path, skipped: list[str]) -> dict[str, dict[str, Any]]:
    """``{movieId: catalogue row}`` for every valid row of ``movies_with_mentions.csv``."""
    movies: dict[str, dict[str, Any]] = {}
    with _open_text(path) as fh:
        rows = csv_rows(path, csv.reader(fh), skipped)
        _, header = next(rows, (0, []))
        columns = [c.strip() for c in header]
        missing = [c for c in ("movieId", "movieName", "nbMentions") if c not in columns]
        if missing:
            raise ImportFailed(f"{path}:1: column(s) {missing} not in the header (found: {', '.join(columns)})")
        at = {c: columns.index(c) for c in ("movieId", "movieName", "nbMentions")}
        for line, row in rows:
            try:
                if len(row) != len(columns):
                    raise _Bad(f"expected {len(columns)} fields, got {len(row)}")
                movie_id, name, mentions = (row[at[c]].strip() for c in ("movieId", "movieName", "nbMentions"))
                if not movie_id.isdigit():
                    raise _Bad(f"movieId must be a whole number, got {movie_id!r}")
                if movie_id in movies:
                    raise _Bad(f"duplicate movieId {movie_id}")
                title = " ".join(name.split())
                if not title:
                    raise _Bad("empty movieName")
                if not mentions.isdigit():
                    raise _Bad(f"nbMentions must be a whole number, got {mentions!r}")
            except _Bad as exc:
                skipped.append(f"{path}:{line}: {exc}")
                continue
            attributes: dict[str, int] = {}
            if year := _YEAR.search(title):
                attributes["year"] = int(year.group(1))
            # nbMentions is checked but never kept: it counts mentions in every ReDial split, the
            # evaluated ones included, so as a prior it would teach the ranker the test data
            movies[movie_id] = {
                "id": f"M{movie_id}",
                "title": title,
                "description": "",
                "category": CATEGORY,
                "brand": "",
                "price": None,
                "stock": 1,
                "attributes": attributes,
            }
    return movies


# ------------------------------------------------------------------ knowledge graph


def entity_name(uri: str) -> str:
    """``<http://dbpedia.org/resource/Tom_Hanks>`` -> ``Tom Hanks`` (last path segment, URL-decoded)."""
    segment = uri.strip().strip("<>").rstrip("/").rsplit("/", 1)[-1]
    return " ".join(unquote(segment).replace("_", " ").split())


def display_name(name: str) -> str:
    """A name as a description quotes it: a trailing ``(film)``-style qualifier dropped."""
    return _QUALIFIER.sub("", name) or name


def read_movie_uris(path: Path, movies: dict[str, dict[str, Any]], skipped: list[str]) -> dict[str, str]:
    """``{DBpedia URI: item id}`` for catalogue movies (``None`` URIs are movies without one)."""
    uri_to_item: dict[str, str] = {}
    with _open_text(path) as fh:
        rows = csv_rows(path, csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), skipped)
        for line, row in rows:
            if line == 1 and not row[0].strip().isdigit():
                continue  # the header
            if len(row) != 2 or not row[0].strip().isdigit():
                skipped.append(f"{path}:{line}: expected 'movieId<TAB>uri', got {len(row)} field(s)")
                continue
            movie_id, uri = row[0].strip(), row[1].strip()
            if uri in ("", "None") or movie_id not in movies:
                continue
            if uri in uri_to_item:
                skipped.append(f"{path}:{line}: {uri} is already the URI of {uri_to_item[uri]}")
                continue
            uri_to_item[uri] = movies[movie_id]["id"]
    return uri_to_item


def read_triples(
    path: Path, uri_to_item: dict[str, str], report: RedialReport, progress: bool
) -> tuple[list[tuple[str, str, str]], dict[str, dict[str, list[str]]]]:
    """The KG rows that touch a catalogue movie, translated and deduplicated, and the raw
    ``{item id: {"starring": [...], "director": [...]}}`` entity names for descriptions."""
    from tqdm import tqdm

    kept: dict[tuple[str, str, str], None] = {}
    movie_items = set(uri_to_item.values())
    people: dict[str, dict[str, list[str]]] = {}

    @cache  # most URIs recur many times
    def node(uri: str) -> str:
        return uri_to_item.get(uri) or f"dbr:{entity_name(uri)}"

    with _open_text(path) as fh:
        lines = tqdm(fh, desc=f"read {path.name}", unit="line", disable=not progress, mininterval=0.5, leave=False)
        for line, row in csv_rows(path, csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), report.skipped):
            if line == 1 and len(row) == 3 and not row[1].strip().isdigit():
                continue  # the header
            report.kg_rows_read += 1
            if len(row) != 3 or not row[1].strip().isdigit():
                report.skipped.append(f"{path}:{line}: expected 'head_uri<TAB>relation_id<TAB>tail_uri'")
                continue
            head, relation, tail = (c.strip() for c in row)
            if relation == SELF_LOOP_RELATION:
                continue
            subject, obj = node(head), node(tail)
            if subject == obj or subject == "dbr:" or obj == "dbr:":
                continue
            if subject not in movie_items and obj not in movie_items:
                continue
            predicate = PREDICATES.get(relation, f"rel_{relation}")
            kept[(subject, predicate, obj)] = None
            if predicate in ("starring", "director") and subject in movie_items and obj.startswith("dbr:"):
                people.setdefault(subject, {}).setdefault(predicate, []).append(obj[len("dbr:") :])
    return list(kept), people


def describe(people: dict[str, list[str]]) -> str:
    """``Starring A, B, C. Directed by D.`` from a movie's starring / director entity names."""
    parts = []
    for predicate, lead, limit in (
        ("starring", "Starring", DESCRIPTION_ACTORS),
        ("director", "Directed by", DESCRIPTION_DIRECTORS),
    ):
        names = list(dict.fromkeys(display_name(n) for n in people.get(predicate, [])))[:limit]
        if names:
            parts.append(f"{lead} {', '.join(names)}.")
    return " ".join(parts)


# ------------------------------------------------------------------ dialogues


@dataclass
class _Turn:
    role: str
    texts: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)


@dataclass
class _Dialogue:
    row: dict[str, Any]
    leading_agent_turns: int
    unknown_mentions: Counter[str]


def _identifier(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not _IDENTIFIER.match(str(value)):
        raise _Bad(f"{key} must be a whole number or a word, got {value!r}")
    return str(value)


def _liked_labels(record: dict[str, Any], key: str) -> dict[str, int]:
    """``{item id: liked}`` from one questionnaire (0 disliked, 1 liked, 2 did not say)."""
    questions = record.get(key) or {}
    if isinstance(questions, list) and not questions:
        return {}
    if not isinstance(questions, dict):
        raise _Bad(f"{key} must be an object, got {type(questions).__name__}")
    labels = {}
    for movie_id, answers in questions.items():
        liked = answers.get("liked") if isinstance(answers, dict) else None
        if isinstance(liked, bool) or liked not in (0, 1, 2):
            raise _Bad(f"{key}[{movie_id!r}].liked must be 0, 1 or 2, got {liked!r}")
        labels[f"M{movie_id}"] = liked
    return labels


def _render(
    text: str, movies: dict[str, dict[str, Any]], names: dict[str, Any], unknown: Counter[str]
) -> tuple[str, list[str]]:
    """A message with ``@<id>`` replaced by titles (the rest PII-masked), and the item ids it mentions.

    An id missing from the catalogue is counted in ``unknown`` and written as the dialogue's
    ``movieMentions`` name (or left as ``@<id>``)."""
    pieces = _MENTION.split(text)  # text, id, text, id, ..., text
    out, mentioned = [mask_pii(pieces[0])], []
    for movie_id, rest in zip(pieces[1::2], pieces[2::2]):
        if movie_id in movies:
            out.append(movies[movie_id]["title"])
            mentioned.append(movies[movie_id]["id"])
        else:
            unknown[movie_id] += 1
            out.append(" ".join(str(names.get(movie_id) or "").split()) or f"@{movie_id}")
        out.append(mask_pii(rest))
    return "".join(out), mentioned


def _dialogue(record: dict[str, Any], movies: dict[str, dict[str, Any]]) -> _Dialogue:
    """One ReDial dialogue as a KB conversation; raises :class:`_Bad` when it is malformed."""
    conversation_id = _identifier(record, "conversationId")
    seeker = _identifier(record, "initiatorWorkerId")
    recommender = _identifier(record, "respondentWorkerId")
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Bad("no messages")
    names = record.get("movieMentions")
    names = names if isinstance(names, dict) else {}
    # the seeker's own answers win over the recommender's where both answered
    labels = {**_liked_labels(record, "respondentQuestions"), **_liked_labels(record, "initiatorQuestions")}

    turns: list[_Turn] = []
    unknown: Counter[str] = Counter()
    for n, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("text"), str):
            raise _Bad(f"message {n} has no text")
        sender = str(msg.get("senderWorkerId"))
        if sender not in (seeker, recommender):
            raise _Bad(f"message {n} is from worker {sender}, neither the initiator nor the respondent")
        role = "user" if sender == seeker else "agent"
        if not turns or turns[-1].role != role:
            turns.append(_Turn(role))
        text, mentioned = _render(msg["text"].strip(), movies, names, unknown)
        if text:
            turns[-1].texts.append(text)
        turns[-1].mentions.extend(mentioned)
    first_user = next((i for i, t in enumerate(turns) if t.role == "user"), None)
    if first_user is None:
        raise _Bad("no message from the seeker (initiator)")
    row = {
        "conversation_id": f"R{conversation_id}",
        "user_id": f"W{seeker}",
        "turns": _annotate(turns[first_user:], labels),
    }
    return _Dialogue(row, first_user, unknown)


def _annotate(turns: list[_Turn], labels: dict[str, int]) -> list[dict[str, Any]]:
    """Each turn as a KB row. A recommender turn that mentions movies recommends them and
    ``accepted`` holds those the seeker liked; a movie's like / dislike goes on the first
    seeker turn that mentions it or answers the recommender turn that mentioned it."""
    rows: list[dict[str, Any]] = []
    labelled: set[str] = set()
    previous_agent: list[str] = []
    for turn in turns:
        mentions = list(dict.fromkeys(turn.mentions))
        row: dict[str, Any] = {"role": turn.role, "text": " ".join(turn.texts)}
        if mentions:
            row["mentions"] = mentions
        if turn.role == "agent":
            if mentions:
                row.update(
                    intent=RECOMMEND_INTENT, recommended=mentions, accepted=[m for m in mentions if labels.get(m) == 1]
                )
            previous_agent = mentions
        else:
            fresh = [m for m in dict.fromkeys(previous_agent + mentions) if m not in labelled]
            labelled.update(fresh)
            for key, value in (("liked", 1), ("disliked", 0)):
                if chosen := [m for m in fresh if labels.get(m) == value]:
                    row[key] = chosen
            previous_agent = []
        rows.append(row)
    return rows


def read_dialogues(
    path: Path,
    movies: dict[str, dict[str, Any]],
    report: RedialReport,
    limit: int | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """The KB conversations of the first ``limit`` lines of ``path``; bad lines go to ``report.skipped``."""
    from tqdm import tqdm

    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    lines = text.split("\n")[:limit]  # not splitlines(): JSON strings may hold U+2028
    conversations: dict[str, dict[str, Any]] = {}
    for line_no, raw in enumerate(
        tqdm(lines, desc=f"import {path.name}", unit="dialogue", disable=not progress, mininterval=0.5, leave=False),
        start=1,
    ):
        if not raw.strip():
            continue
        report.dialogues_read += 1
        try:
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise _Bad(f"invalid JSON: {exc.msg} (column {exc.colno})") from exc
            if not isinstance(record, dict):
                raise _Bad(f"expected a JSON object, got {type(record).__name__}")
            dialogue = _dialogue(record, movies)
            if dialogue.row["conversation_id"] in conversations:
                raise _Bad(f"duplicate conversationId {record['conversationId']}")
        except _Bad as exc:
            report.skipped.append(f"{path}:{line_no}: {exc}")
            continue
        conversations[dialogue.row["conversation_id"]] = dialogue.row
        report.leading_agent_turns_dropped += dialogue.leading_agent_turns
        report.unknown_mentions.update(dialogue.unknown_mentions)
    return list(conversations.values())


# ------------------------------------------------------------------ writing


def _tsv(triples: Iterable[tuple[str, str, str]]) -> str:
    return "subject\tpredicate\tobject\n" + "".join(f"{s}\t{p}\t{o}\n" for s, p, o in triples)


# ------------------------------------------------------------------ the whole import


def import_redial(
    dialogues: Path,
    movies: Path,
    out_dir: Path,
    *,
    triples: Path | None = None,
    movie_uris: Path | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> RedialReport:
    """Import ReDial ``dialogues`` with the ``movies`` catalogue (and, optionally, the KGSF
    DBpedia ``triples`` with their ``movie_uris`` map) as the KB folder ``out_dir``.

    ``limit`` reads only the first ``limit`` lines of ``dialogues``. An ``out_dir`` that
    already holds KB files is refused unless ``overwrite``. Raises :class:`ImportFailed`
    when a file cannot be read, nothing valid is left, or the result would not load.
    """
    t0 = time.perf_counter()
    dialogues, movies, out = Path(dialogues), Path(movies), Path(out_dir)
    if (triples is None) != (movie_uris is None):
        raise ImportFailed("the DBpedia triples and the movie-to-URI map go together: give both or neither")
    if limit is not None and limit < 1:
        raise ImportFailed(f"limit must be 1 or more, got {limit}")
    present = [name for name in WRITTEN if (out / name).exists()]
    if present and not overwrite:
        raise ImportFailed(f"{out}: already holds {', '.join(present)}; choose to overwrite")
    report = RedialReport(dialogues=dialogues, out_dir=out)

    catalogue = read_movies(movies, report.skipped)
    if not catalogue:
        raise ImportFailed(f"{movies}: no valid movie rows", report.skipped)
    kg: list[tuple[str, str, str]] = []
    if triples is not None and movie_uris is not None:
        uri_to_item = read_movie_uris(Path(movie_uris), catalogue, report.skipped)
        kg, people = read_triples(Path(triples), uri_to_item, report, progress)
        for row in catalogue.values():
            row["description"] = describe(people.get(row["id"], {}))

    conversations = read_dialogues(dialogues, catalogue, report, limit, progress)
    if not conversations:
        raise ImportFailed(f"{dialogues}: no valid dialogues to import", report.skipped)
    users = [{"id": uid} for uid in dict.fromkeys(c["user_id"] for c in conversations)]

    report.files_written = write_validated(
        out,
        {
            "shop.json": json.dumps(SHOP, indent=2) + "\n",
            "catalogue.jsonl": jsonl_text(catalogue.values()),
            "templates.jsonl": "",
            "kg.tsv": _tsv(kg),
            "users.jsonl": jsonl_text(users),
            "transcripts.jsonl": jsonl_text(conversations),
            "reasons.json": json.dumps(REASONS, indent=2) + "\n",
        },
    )
    report.items = len(catalogue)
    report.triples = len(kg)
    report.conversations = len(conversations)
    turns = [t for c in conversations for t in c["turns"]]
    report.turns = len(turns)
    report.recommendation_turns = sum(1 for t in turns if t.get("recommended"))
    report.accepted = sum(len(t.get("accepted", [])) for t in turns)
    report.users = len(users)
    report.seconds = time.perf_counter() - t0
    return report
