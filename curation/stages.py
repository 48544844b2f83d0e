"""The per-document stages as pure functions of a batch (a `pyarrow.Table`).

Each stage annotates instead of deleting: it adds columns and sets `drop_reason` (the first
failing rule) on rows it rejects. Rows that are quarantined (`error` set) or already dropped pass
through untouched, so every input row reaches the writer and the counts add up by construction.
`StageContext` holds what is expensive to build (the fastText model, the MinHash permutations);
Ray builds one per actor, the local engine one per job.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

from curation.spec import CurateJob
from filters.langid import sample_text
from filters.scripts import script_share

# Control characters other than \t and \n carry no text and break downstream tokenizers.
_CONTROL = regex.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
_CRLF = regex.compile(r"\r\n?")
_TRAILING_WS = regex.compile(r"[ \t]+\n")
_MANY_NEWLINES = regex.compile(r"\n{3,}")


def alive_mask(table: pa.Table) -> np.ndarray:
    """Rows still in play: not quarantined and not dropped by an earlier stage."""
    m = pc.and_(pc.is_null(table["error"]), pc.is_null(table["drop_reason"]))
    return np.asarray(m.to_numpy(zero_copy_only=False), dtype=bool)


def _set_column(table: pa.Table, name: str, values: Any, type_: pa.DataType) -> pa.Table:
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=type_)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, arr)
    return table.append_column(pa.field(name, type_), arr)


def _values(table: pa.Table, name: str, default: Any) -> list[Any]:
    """A column as a list, or `default` for every row when the batch has no such column (a batch built by
    hand; the readers always give `domain`, language ID gives `lang`)."""
    return table[name].to_pylist() if name in table.column_names else [default] * len(table)


def normalize_text(text: str, form: str) -> str:
    text = _CONTROL.sub("", _CRLF.sub("\n", text))
    if form != "none":
        text = unicodedata.normalize(form, text)
    text = _MANY_NEWLINES.sub("\n\n", _TRAILING_WS.sub("\n", text))
    return text.strip()


def normalize(table: pa.Table, ctx: "StageContext") -> pa.Table:
    """Unicode normal form, newlines, control characters; an empty result is dropped as `normalize:empty`."""
    if "drop_reason" not in table.column_names:
        table = table.append_column(pa.field("drop_reason", pa.string()), pa.nulls(len(table), pa.string()))
    form = ctx.job.stages.normalize.unicode_form
    texts = table["text"].to_pylist()
    alive = alive_mask(table)
    reasons = table["drop_reason"].to_pylist()
    for i in np.flatnonzero(alive):
        t = normalize_text(texts[i], form)
        texts[i] = t
        if not t:
            reasons[i] = "normalize:empty"
    table = _set_column(table, "text", texts, pa.large_string())
    table = _set_column(table, "drop_reason", reasons, pa.string())
    n_chars = pc.utf8_length(table["text"]).cast(pa.int64())
    return _set_column(table, "n_chars", pc.fill_null(n_chars, 0), pa.int64())


def langid(table: pa.Table, ctx: "StageContext") -> pa.Table:
    """`lang` and `lang_score` for every parsed row; low scores and unwanted languages are dropped.
    Code documents (domain `code`, declared or tagged) get `lang` code, no score, and are not dropped.

    The minimum score of a label is `min_score_by_lang`, else the bundled per-language table
    (filters/lid_thresholds.yaml; bundled model only), else `min_score`. Rows labelled `my` in legacy
    Zawgyi encoding are converted to Unicode (and re-scored), dropped (`langid:zawgyi`) or kept,
    as `zawgyi` says (filters/zawgyi.py)."""
    from filters.langid import bundled_thresholds

    spec = ctx.job.stages.langid
    texts = table["text"].to_pylist()
    parsed = [i for i, t in enumerate(texts) if t is not None]
    langs: list[str | None] = [None] * len(texts)
    scores = np.full(len(texts), np.nan, dtype=np.float32)
    if parsed:
        pl, ps = ctx.lid.predict([texts[i] for i in parsed])
        for j, i in enumerate(parsed):
            langs[i] = pl[j]
        scores[parsed] = ps
    alive = alive_mask(table)
    reasons = table["drop_reason"].to_pylist()
    zawgyi_policy = spec.zawgyi or "keep"
    rewritten = False
    if zawgyi_policy != "keep":
        from filters.zawgyi import is_zawgyi, zawgyi_to_unicode

        zg = [i for i in np.flatnonzero(alive)
              if langs[i] == "my" and is_zawgyi(sample_text(texts[i], spec.sample_chars))]
        if zg and zawgyi_policy == "drop":
            for i in zg:
                reasons[i] = "langid:zawgyi"
            alive[zg] = False
        elif zg:
            for i in zg:
                texts[i] = zawgyi_to_unicode(texts[i])
            rewritten = True
            pl, ps = ctx.lid.predict([texts[i] for i in zg])
            for j, i in enumerate(zg):
                langs[i] = pl[j]
            scores[zg] = ps
    defaults = bundled_thresholds() if spec.model is None and spec.bundled_thresholds else {}
    targets = ctx.job.target_languages()
    domains = _values(table, "domain", "web")
    for i in np.flatnonzero(alive):
        if domains[i] == "code":  # a programming language, not a natural one: no language policy
            langs[i], scores[i] = "code", np.nan
            continue
        lang = langs[i]
        if targets is not None and lang not in targets:
            if spec.other_languages == "drop":
                reasons[i] = "langid:not_target_language"
                continue
            if spec.other_languages == "other":
                langs[i] = "other"
        min_score = spec.min_score_by_lang.get(lang)
        if min_score is None:
            min_score = defaults.get(lang, spec.min_score)
        if scores[i] < min_score:
            reasons[i] = "langid:low_score"
        elif spec.min_script_share is not None:
            share = script_share(sample_text(texts[i], spec.sample_chars), lang)
            if share is not None and share < spec.min_script_share:
                reasons[i] = "langid:script_mismatch"
    table = _set_column(table, "lang", langs, pa.string())
    table = _set_column(table, "lang_score", pa.array(scores, mask=np.isnan(scores)), pa.float32())
    if rewritten:
        table = _set_column(table, "text", texts, pa.large_string())
        table = _set_column(table, "n_chars", pc.fill_null(pc.utf8_length(table["text"]).cast(pa.int64()), 0),
                            pa.int64())
    return _set_column(table, "drop_reason", reasons, pa.string())


def extract(table: pa.Table, ctx: "StageContext") -> pa.Table:
    """Main text out of the HTML of WARC rows (those with a `content_type` column; others pass through):
    an HTTP status outside 2xx drops the row as `extract:http_status`, content that is neither HTML nor
    plain text as `extract:not_html`, a page with no main text as `extract:empty`."""
    if "content_type" not in table.column_names:
        return table
    from filters.html_extract import is_html

    texts = table["text"].to_pylist()
    reasons = table["drop_reason"].to_pylist()
    types = table["content_type"].to_pylist()
    status = table["http_status"].to_pylist()
    for i in np.flatnonzero(alive_mask(table)):
        if status[i] is not None and not 200 <= status[i] < 300:
            reasons[i] = "extract:http_status"
        elif (types[i] or "").split(";")[0].strip().lower() == "text/plain":
            continue
        elif not is_html(types[i]):
            reasons[i] = "extract:not_html"
        else:
            texts[i] = ctx.extractor(texts[i]).strip()
            if not texts[i]:
                reasons[i] = "extract:empty"
    table = _set_column(table, "text", texts, pa.large_string())
    table = _set_column(table, "n_chars", pc.fill_null(pc.utf8_length(table["text"]).cast(pa.int64()), 0),
                        pa.int64())
    return _set_column(table, "drop_reason", reasons, pa.string())


def urls(table: pa.Table, ctx: "StageContext") -> pa.Table:
    """Rows whose `url` is on a block list, off the allow list or matches a pattern are dropped
    (`url:blocked_domain`, `url:not_allowed`, `url:pattern`); rows without a URL pass."""
    if "url" not in table.column_names:
        return table
    found = table["url"].to_pylist()
    reasons = table["drop_reason"].to_pylist()
    for i in np.flatnonzero(alive_mask(table)):
        reasons[i] = ctx.url_filter.check(found[i]) or reasons[i]
    return _set_column(table, "drop_reason", reasons, pa.string())


def domain(table: pa.Table, ctx: "StageContext") -> pa.Table:
    """`domain` from the tagger for parsed rows whose declared domain is in `retag` (default: web);
    `domain_score` is the tagger's confidence (null where the declared domain was kept)."""
    spec = ctx.job.stages.domain
    texts = table["text"].to_pylist()
    declared = _values(table, "domain", "web")
    retag = set(spec.retag)
    idx = [i for i, t in enumerate(texts) if t is not None and declared[i] in retag]
    scores = np.full(len(texts), np.nan, dtype=np.float32)
    if idx:
        tags, sc = ctx.domain_tagger.tag([texts[i] for i in idx])
        for j, i in enumerate(idx):
            declared[i] = tags[j]
        scores[idx] = sc
    table = _set_column(table, "domain", declared, pa.string())
    return _set_column(table, "domain_score", pa.array(scores, mask=np.isnan(scores)), pa.float32())


