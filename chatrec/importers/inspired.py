"""Import the INSPIRED movie-recommendation dialogues (Hayati et al., EMNLP 2020) as a chatrec KB.

Inputs, in the layout of the public release (github.com/sweetpeach/Inspired, ``data/``; see
``docs/formats.md``, section "INSPIRED"):

- one or more dialogue files ``dialog_data/{train,dev,test}.tsv``: one utterance per row,
  columns (by name) ``dialog_id``, ``utt_id``, ``speaker`` (``RECOMMENDER`` / ``SEEKER``),
  ``text``, ``movies`` (the titles the utterance mentions, ``;``-separated, as
  ``Title (YYYY)``), and per dialogue the recommendation's outcome ``fine_label`` /
  ``coarse_label`` and the recommended movie's trailer id ``movie_id``.
- ``movie_database.tsv``: the catalogue, columns (by name) ``video_id`` and ``title``,
  optionally ``year``, ``genre`` and ``actors`` (comma-separated), ``director``,
  ``short_plot`` / ``long_plot``.

Output, a whole KB folder in the ReDial importer's format: ``catalogue.jsonl`` (one ``movie``
item ``I<video_id>`` per database row, title ``Title (YYYY)``, ``attributes`` ``year`` and
``genre``, the plot and cast as description), ``kg.tsv`` (``starring`` / ``director`` ->
``person:<Name>``, ``genre`` -> ``genre:<slug>``), ``transcripts.jsonl`` (``N<dialog_id>``, in file
order: consecutive utterances of one speaker merged into one turn, ``mentions`` on every
turn, ``recommended`` / ``accepted`` on recommender turns that mention movies, ``liked`` /
``disliked`` for the recommended movie on the seeker's next turn), a minimal ``shop.json``,
the film wording of reasons (``reasons.json``) and an empty ``templates.jsonl``.

What is read, and why none of it leaks evaluation information: from the database only a
movie's own facts (id, title, year, genre, cast, director, plot); its ``rating`` and any
view or vote counts are not read. From each dialogue: its rows' ``text``, ``speaker``,
``utt_id`` and ``movies`` (each the utterance's own), and the dialogue's own outcome, which
becomes ``accepted`` / ``liked`` / ``disliked`` in that dialogue only, exactly like ReDial's
forms. The per-dialogue dictionaries ``movie_dict`` / ``genre_dict`` / ``actor_dict`` /
``director_dict`` / ``others_dict`` are NOT read: they are repeated on every row and list
every title of the whole dialogue, the later recommendation included, so an earlier turn
would see the answer. ``text_with_placeholder``, ``genres``, ``people_names`` and the
strategy labels are not read either. Nothing is aggregated across dialogues at import
time, and the catalogue is the database alone, so importing the training and the
evaluated file into two folders gives the same items (``I<video_id>``) and keeps them apart.

Texts are masked with :func:`chatrec.turn.pii.mask_pii`; the dataset's ``QUOTATION_MARK``
stands for ``"``. Bad rows are reported as ``file:line: reason`` and skipped, and the files
are written all or nothing (:func:`chatrec.importers.staging.write_validated`).
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from chatrec.importers.qa_logs import jsonl_text
from chatrec.importers.redial import REASONS, RECOMMEND_INTENT
from chatrec.importers.staging import FILM_SITE, ImportFailed, csv_rows, write_validated
from chatrec.turn.pii import mask_pii

__all__ = ["InspiredReport", "import_inspired", "outcome"]

SHOP = {"name": "INSPIRED movies", "currency": "USD", **FILM_SITE}
CATEGORY = "movie"
WRITTEN = (
    "shop.json",
    "catalogue.jsonl",
    "templates.jsonl",
    "kg.tsv",
    "users.jsonl",
    "transcripts.jsonl",
    "reasons.json",
)
DIALOGUE_COLUMNS = ("dialog_id", "utt_id", "speaker", "text", "movies", "fine_label", "coarse_label", "movie_id")
MOVIE_COLUMNS = ("video_id", "title")
ROLES = {"SEEKER": "user", "RECOMMENDER": "agent"}
QUOTE = "QUOTATION_MARK"
DESCRIPTION_ACTORS = 3
# the KG relations written here and their film wording (the ReDial importer's, plus genre)
_FILM_RELATIONS: dict[str, dict[str, str]] = REASONS["relations"]  # type: ignore[assignment]
_REASONS = {
    **REASONS,
    "relations": {
        **{p: w for p, w in _FILM_RELATIONS.items() if p in ("starring", "director")},
        "genre": {"label": "genre", "shared": "another {entity} film, like {start}"},
    },
}

_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
_SPLIT = re.compile(r"SPLIT\d+$")  # the survey files write trailer ids as <id>SPLIT<n>


@dataclass
class InspiredReport:
    dialogues: list[Path]
    out_dir: Path
    rows_read: int = 0
    dialogues_read: int = 0
    conversations: int = 0
    turns: int = 0
    recommendation_turns: int = 0
    accepted: int = 0  # items in ``accepted`` lists
    rejected: int = 0  # dialogues whose recommended movie was turned down
    items: int = 0
    triples: int = 0
    leading_agent_turns_dropped: int = 0
    targets_unknown: int = 0  # the recommended trailer id is not in the database
    targets_not_recommended: int = 0  # no recommender turn names the recommended movie
    unknown_mentions: Counter[str] = field(default_factory=Counter)  # title -> mentions dropped
    skipped: list[str] = field(default_factory=list)
    files_written: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _Bad(Exception):
    """One input row is unusable; the message is its reason."""


def title_key(title: str) -> tuple[str, int | None]:
    """``("iron harbour jacket", 1987)`` for ``Iron Harbour Jacket (1987)``: case, punctuation and
    spacing dropped, the year apart."""
    year = _YEAR.search(title)
    bare = _YEAR.sub("", title) if year else title
    words = re.sub(r"[^0-9a-z]+", " ", bare.lower().replace("&", " and ")).split()
    return " ".join(words), int(year.group(1)) if year else None


def outcome(fine: str, coarse: str) -> bool | None:
    """Whether the seeker took the recommendation: ``coarse_label`` (``accept_*`` / ``reject_*``)
    decides, else ``fine_label`` (``reject`` and ``accept_uninterested`` count as rejected, as
    INSPIRED's coarse labels count them); ``None`` when neither says."""
    coarse, fine = coarse.strip().lower(), fine.strip().lower()
    if coarse.startswith(("accept", "reject")):
        return coarse.startswith("accept")
    if fine in ("reject", "accept_uninterested"):
        return False
    if fine.startswith("accept"):
        return True
    return None


def _slug(text: str) -> str:
    return "-".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def _open_rows(path: Path, skipped: list[str]) -> tuple[list[str], Iterable[tuple[int, list[str]]], Any]:
    """The header and the ``(line, fields)`` rows of a tab-separated file (no quoting, as released)."""
    try:
        fh = path.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc.strerror or exc}") from exc
    rows = csv_rows(path, csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), skipped)
    _, header = next(rows, (0, []))
    return [c.strip() for c in header], rows, fh


