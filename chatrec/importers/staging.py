"""Writing an imported KB: all or nothing, and only what the KB loader accepts."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from chatrec.kb import FILES, KBError, load_kb


class ImportFailed(ValueError):
    """Nothing could be imported; ``errors`` holds the ``file:line: reason`` lines behind it."""

    def __init__(self, message: str, errors: list[str] | None = None):
        self.errors = list(errors or [])
        shown = "".join(f"\n  {e}" for e in self.errors[:20])
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(message + shown + more)


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