def heuristic_filters(table: pa.Table, ctx: "StageContext") -> pa.Table:
    """Each enabled heuristic filter in order, on the rows that survived the ones before.

    The web filters see documents of every domain but code and math; the `code` and `math` filters see
    only those (filters/heuristics.py). Texts and reasons stay Python lists across the filters; Arrow
    columns are rebuilt once."""
    from filters.heuristics import RULE_DOMAINS

    alive = np.flatnonzero(alive_mask(table))
    texts = table["text"].to_pylist()
    langs = _values(table, "lang", None)
    domains = np.array(_values(table, "domain", "web"), dtype=object)
    reasons = table["drop_reason"].to_pylist()
    rewritten = False
    for filt in ctx.filters:
        if len(alive) == 0:
            break
        t0 = time.perf_counter()
        if filt.name in RULE_DOMAINS:
            mine = domains[alive] == filt.name
        else:
            mine = ~np.isin(domains[alive], list(RULE_DOMAINS))
        rows = alive[mine]
        res = filt([texts[i] for i in rows], [langs[i] for i in rows])
        dropped = set()
        for j, i in enumerate(rows):
            if res.reasons[j] is not None:
                reasons[i] = res.reasons[j]
                dropped.add(int(i))
            elif res.texts is not None and res.texts[j] is not texts[i]:
                texts[i] = res.texts[j]
                rewritten = True
        if dropped:
            alive = np.array([i for i in alive if int(i) not in dropped], dtype=np.int64)
        ctx.last_timings[filt.name] = time.perf_counter() - t0
    table = _set_column(table, "drop_reason", reasons, pa.string())
    if rewritten:
        table = _set_column(table, "text", texts, pa.large_string())
        table = _set_column(table, "n_chars", pc.fill_null(pc.utf8_length(table["text"]).cast(pa.int64()), 0),
                            pa.int64())
    return table


