"""Language identification with fastText (lid.176.ftz by default, bundled as package data).

The model is loaded once per process (once per Ray actor); prediction runs on a whole batch in one
call into fastText's C++ code. Long documents are sampled (the first chunk and one from the
middle): a boilerplate header alone would mislabel a page, and predicting on megabytes wastes time.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import regex

if TYPE_CHECKING:
    from filters.language_pairs import WordEvidencePair

_KANA = regex.compile(r"[\p{Hiragana}\p{Katakana}]")
_HAN = regex.compile(r"\p{Han}")

BUNDLED_MODEL = "lid.176.ftz"


def bundled_model_path() -> Path:
    """Path of the bundled lid.176.ftz (CC BY-SA 3.0, see filters/models/NOTICE.md)."""
    return Path(str(resources.files("filters") / "models" / BUNDLED_MODEL))


def sample_text(text: str, sample_chars: int) -> str:
    """What the model sees: newlines folded (fastText predicts one line), long texts sampled."""
    if len(text) > sample_chars:
        half = sample_chars // 2
        mid = len(text) // 2
        text = text[:half] + " " + text[mid : mid + half]
    return text.replace("\n", " ").replace("\r", " ")


class LanguageIdentifier:
    """fastText language ID over batches: labels and scores. Labels are the job's codes: lid.176's ISO 639-1
    ones as they are; a GlotLID-style model's ISO 639-3 + script labels (`__label__zsm_Latn`) mapped to them
    (`ms`, filters/languages.py), with the script kept (`predict_scripts`)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        sample_chars: int = 2000,
        pairs: Sequence[str] | None = None,
    ):
        import fasttext

        from filters.language_pairs import DEFAULT_PAIRS, pairs_for

        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"language-ID model not found: {path}")
        fasttext.FastText.eprint = lambda *a, **k: None  # silence the load-time warning per actor
        self.model = fasttext.load_model(str(path))
        self.model_path = str(path)
        self.sample_chars = sample_chars
        # a second look at the labels of pairs lid.176 confuses (filters/language_pairs.py); () for none
        self.pairs = pairs_for(DEFAULT_PAIRS if pairs is None else pairs)
        from filters.languages import split_label

        self._split = split_label
        self.labels_have_scripts = any(split_label(lab.removeprefix("__label__"))[1] for lab in self.model.get_labels())

    def predict(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        langs, scores, _ = self.predict_scripts(texts)
        return langs, scores

    def predict_scripts(
        self, texts: Sequence[str], samples: list[str] | None = None
    ) -> tuple[list[str], np.ndarray, list[str | None]]:
        """(language codes, scores, scripts): scripts are None unless the model's labels carry them.
        `samples`: the texts' `sample_text`s where the caller has them already."""
        if not texts:
            return [], np.zeros(0, dtype=np.float32), []
        if samples is None:
            samples = [sample_text(t, self.sample_chars) for t in texts]
        labels, scores = self.model.predict(samples, k=1)
        raw = [lab[0].removeprefix("__label__") if lab else "und" for lab in labels]
        if self.labels_have_scripts:
            pairs = [self._split(r) for r in raw]
            langs, scripts = [p[0] for p in pairs], [p[1] for p in pairs]
        else:
            langs, scripts = raw, [None] * len(raw)
        for i, lang in enumerate(langs):
            # lid.176 calls short Chinese passages Japanese; Japanese prose without any kana does
            # not occur, so a Han-only "ja" text is Chinese.
            if lang == "ja" and not _KANA.search(texts[i]) and _HAN.search(texts[i]):
                langs[i] = "zh"
        # fastText's softmax can overshoot 1.0 by a hair; keep scores probabilities.
        score = np.clip(np.array([s[0] if len(s) else 0.0 for s in scores], dtype=np.float32), 0.0, 1.0)
        for pair in self.pairs:
            self._decide_pair(pair, samples, langs, score)
        return langs, score, scripts

    def _decide_pair(self, pair: WordEvidencePair, samples: list[str], langs: list[str], score: np.ndarray) -> None:
        """Documents labelled with one of the pair's languages get the one their words say; their score is
        the model's probability of the pair, the part of its answer this decision keeps."""
        idx = [i for i, lang in enumerate(langs) if lang in pair.langs]
        if not idx:
            return
        texts = [samples[i] for i in idx]
        top, probs = self.model.predict(texts, k=5)
        for j, (i, lang) in enumerate(zip(idx, pair.decide(texts))):
            langs[i] = lang
            p = sum(
                float(pr)
                for lab, pr in zip(top[j], probs[j])
                if self._split(lab.removeprefix("__label__"))[0] in pair.langs
            )
            score[i] = min(1.0, p)


# ---------------------------------------------------------------------------------------------------
# Per-language score thresholds (filters/lid_thresholds.yaml)
#
# lid.176 is far surer of some languages than of others: Hebrew, Japanese or Korean paragraphs score
# above 0.99, Tagalog and Indonesian ones often 0.6 to 0.7, Malay and Cebuano ones lower still. One
# global `min_score` either lets noise through for the first or drops clean text of the second. The
# table holds, per Qwen2 language, the 2nd percentile of the probability lid.176 gives the *correct*
# label on clean reference paragraphs, floored and capped, rounded down to 0.01. It is the default for
# languages not named in `stages.langid.min_score_by_lang` when the bundled model is used.
# The 2nd rather than the 5th percentile: with about a hundred build paragraphs per language the 5th
# percentile put Indonesian at 0.65 and Tagalog at 0.65, and only 90% / 94.8% of the held-out
# paragraphs passed; at the 2nd, 96.5% / 95.7% do (every other language: 98% or more).
#
# Reference paragraphs: Tatoeba sentences (../shared/data/lid_tatoeba_laser.jsonl.gz) joined five at a
# time in file order, plus the primary-variant UDHR articles (../shared/data/lid_udhr.jsonl.gz). Even
# positions (per source and language) build the table; odd positions are held out for the test
# (tests/test_lid_thresholds.py). Regenerate or verify with
#     python -m filters.langid --build-thresholds [--check] [--data-dir ../shared/data]
# ---------------------------------------------------------------------------------------------------

THRESHOLDS_FILE = "lid_thresholds.yaml"
THRESHOLD_PERCENTILE = 2.0
THRESHOLD_FLOOR = 0.30
THRESHOLD_CAP = 0.65
PARAGRAPH_SENTENCES = 5
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def thresholds_path() -> Path:
    return Path(str(resources.files("filters") / THRESHOLDS_FILE))


@lru_cache(maxsize=1)
def bundled_thresholds() -> dict[str, float]:
    """The shipped per-language minimum scores for lid.176 ({} when the file is missing). Cached: do not mutate."""
    import yaml

    path = thresholds_path()
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k): float(v) for k, v in (data.get("thresholds") or {}).items()}


