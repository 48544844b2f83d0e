"""An example plugin for corpus-curation (docs/extending.md walks through it).

- `Shouting`, a heuristic filter: a document whose letters are mostly capitals is dropped as
  `shouting:upper_share`. It writes only its rule; the base class runs the batch, the filter stage
  decides which documents it sees and counts its drops.
- `WordCount`, a stage: adds `n_words` to every document and drops those with fewer than `min_words`
  (`word_count:too_few`); words listed in `ignore_words_file` do not count. The file is declared in
  `reads()`, so the service checks it against its roots like every built-in model path.
- `TsvReader`, an input format (`format: tsv`): one `id<TAB>text` record per line; a line without a tab is
  quarantined with its line number, like a bad JSONL line.
- `Variety`, a quality scorer (`scorer: variety`): the share of distinct words, to threshold with
  `min_score` like a fastText classifier; words in its `stopwords_file` option do not count.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from curation.io.files import filesystem_for
from curation.io.formats import Reader
from curation.stages.base import Resources, Stage, alive_mask, set_column
from filters.base import Filter
from filters.scorers import Scorer


@dataclass
class Shouting(Filter):
    """Drop documents whose letters are more than `max_upper_share` capitals."""

    max_upper_share: float = 0.6
    min_letters: int = 20  # too few letters to judge: passes
    name = "shouting"
    reasons = ("shouting:upper_share",)

    def check(self, text: str, lang: str | None = None) -> str | None:
        letters = [c for c in text if c.isalpha()]
        if len(letters) < self.min_letters:
            return None
        upper = sum(c.isupper() for c in letters)
        return "shouting:upper_share" if upper / len(letters) > self.max_upper_share else None


class WordCountSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown options are errors naming the key

    min_words: int = Field(1, ge=0, description="drop documents with fewer words (word_count:too_few)")
    ignore_words_file: str | None = Field(None, description="a file of words (one per line) that do not count")


class WordCount(Stage):
    name = "word_count"
    spec_model = WordCountSpec
    resources = Resources(pool="quality", model=False)
    adds = ("n_words",)
    drop_reasons = ("word_count:too_few",)
    after = "filters"  # runs right after the heuristic filters
    description = "count whitespace-separated words; drop documents with too few"

    def reads(self) -> list[tuple[str, str]]:
        return [("ignore_words_file", self.spec.ignore_words_file)] if self.spec.ignore_words_file else []

    def setup(self) -> None:
        self.ignore: frozenset[str] = frozenset()
        if self.spec.ignore_words_file:
            with open(self.spec.ignore_words_file, encoding="utf-8") as f:
                self.ignore = frozenset(w.strip().lower() for w in f if w.strip())

    def process(self, table: pa.Table) -> pa.Table:
        texts = table["text"].to_pylist()
        counts = np.array([0 if t is None else sum(w.lower() not in self.ignore for w in t.split()) for t in texts])
        reasons = table["drop_reason"].to_pylist()
        for i in np.flatnonzero(alive_mask(table)):
            if counts[i] < self.spec.min_words:
                reasons[i] = "word_count:too_few"
        table = set_column(table, "n_words", pa.array(counts, pa.int64()), pa.int64())
        return set_column(table, "drop_reason", reasons, pa.string())


class TsvReader(Reader):
    name = "tsv"
    suffixes = (".tsv",)
    description = "one id<TAB>text record per line"

    def read(self, f, builder, limits) -> Iterator[pa.Table]:
        fs, path = filesystem_for(f.uri)  # local paths and object stores alike, under the service's path policy
        with fs.open_input_stream(path) as raw, io.BufferedReader(raw) as stream:  # streamed line by line
            yield from self._records(stream, builder)

    @staticmethod
    def _records(stream, builder) -> Iterator[pa.Table]:
        for lineno, line in enumerate(stream, start=1):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            id_, tab, text = line.decode("utf-8", "replace").partition("\t")
            if not tab:
                builder.add(lineno, None, None, "no tab: expected id<TAB>text", line)
            else:
                builder.add(lineno, id_, text)
            if builder.full():
                yield builder.flush()


class VarietyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stopwords_file: str | None = Field(None, description="words (one per line) left out of the count")


class Variety(Scorer):
    name = "variety"
    options_model = VarietyOptions
    needs_model = False
    description = "distinct words / words"

    @classmethod
    def reads(cls, options: VarietyOptions) -> list[tuple[str, str]]:
        return [("stopwords_file", options.stopwords_file)] if options.stopwords_file else []

    def setup(self) -> None:
        self.stop: frozenset[str] = frozenset()
        if self.options.stopwords_file:
            with open(self.options.stopwords_file, encoding="utf-8") as f:
                self.stop = frozenset(w.strip().lower() for w in f if w.strip())

    def scores(self, texts: Sequence[str | None]) -> np.ndarray:
        out = np.full(len(texts), np.nan, dtype=np.float32)
        for i, t in enumerate(texts):
            if t is not None:
                words = [w for w in t.lower().split() if w not in self.stop]
                out[i] = len(set(words)) / len(words) if words else 0.0
        return out
