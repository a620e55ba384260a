"""What every importer shares: reading CSV rows with line numbers, and writing the KB all or
nothing, only once the KB loader accepts it."""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from chatrec.kb import FILES, KBError, load_kb


class ImportFailed(ValueError):
    """Nothing could be imported; ``errors`` holds the ``file:line: reason`` lines behind it."""

    def __init__(self, message: str, errors: list[str] | None = None):
        self.errors = list(errors or [])
        shown = "".join(f"\n  {e}" for e in self.errors[:20])
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(message + shown + more)


# shop.json wording for a film site (the ReDial and INSPIRED importers): its last-resort reply, and
# films named bare ("It (2017)", not "the It (2017)")
FILM_SITE = {
    "help": "I can suggest films to watch: tell me one you liked, or the kind of film you feel like tonight.",
    "title_article": False,
}


def write_validated(out: Path, contents: dict[str, str]) -> list[str]:
    """Write ``contents`` (file name -> text) into a staging folder beside ``out`` together with
    the KB files already in ``out`` that it does not replace, load that with the KB loader,
    and only then move each new file into ``out``. On any problem nothing in ``out`` changes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    try:
        for name, text in contents.items():
            with open(stage / name, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        for name in FILES.values():
            if name not in contents and (out / name).exists():
                shutil.copy2(out / name, stage / name)  # checked with the new files; never moved back
        try:
            load_kb(stage)
        except KBError as exc:
            errors = [e.replace(str(stage), str(out)) for e in exc.errors]
            raise ImportFailed(f"{out}: the imported KB would not load; nothing was written", errors) from exc
        out.mkdir(exist_ok=True)
        for name in contents:
            os.replace(stage / name, out / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [str(out / name) for name in contents]


def csv_rows(path: Path, reader: Any, skipped: list[str]) -> Iterator[tuple[int, list[str]]]:
    """``(first line, fields)`` for each non-blank row of a csv reader; CSV errors go to ``skipped``."""
    last_end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            skipped.append(f"{path}:{last_end + 1}: CSV error: {exc}")
            last_end = reader.line_num
            continue
        except UnicodeDecodeError as exc:
            raise ImportFailed(f"{path}:{last_end + 1}: not UTF-8 text ({exc.reason})") from exc
        start, last_end = last_end + 1, reader.line_num
        if any(c.strip() for c in row):
            yield start, row