def quality(table: pa.Table, ctx: "StageContext") -> pa.Table:
    """`quality_NAME` for every parsed row (kept or rejected: thresholds can be tuned afterwards), and
    `perplexity` with a KenLM model; surviving rows below a classifier's threshold are dropped as
    `quality:NAME` (above the perplexity limit: `quality:perplexity`)."""
    spec = ctx.job.stages.quality
    texts = table["text"].to_pylist()
    alive = alive_mask(table)
    reasons = table["drop_reason"].to_pylist()
    langs = _values(table, "lang", None)
    domains = _values(table, "domain", "web")
    for name, scorer in ctx.quality_scorers.items():
        t0 = time.perf_counter()
        scores = scorer.scores(texts)
        clf = spec.classifiers[name]
        for i in np.flatnonzero(alive):
            limit = clf.threshold(langs[i], domains[i])
            if limit is not None and not scores[i] >= limit:
                reasons[i] = f"quality:{name}"
                alive[i] = False
        table = _set_column(table, f"quality_{name}", pa.array(scores, mask=np.isnan(scores)), pa.float32())
        ctx.last_timings[f"quality_{name}"] = time.perf_counter() - t0
    if ctx.perplexity is not None:
        ppl = ctx.perplexity.scores(texts)
        limit = spec.perplexity.max_perplexity
        if limit is not None:
            for i in np.flatnonzero(alive):
                if not ppl[i] <= limit:
                    reasons[i] = "quality:perplexity"
        table = _set_column(table, "perplexity", pa.array(ppl, mask=np.isnan(ppl)), pa.float32())
    return _set_column(table, "drop_reason", reasons, pa.string())