def _columns(path: Path, header: list[str], required: Sequence[str]) -> dict[str, int]:
    missing = [c for c in required if c not in header]
    if missing:
        raise ImportFailed(f"{path}:1: column(s) {missing} not in the header (found: {', '.join(header)})")
    return {c: i for i, c in enumerate(header)}


# ------------------------------------------------------------------ catalogue


@dataclass
class Catalogue:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # item id -> catalogue row
    by_video: dict[str, str] = field(default_factory=dict)  # trailer id -> item id
    by_title: dict[tuple[str, int | None], str] = field(default_factory=dict)  # title_key -> item id
    by_bare: dict[str, list[str]] = field(default_factory=dict)  # bare title -> item ids
    triples: dict[tuple[str, str, str], None] = field(default_factory=dict)

    def find(self, title: str) -> str | None:
        """The item a dialogue's ``Title (YYYY)`` names: title and year, else the title alone
        when exactly one movie has it."""
        key = title_key(title)
        if key in self.by_title:
            return self.by_title[key]
        same = self.by_bare.get(key[0], [])
        return (
            same[0]
            if len(same) == 1 and (key[1] is None or self.items[same[0]]["attributes"].get("year") is None)
            else None
        )


def _names(cell: str) -> list[str]:
    return list(dict.fromkeys(n for n in (" ".join(x.split()) for x in cell.split(",")) if n and n != "N/A"))


