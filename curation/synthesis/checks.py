"""Checks a generated document must pass to be kept, as a pure function of a batch.

In order; the first failing check is the `drop_reason`:
  synth:empty              nothing but whitespace
  synth:truncated          cut by max_tokens (finish_reason `length`), unless allow_truncated
  synth:prompt_leak        shares a `leak_ngram`-gram with the template's instructions, or starts with a
                           chat role label ("assistant:")
  synth:too_short / synth:too_long
                           under `min_chars` or `min_length_ratio` x the source's characters, or over
                           `max_length_ratio` x them
  synth:copy               over `max_copy_share` of its `copy_ngram`-grams appear verbatim in the source
  synth:language_mismatch  language ID of the output differs from the source's language
  then the task's heuristic filters (their own reasons, e.g. gopher_repetition:top_2_gram), as for organic
  text. Units are `mixed_units`: lower-cased words, one unit per character of the unspaced scripts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import regex

from curation.synthesis.spec import ChecksSpec
from curation.synthesis.templates import Template
from filters.segmentation import mixed_units

_ROLE_LABEL = regex.compile(r"^\s*(system|user|assistant|human|ai)\s*:", regex.IGNORECASE)
NO_LANGUAGE = frozenset({None, "", "und", "other", "code"})


def gram_hashes(units: list[str], n: int) -> list[int]:
    return [hash(tuple(units[i : i + n])) for i in range(len(units) - n + 1)]


def copy_share(output: str, source: str, n: int) -> float:
    """Share of the output's n-grams (positions) that occur in the source."""
    grams = gram_hashes(mixed_units(output), n)
    if not grams:
        return 0.0
    src = set(gram_hashes(mixed_units(source), n))
    return sum(g in src for g in grams) / len(grams)


@dataclass
class TaskChecks:
    """One task's checks with what they need prepared (instruction n-grams, filter objects)."""

    spec: ChecksSpec
    template: Template
    filters: list[Any] = field(default_factory=list)
    leak_grams: frozenset[int] = frozenset()

    @classmethod
    def build(cls, spec: ChecksSpec, template: Template) -> "TaskChecks":
        from filters.registry import all_filters

        # {language} is filled per document: n-grams across it are not the template's own words
        words = mixed_units(template.instructions().replace("{language}", "\n"))
        return cls(
            spec,
            template,
            [all_filters()[name](**opts) for name, opts in spec.filters.enabled()],
            frozenset(gram_hashes(words, spec.leak_ngram)),
        )

    def limit(self, name: str) -> float:
        v = getattr(self.spec, name)
        return getattr(self.template, name) if v is None else v


def check_generations(table: pa.Table, tasks: dict[str, TaskChecks], lid: Any = None) -> pa.Table:
    """`table` has task, text (the output), source_text, source_lang, finish_reason; returns it with
    lang, lang_score (of the output), copy_share and drop_reason (null: kept)."""
    n = len(table)
    texts = table["text"].to_pylist()
    sources = table["source_text"].to_pylist()
    src_langs = table["source_lang"].to_pylist()
    finish = table["finish_reason"].to_pylist()
    task_of = table["task"].to_pylist()
    reasons: list[str | None] = [None] * n
    shares = np.full(n, np.nan)
    langs: list[str | None] = list(src_langs)
    scores = np.full(n, np.nan, dtype=np.float32)
    if lid is not None and n:
        labels, sc = lid.predict([t or "" for t in texts])
        langs, scores = list(labels), np.asarray(sc, dtype=np.float32)
    for i in range(n):
        tc = tasks[task_of[i]]
        sp = tc.spec
        text, src = texts[i] or "", sources[i] or ""
        if not text.strip():
            reasons[i] = "synth:empty"
            continue
        if finish[i] == "length" and not sp.allow_truncated:
            reasons[i] = "synth:truncated"
            continue
        if _ROLE_LABEL.match(text) or not tc.leak_grams.isdisjoint(gram_hashes(mixed_units(text), sp.leak_ngram)):
            reasons[i] = "synth:prompt_leak"
            continue
        chars = len(text)
        if chars < max(sp.min_chars, tc.limit("min_length_ratio") * len(src)):
            reasons[i] = "synth:too_short"
            continue
        if chars > tc.limit("max_length_ratio") * len(src):
            reasons[i] = "synth:too_long"
            continue
        shares[i] = copy_share(text, src, sp.copy_ngram)
        if shares[i] > tc.limit("max_copy_share"):
            reasons[i] = "synth:copy"
            continue
        if lid is not None and sp.language_match and src_langs[i] not in NO_LANGUAGE and langs[i] != src_langs[i]:
            reasons[i] = "synth:language_mismatch"
    for name, tc in tasks.items():
        rows = [i for i in range(n) if reasons[i] is None and task_of[i] == name]
        for filt in tc.filters:
            if not rows:
                break
            res = filt([texts[i] for i in rows], [langs[i] for i in rows])
            for j, i in enumerate(rows):
                if res.reasons[j] is not None:
                    reasons[i] = res.reasons[j]
                elif res.texts is not None:
                    texts[i] = res.texts[j]
            rows = [i for i in rows if reasons[i] is None]
    out = table.set_column(table.column_names.index("text"), "text", pa.array(texts, pa.large_string()))
    for name, arr in (
        ("lang", pa.array(langs, pa.string())),
        ("lang_score", pa.array(scores, mask=np.isnan(scores))),
        ("copy_share", pa.array(shares.astype(np.float32), mask=np.isnan(shares))),
        ("drop_reason", pa.array(reasons, pa.string())),
    ):
        out = out.append_column(name, arr)
    return out