def decontam(table: pa.Table, ctx: "StageContext") -> pa.Table:
    """Surviving rows that share an n-gram with a benchmark item: dropped as `decontam:NAME` (the first
    benchmark hit), or kept with `contaminated_by` listing the benchmarks (action: flag)."""
    spec = ctx.job.stages.decontam
    texts = table["text"].to_pylist()
    reasons = table["drop_reason"].to_pylist()
    flagged: list[str | None] = [None] * len(texts)
    for i in np.flatnonzero(alive_mask(table)):
        hits = ctx.decontaminator.hits(texts[i])
        if hits:
            if spec.action == "drop":
                reasons[i] = f"decontam:{hits[0]}"
            else:
                flagged[i] = ",".join(hits)
    if spec.action == "flag":
        table = _set_column(table, "contaminated_by", flagged, pa.string())
    return _set_column(table, "drop_reason", reasons, pa.string())


def dedup_keys(table: pa.Table, ctx: "StageContext") -> pa.Table:
    """The exact-text hash, the LSH band keys and the URL hash (dedup.url, rows with a URL) of every
    surviving row (null for the others)."""
    dedup = ctx.job.stages.dedup
    alive = np.flatnonzero(alive_mask(table))
    texts = table["text"].to_pylist()
    n = len(table)
    if dedup.exact is not None:
        from curation.dedup.minhash import exact_keys

        ek = np.zeros((n, 2), dtype=np.uint64)
        if len(alive):
            ek[alive] = exact_keys([texts[i] for i in alive])
        arr = pa.FixedSizeListArray.from_arrays(pa.array(ek.reshape(-1)), 2)
        table = _set_column(table, "_exact", _masked(arr, alive, n), pa.list_(pa.uint64(), 2))
    if dedup.minhash is not None:
        b = ctx.minhasher.bands
        bk = np.zeros((n, b), dtype=np.uint64)
        if len(alive):
            langs = _values(table, "lang", None)
            sig = ctx.minhasher.signatures([texts[i] for i in alive], [langs[i] for i in alive])
            bk[alive] = ctx.minhasher.band_keys(sig)
        arr = pa.FixedSizeListArray.from_arrays(pa.array(bk.reshape(-1)), b)
        table = _set_column(table, "_bands", _masked(arr, alive, n), pa.list_(pa.uint64(), b))
        # The whole signature too: dedup verifies each candidate pair on it (the share of equal values).
        k = ctx.minhasher.num_perm
        full = np.zeros((n, k), dtype=np.uint32)
        if len(alive):
            full[alive] = sig
        arr = pa.FixedSizeListArray.from_arrays(pa.array(full.reshape(-1)), k)
        table = _set_column(table, "_sig", _masked(arr, alive, n), pa.list_(pa.uint32(), k))
    if dedup.url is not None and "url" in table.column_names:
        from curation.dedup.minhash import exact_keys
        from filters.urls import normalize_url

        urls_ = table["url"].to_pylist()
        with_url = np.array([i for i in alive if urls_[i]], dtype=np.int64)
        uk = np.zeros((n, 2), dtype=np.uint64)
        if len(with_url):
            uk[with_url] = exact_keys([normalize_url(urls_[i]) for i in with_url])
        arr = pa.FixedSizeListArray.from_arrays(pa.array(uk.reshape(-1)), 2)
        table = _set_column(table, "_url", _masked(arr, with_url, n), pa.list_(pa.uint64(), 2))
    return table


def _masked(arr: pa.Array, alive: np.ndarray, n: int) -> pa.Array:
    valid = np.zeros(n, dtype=bool)
    valid[alive] = True
    return pc.if_else(pa.array(valid), arr, pa.nulls(n, arr.type))