def read_movies(path: Path, skipped: list[str]) -> Catalogue:
    """The database rows as catalogue items, with their cast, director and genre triples."""
    cat = Catalogue()
    header, rows, fh = _open_rows(path, skipped)
    with fh:
        at = _columns(path, header, MOVIE_COLUMNS)

        def cell(row: list[str], name: str) -> str:
            return " ".join(row[at[name]].split()) if name in at else ""

        for line, row in rows:
            try:
                if len(row) != len(header):
                    raise _Bad(f"expected {len(header)} fields, got {len(row)}")
                video, title = cell(row, "video_id"), cell(row, "title")
                if not video or " " in video:
                    raise _Bad(f"video_id must be one word, got {video!r}")
                if not title:
                    raise _Bad("empty title")
                item_id = f"I{video}"
                if item_id in cat.items:
                    raise _Bad(f"duplicate video_id {video}")
                year_cell = cell(row, "year")
                if year_cell and not (year_cell[:4].isdigit() and len(year_cell) in (4, 9)):  # 1994 or 1994–1998
                    raise _Bad(f"year must be a year, got {year_cell!r}")
            except _Bad as exc:
                skipped.append(f"{path}:{line}: {exc}")
                continue
            bare, year = title_key(title)
            year = year or (int(year_cell[:4]) if year_cell else None)
            shown = title if _YEAR.search(title) or year is None else f"{title} ({year})"
            genres = [g.lower() for g in _names(cell(row, "genre"))]
            actors, directors = _names(cell(row, "actors")), _names(cell(row, "director"))
            plot = cell(row, "short_plot") or cell(row, "long_plot")
            plot = "" if plot == "N/A" else plot
            cast = [f"Starring {', '.join(actors[:DESCRIPTION_ACTORS])}."] if actors else []
            cast += [f"Directed by {', '.join(directors)}."] if directors else []
            attributes: dict[str, Any] = {}
            if year is not None:
                attributes["year"] = year
            if genres:
                attributes["genre"] = genres
            cat.items[item_id] = {
                "id": item_id,
                "title": shown,
                "description": " ".join([plot, *cast]).strip(),
                "category": CATEGORY,
                "brand": "",
                "price": None,
                "stock": 1,
                "attributes": attributes,
            }
            cat.by_video[video] = item_id
            cat.by_title.setdefault((bare, year), item_id)
            cat.by_bare.setdefault(bare, []).append(item_id)
            for predicate, objects in (
                ("starring", [f"person:{a}" for a in actors]),
                ("director", [f"person:{d}" for d in directors]),
                ("genre", [f"genre:{_slug(g)}" for g in genres if _slug(g)]),
            ):
                for obj in objects:
                    cat.triples[(item_id, predicate, obj)] = None
    return cat


# ------------------------------------------------------------------ dialogues


@dataclass
class _Turn:
    role: str
    texts: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)


@dataclass
class _Dialogue:
    dialog_id: str
    source: str  # file:line of its first row
    rows: list[tuple[int, str, str, list[str]]] = field(default_factory=list)  # (utt_id, role, text, titles)
    fine: str = ""
    coarse: str = ""
    video: str = ""


def read_dialogue_rows(path: Path, report: InspiredReport, dialogues: dict[str, _Dialogue]) -> None:
    """Add the valid rows of one dialogue file to ``dialogues`` (by ``dialog_id``)."""
    header, rows, fh = _open_rows(path, report.skipped)
    with fh:
        at = _columns(path, header, DIALOGUE_COLUMNS)
        for line, row in rows:
            report.rows_read += 1
            try:
                if len(row) != len(header):
                    raise _Bad(f"expected {len(header)} fields, got {len(row)}")
                dialog_id = row[at["dialog_id"]].strip()
                if not dialog_id:
                    raise _Bad("empty dialog_id")
                utt = row[at["utt_id"]].strip()
                if not utt.isdigit():
                    raise _Bad(f"utt_id must be a whole number, got {utt!r}")
                speaker = row[at["speaker"]].strip().upper()
                if speaker not in ROLES:
                    raise _Bad(f"speaker must be RECOMMENDER or SEEKER, got {row[at['speaker']]!r}")
                dialogue = dialogues.setdefault(dialog_id, _Dialogue(dialog_id, f"{path}:{line}"))
                if any(u == int(utt) for u, *_ in dialogue.rows):
                    raise _Bad(f"duplicate utt_id {utt} in dialogue {dialog_id}")
            except _Bad as exc:
                report.skipped.append(f"{path}:{line}: {exc}")
                continue
            text = " ".join(row[at["text"]].replace(QUOTE, '"').split())
            titles = [t for t in (" ".join(x.split()) for x in row[at["movies"]].split(";")) if t]
            dialogue.rows.append((int(utt), ROLES[speaker], text, titles))
            dialogue.fine = dialogue.fine or row[at["fine_label"]].strip()
            dialogue.coarse = dialogue.coarse or row[at["coarse_label"]].strip()
            dialogue.video = dialogue.video or _SPLIT.sub("", row[at["movie_id"]].strip())