def reference_paragraphs(data_dir: str | Path, langs: Sequence[str], part: str) -> dict[str, list[str]]:
    """Clean paragraphs per language: `part` is "build" (even positions) or "heldout" (odd positions)."""
    import gzip
    import json
    from collections import defaultdict

    if part not in ("build", "heldout"):
        raise ValueError(f"part must be build or heldout, not {part!r}")
    keep = 0 if part == "build" else 1
    data_dir = Path(data_dir)
    wanted = set(langs)
    sentences: dict[str, list[str]] = defaultdict(list)
    with gzip.open(data_dir / "lid_tatoeba_laser.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec["lang"] in wanted:
                sentences[rec["lang"]].append(rec["text"])
    articles: dict[str, list[str]] = defaultdict(list)
    with gzip.open(data_dir / "lid_udhr.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("is_primary_variant") and rec["lang"] in wanted:
                articles[rec["lang"]].append(rec["text"])
    out: dict[str, list[str]] = {}
    for lang in langs:
        s = sentences.get(lang, [])
        paras = [
            " ".join(s[i : i + PARAGRAPH_SENTENCES])
            for i in range(0, len(s) - PARAGRAPH_SENTENCES + 1, PARAGRAPH_SENTENCES)
        ]
        out[lang] = paras[keep::2] + articles.get(lang, [])[keep::2]
    return out


def label_probabilities(lid: LanguageIdentifier, texts: Sequence[str], lang: str) -> tuple[np.ndarray, list[str]]:
    """Probability the model gives `lang` on each text (whether or not it is the top label), and the top labels."""
    if not texts:
        return np.zeros(0), []
    tops, _ = lid.predict(texts)
    labels, probs = lid.model.predict([sample_text(t, lid.sample_chars) for t in texts], k=-1, threshold=0.0)
    want = "__label__" + lang
    out = np.array([float(dict(zip(lab, p)).get(want, 0.0)) for lab, p in zip(labels, probs)])
    return np.clip(out, 0.0, 1.0), tops


def build_thresholds(
    data_dir: str | Path = DEFAULT_DATA_DIR, lid: LanguageIdentifier | None = None
) -> tuple[dict[str, float], dict[str, dict]]:
    """The table (lang -> threshold) and what it came from (n paragraphs, raw percentile)."""
    from filters.languages import QWEN29

    lid = lid or LanguageIdentifier()
    paras = reference_paragraphs(data_dir, QWEN29, "build")
    table: dict[str, float] = {}
    info: dict[str, dict] = {}
    for lang in QWEN29:
        probs, _ = label_probabilities(lid, paras[lang], lang)
        if len(probs) == 0:
            continue
        raw = float(np.percentile(probs, THRESHOLD_PERCENTILE))
        value = min(max(raw, THRESHOLD_FLOOR), THRESHOLD_CAP)
        table[lang] = float(np.floor(value * 100 + 1e-9) / 100)
        info[lang] = {"n": len(probs), "raw": raw}
    return table, info


def render_thresholds(table: dict[str, float], info: dict[str, dict]) -> str:
    lines = [
        "# Per-language minimum language-ID scores for the bundled fastText lid.176.ftz.",
        "# GENERATED FILE - do not edit by hand. Regenerate / verify with:",
        "#     python -m filters.langid --build-thresholds [--check] [--data-dir ../shared/data]",
        f"# Value = percentile {THRESHOLD_PERCENTILE:g} of the probability lid.176 gives the correct label on",
        f"# clean reference paragraphs (Tatoeba sentences joined {PARAGRAPH_SENTENCES} at a time, and primary-variant UDHR",
        "# articles; even positions only, odd ones are held out for tests/test_lid_thresholds.py),",
        f"# clamped to [{THRESHOLD_FLOOR:.2f}, {THRESHOLD_CAP:.2f}] and rounded down to 0.01.",
        "# Used for languages not named in stages.langid.min_score_by_lang; stages.langid.min_score is",
        "# the fallback for every other language. Not used with a custom stages.langid.model.",
        "# Trailing comments: paragraphs measured, unclamped percentile.",
        f"model: {BUNDLED_MODEL}",
        "thresholds:",
    ]
    for lang, value in table.items():
        lines.append(f"  {lang}: {value:.2f}  # n={info[lang]['n']}, p{THRESHOLD_PERCENTILE:g}={info[lang]['raw']:.3f}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m filters.langid", description=__doc__.split("\n")[0])
    ap.add_argument("--build-thresholds", action="store_true", help=f"regenerate filters/{THRESHOLDS_FILE}")
    ap.add_argument("--check", action="store_true", help="only compare a regeneration with the shipped file")
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="folder with lid_udhr / lid_tatoeba files")
    args = ap.parse_args(argv)
    if not args.build_thresholds:
        ap.error("nothing to do (use --build-thresholds)")
    text = render_thresholds(*build_thresholds(args.data_dir))
    path = thresholds_path()
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            print(f"{path} differs from a regeneration")
            return 1
        print(f"{path} is up to date")
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
