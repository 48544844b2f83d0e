"""The per-language table of stop words and heuristic thresholds (filters/language_tables.yaml).

Generated from reference text by ``python -m filters.build_language_tables`` (method in that module).
A filter takes a threshold from the document's row when the job leaves that threshold at its published
default, so explicit settings still apply to every language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

LANGUAGE_TABLE_PATH = Path(__file__).with_name("language_tables.yaml")


def load_language_table(path: Path = LANGUAGE_TABLE_PATH) -> dict[str, dict]:
    """lang -> row of the table (empty when the file is missing)."""
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


LANGUAGE_TABLE: dict[str, dict] = load_language_table()


def per_language(rule: str, settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """lang -> thresholds of `rule` (a key of the rows, e.g. "c4") for the settings left at their defaults.

    Languages without a row, and settings changed from their defaults, use `settings` as given.
    """
    out = {}
    for lang, row in LANGUAGE_TABLE.items():
        values = row.get(rule) or {}
        out[lang] = {
            key: values.get(key, value) if value == defaults[key] else value for key, value in settings.items()
        }
    return out