def _conversation(d: _Dialogue, cat: Catalogue, report: InspiredReport) -> dict[str, Any] | None:
    """One dialogue as a KB conversation, or ``None`` (reported) when it has no seeker turn."""
    turns: list[_Turn] = []
    for _, role, text, titles in sorted(d.rows, key=lambda r: r[0]):
        if not turns or turns[-1].role != role:
            turns.append(_Turn(role))
        if text:
            turns[-1].texts.append(mask_pii(text))
        for title in titles:
            if (item_id := cat.find(title)) is not None:
                turns[-1].mentions.append(item_id)
            else:
                report.unknown_mentions[title] += 1
    first_user = next((i for i, t in enumerate(turns) if t.role == "user"), None)
    if first_user is None:
        report.skipped.append(f"{d.source}: dialogue {d.dialog_id} has no SEEKER utterance")
        return None
    report.leading_agent_turns_dropped += first_user
    turns = turns[first_user:]

    taken = outcome(d.fine, d.coarse)
    target = cat.by_video.get(d.video) if d.video else None
    if d.video and target is None:
        report.targets_unknown += 1
    if target is not None and not any(t.role == "agent" and target in t.mentions for t in turns):
        bare = title_key(cat.items[target]["title"])[0]
        said = next(
            (t for t in turns if t.role == "agent" and f" {bare} " in f" {title_key(' '.join(t.texts))[0]} "), None
        )
        if said is None:
            report.targets_not_recommended += 1
            target = None
        else:  # the annotators' entity linker missed it; the recommender did name it
            said.mentions.append(target)

    rows: list[dict[str, Any]] = []
    reacted = False
    previous_agent: list[str] = []
    for turn in turns:
        mentions = list(dict.fromkeys(turn.mentions))
        row: dict[str, Any] = {"role": turn.role, "text": " ".join(turn.texts)}
        if mentions:
            row["mentions"] = mentions
        if turn.role == "agent":
            if mentions:
                accepted = [target] if taken and target in mentions else []
                row.update(intent=RECOMMEND_INTENT, recommended=mentions, accepted=accepted)
            previous_agent = mentions
        else:
            if target is not None and taken is not None and not reacted and target in previous_agent + mentions:
                row["liked" if taken else "disliked"] = [target]
                reacted = True
            previous_agent = []
        rows.append(row)
    report.rejected += int(target is not None and taken is False)
    return {"conversation_id": f"N{d.dialog_id.removesuffix('.pkl')}", "turns": rows}


# ------------------------------------------------------------------ the whole import


def import_inspired(
    dialogues: Path | Sequence[Path],
    movies: Path,
    out_dir: Path,
    *,
    limit: int | None = None,
    overwrite: bool = False,
) -> InspiredReport:
    """Import the INSPIRED ``dialogues`` file(s) with the ``movies`` database as the KB folder
    ``out_dir``. Each dialogue is the conversation ``N<dialog_id without .pkl>``, in file order.

    ``limit`` keeps only the first ``limit`` dialogues. An ``out_dir`` that already holds KB
    files is refused unless ``overwrite``. Raises :class:`ImportFailed` when a file cannot be
    read, lacks a column, nothing valid is left, or the result would not load."""
    t0 = time.perf_counter()
    files = [Path(dialogues)] if isinstance(dialogues, (str, Path)) else [Path(p) for p in dialogues]
    out = Path(out_dir)
    if not files:
        raise ImportFailed("no dialogue file given")
    if limit is not None and limit < 1:
        raise ImportFailed(f"limit must be 1 or more, got {limit}")
    present = [name for name in WRITTEN if (out / name).exists()]
    if present and not overwrite:
        raise ImportFailed(f"{out}: already holds {', '.join(present)}; choose to overwrite")
    report = InspiredReport(dialogues=files, out_dir=out)

    cat = read_movies(Path(movies), report.skipped)
    if not cat.items:
        raise ImportFailed(f"{movies}: no valid movie rows", report.skipped)
    by_id: dict[str, _Dialogue] = {}
    for path in files:
        read_dialogue_rows(path, report, by_id)
    report.dialogues_read = len(by_id)
    conversations = []
    for d in list(by_id.values())[:limit]:
        if (conv := _conversation(d, cat, report)) is not None:
            conversations.append(conv)
    if not conversations:
        raise ImportFailed(f"{', '.join(map(str, files))}: no valid dialogues to import", report.skipped)

    triples = list(cat.triples)
    report.files_written = write_validated(
        out,
        {
            "shop.json": json.dumps(SHOP, indent=2) + "\n",
            "catalogue.jsonl": jsonl_text(cat.items.values()),
            "templates.jsonl": "",
            "kg.tsv": "subject\tpredicate\tobject\n" + "".join(f"{s}\t{p}\t{o}\n" for s, p, o in triples),
            "users.jsonl": "",
            "transcripts.jsonl": jsonl_text(conversations),
            "reasons.json": json.dumps(_REASONS, indent=2) + "\n",
        },
    )
    report.items, report.triples, report.conversations = len(cat.items), len(triples), len(conversations)
    turns = [t for c in conversations for t in c["turns"]]
    report.turns = len(turns)
    report.recommendation_turns = sum(1 for t in turns if t.get("recommended"))
    report.accepted = sum(len(t.get("accepted", [])) for t in turns)
    report.seconds = time.perf_counter() - t0
    return report