@dataclass
class StageContext:
    """Per-process state the stages need: built once per Ray actor (or once per local job)."""

    job: CurateJob
    lid: Any = None
    filters: list[Any] = field(default_factory=list)
    domain_tagger: Any = None
    quality_scorers: dict[str, Any] = field(default_factory=dict)
    perplexity: Any = None
    decontaminator: Any = None
    extractor: Any = None
    url_filter: Any = None
    minhasher: Any = None
    last_timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, job: CurateJob, *, lid: bool = True, filters: bool = True, dedup: bool = True,
              domain: bool = True, quality: bool = True) -> "StageContext":
        from curation.io.policy import require_declared_reads

        require_declared_reads(job, skip_inputs=True)  # models and lists, checked where they are loaded
        ctx = cls(job)
        st = job.stages
        if lid and st.langid is not None:
            from filters.langid import LanguageIdentifier

            ctx.lid = LanguageIdentifier(st.langid.model, st.langid.sample_chars)
        if st.urls is not None:  # a few set lookups per row: built in every context
            from filters.urls import UrlFilter, read_domain_list

            block = frozenset().union(*(read_domain_list(p) for p in st.urls.block_domains))
            allow = (frozenset().union(*(read_domain_list(p) for p in st.urls.allow_domains))
                     if st.urls.allow_domains is not None else None)
            ctx.url_filter = UrlFilter(block, allow, st.urls.block_patterns)
        if domain and st.extract is not None:
            from filters.html_extract import load_extractor

            ctx.extractor = load_extractor(st.extract.extractor)
        if domain and st.domain is not None:
            from filters.domain import DomainTagger

            ctx.domain_tagger = DomainTagger(st.domain.model, st.domain.min_score)
        if filters and st.filters is not None:
            from filters.heuristics import ALL_FILTERS

            ctx.filters = [ALL_FILTERS[name](**opts) for name, opts in st.filters.enabled()]
        if quality and st.quality is not None:
            from filters.fasttext_quality import FastTextScorer

            ctx.quality_scorers = {name: FastTextScorer(c.model, c.positive_label)
                                   for name, c in st.quality.classifiers.items()}
            if st.quality.perplexity is not None:
                from filters.perplexity import KenLMPerplexity

                ctx.perplexity = KenLMPerplexity(st.quality.perplexity.model)
        if quality and st.decontam is not None:
            ctx.decontaminator = build_decontaminator(st.decontam)
        if dedup and st.dedup is not None and st.dedup.minhash is not None:
            from curation.dedup.minhash import MinHasher

            m = st.dedup.minhash
            ctx.minhasher = MinHasher(m.ngram, m.bands, m.rows, m.seed)
        return ctx


def build_decontaminator(spec) -> Any:
    """The benchmarks' n-gram indexes, read with the job's own readers (unreadable items are skipped)."""
    from curation.train_quality import iter_texts
    from filters.decontam import BenchmarkIndex, Decontaminator

    indexes = []
    for name, b in spec.benchmarks.items():
        ix = BenchmarkIndex(name, spec.ngram, spec.min_item_units)
        ix.add_items(t for t, _ in iter_texts([b.path], b.text_field))
        indexes.append(ix)
    return Decontaminator(indexes)


Stage = Callable[[pa.Table, StageContext], pa.Table]


def stage_plan(job: CurateJob) -> list[tuple[str, Stage]]:
    """The stages this job runs, in order (a stage left out of the spec does not run)."""
    plan: list[tuple[str, Stage]] = [("normalize", normalize)]
    st = job.stages
    if st.urls is not None:  # before extraction: a blocked page is not worth extracting
        plan.append(("urls", urls))
    if st.extract is not None:
        plan.append(("extract", extract))
    if st.domain is not None:  # before language ID: source code has no natural language to identify
        plan.append(("domain", domain))
    if st.langid is not None:
        plan.append(("langid", langid))
    if st.filters is not None and st.filters.enabled():
        plan.append(("filters", heuristic_filters))
    if st.quality is not None and (st.quality.classifiers or st.quality.perplexity is not None):
        plan.append(("quality", quality))
    if st.decontam is not None:
        plan.append(("decontam", decontam))
    if st.dedup is not None and (st.dedup.exact is not None or st.dedup.minhash is not None
                                 or st.dedup.url is not None):
        plan.append(("dedup_keys", dedup_keys))
    return plan
