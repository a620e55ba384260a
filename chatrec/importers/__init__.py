"""Importers: turn common public formats (CSV/JSONL QA logs, ReDial dialogues) into the KB formats."""
