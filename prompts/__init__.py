"""Prompt templates (Jinja2, strict) and per-route instructions, installed as the package data ``chatrec.prompts``."""
