"""Second looks at the language pairs lid.176 confuses: Standard Malay / Indonesian, Cebuano / Tagalog.

lid.176 labels most Standard Malay text `id` (fastText #870) and a third of clean Cebuano paragraphs `tl`.
In both pairs the two languages share their script and much of their vocabulary but not their function
words and spellings (kerana/karena; ug/at, nga/na, dili/hindi), so a per-word table of log-odds decides
them far better than character n-grams: the mean evidence of a document's words against the pair's
threshold. It costs one regex pass over the sample lid.176 already saw and runs only on documents lid.176
put in a pair. A pair is a `WordEvidencePair` in `PAIRS`; `stages.langid.pairs` names the ones a job uses.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Callable, Sequence

import regex

MODELS = Path(__file__).resolve().parent / "models"
_TOKEN = regex.compile(r"[a-z]+(?:-[a-z]+)*")


@lru_cache(maxsize=8)
def read_word_table(path: str) -> dict[str, float]:
    """A `word<TAB>log-odds` table (gzip, `#` comments)."""
    out: dict[str, float] = {}
    for line in gzip.decompress(Path(path).read_bytes()).decode("utf-8").splitlines():
        if line and not line.startswith("#"):
            word, _, odds = line.partition("\t")
            out[word] = float(odds)
    return out


@dataclass(frozen=True)
class WordEvidencePair:
    """Two languages told apart by the mean per-word log-odds of `first` against `second`."""

    first: str
    second: str
    table_file: str  # under filters/models/
    threshold: float  # mean evidence above which a document is `first`
    # hand-picked decisive words (weight per unit), added on top of the table's value, clipped first
    markers: Callable[[], dict[str, float]] = field(default=dict)
    clip: float = 5.0

    @property
    def name(self) -> str:
        return f"{self.first}/{self.second}"

    @cached_property
    def langs(self) -> frozenset[str]:
        return frozenset((self.first, self.second))

    def table(self) -> dict[str, float]:
        return _with_markers(self)

    def evidence(self, text: str) -> float:
        """Mean per-word evidence for `first` (> 0) against `second` (< 0)."""
        table = self.table()
        words = _TOKEN.findall(text.lower())
        return sum(table.get(w, 0.0) for w in words) / len(words) if words else 0.0

    def decide(self, texts: Sequence[str]) -> list[str]:
        """`first` or `second` for each text (all of them known to be one of the two)."""
        return [self.first if self.evidence(t) > self.threshold else self.second for t in texts]


@lru_cache(maxsize=8)
def _with_markers(pair: WordEvidencePair) -> dict[str, float]:
    table = dict(read_word_table(str(MODELS / pair.table_file)))
    for w, v in pair.markers().items():
        table[w] = max(-pair.clip, min(pair.clip, table.get(w, 0.0))) + v
    return table


def _ms_id_markers() -> dict[str, float]:
    from filters.ms_id import marker_weights

    return marker_weights()


PAIRS: dict[str, WordEvidencePair] = {
    p.name: p
    for p in (
        # filters/ms_id.py: wordfreq's word lists plus marker words; parameters chosen on half the Tatoeba text
        WordEvidencePair("ms", "id", "ms_id_words.tsv.gz", 0.1, _ms_id_markers),
        # filters/build_ceb_tl_table.py: word counts of the build half of the UDHR/Tatoeba reference text
        WordEvidencePair("ceb", "tl", "ceb_tl_words.tsv.gz", 0.0, clip=4.0),
    )
}
DEFAULT_PAIRS = tuple(PAIRS)


def pairs_for(names: Sequence[str]) -> list[WordEvidencePair]:
    """The pairs named (`"ms/id"`, ...); a name not in `PAIRS` is an error, and no language may be in two."""
    unknown = [n for n in names if n not in PAIRS]
    if unknown:
        raise ValueError(f"unknown language pair(s) {unknown}; known: {sorted(PAIRS)}")
    chosen = [PAIRS[n] for n in dict.fromkeys(names)]
    seen: set[str] = set()
    for p in chosen:
        if p.langs & seen:
            raise ValueError(f"language pair {p.name} shares a language with another pair")
        seen |= p.langs
    return chosen
