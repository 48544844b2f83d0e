"""Dedup keys per batch: the exact-text hash, the LSH band keys and signature, the URL hash. The clustering
over the whole corpus is a distributed step after the batches (curation/dedup/distributed.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from curation.specbase import Strict, null_means_defaults
from curation.stages.base import Resources, Stage, alive_mask, set_column, values


class ExactDedupSpec(Strict):
    """Exact dedup: one document per text (after normalization), by a 128-bit hash; `exact: {}` turns it on."""


class MinHashSpec(Strict):
    """MinHash near-duplicate dedup: LSH bands find candidates, their signatures verify them, connected
    components are clusters, and one document per cluster is kept."""

    ngram: int = Field(5, ge=1, le=32, description="shingle length in words (characters for unspaced scripts)")
    bands: int = Field(14, ge=1, description="LSH bands (bands x rows permutations)")
    rows: int = Field(8, ge=1, description="permutations per band; with bands sets the similarity curve")
    seed: int = Field(1, description="seed of the permutations (a snapshot to dedup against needs the same)")
    threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="a candidate pair is a duplicate only if the "
        "share of equal minhash values of the two signatures reaches this; default "
        "the threshold the bands imply, (1/bands)^(1/rows)",
    )

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    @property
    def verify_threshold(self) -> float:
        return self.threshold if self.threshold is not None else (1 / self.bands) ** (1 / self.rows)


class UrlDedupSpec(Strict):
    """Per-URL exact dedup for inputs with a `url` column (WARC): one document per normalized URL."""


class DedupSpec(Strict):
    exact: ExactDedupSpec | None = None
    minhash: MinHashSpec | None = None
    url: UrlDedupSpec | None = None
    partitions: int | None = Field(
        None,
        ge=1,
        description="shuffle (and clustering) partitions; default one per "
        "2M keys (about 50 MB), so a task's share stays the same as the corpus grows",
    )
    file_groups: int | None = Field(
        None,
        ge=1,
        description="groups of input files for the per-file dedup tasks "
        "(keys, signature checks, decisions); default one per 100,000 documents",
    )
    against: list[str] = Field(
        default_factory=list,
        description="earlier corpora to dedup against: curate outputs (their index/) or index folders "
        "(`curate index merge`); a document matching one of theirs is dropped as *_duplicate_of_earlier, "
        "naming it in dup_of and dup_of_corpus. Their key parameters must equal this job's",
    )
    write_index: bool = Field(
        True,
        description="write OUT/index/: the keys of the kept documents, for later jobs' `against` "
        "(650 to 770 bytes a document on storage with MinHash: its keys and its signature)",
    )
    corpus: str | None = Field(
        None, description="the name later jobs report in dup_of_corpus for this job's documents; default the job's name"
    )

    @model_validator(mode="before")
    @classmethod
    def _enable_null(cls, data: Any) -> Any:
        return null_means_defaults(data, ("exact", "minhash", "url"))


# Reasons the distributed dedup step writes, and the funnel row each counts against.
DEDUP_FUNNEL = {
    "exact_duplicate": "exact_dedup",
    "minhash_duplicate": "minhash_dedup",
    "url_duplicate": "url_dedup",
    "exact_duplicate_of_earlier": "earlier_dedup",
    "minhash_duplicate_of_earlier": "earlier_dedup",
    "url_duplicate_of_earlier": "earlier_dedup",
}
AGAINST_COLUMNS = ["dup_of", "dup_of_corpus"]


def _masked(arr: pa.Array, alive: np.ndarray, n: int) -> pa.Array:
    valid = np.zeros(n, dtype=bool)
    valid[alive] = True
    return pc.if_else(pa.array(valid), arr, pa.nulls(n, arr.type))


class Dedup(Stage):
    """The keys of every surviving row (null for the others): `_exact`, `_bands` and `_sig`, `_url` (rows with
    a URL). Always last: it keys the documents every other stage kept."""

    name = "dedup"
    spec_model = DedupSpec
    resources = Resources(pool="quality")
    drop_reasons = tuple(DEDUP_FUNNEL)
    description = "exact, MinHash (verified) and URL dedup across the corpus"

    @classmethod
    def active(cls, spec: Any) -> bool:
        return spec is not None and (spec.exact is not None or spec.minhash is not None or spec.url is not None)

    def funnel(self) -> list[str]:
        return [
            row
            for key, row in (("exact", "exact_dedup"), ("minhash", "minhash_dedup"), ("url", "url_dedup"))
            if getattr(self.spec, key) is not None
        ] + (["earlier_dedup"] if self.spec.against else [])

    def reads(self) -> list[tuple[str, str]]:
        return [(f"against[{i}]", p) for i, p in enumerate(self.spec.against)]

    def score_columns(self) -> list[str]:
        return list(AGAINST_COLUMNS) if self.spec.against else []

    def setup(self) -> None:
        self.minhasher = None
        if self.spec.minhash is not None:
            from curation.dedup.minhash import MinHasher

            m = self.spec.minhash
            self.minhasher = MinHasher(m.ngram, m.bands, m.rows, m.seed)

    def process(self, table: pa.Table) -> pa.Table:
        dedup = self.spec
        alive = np.flatnonzero(alive_mask(table))
        texts = table["text"].to_pylist()
        n = len(table)
        if dedup.exact is not None:
            from curation.dedup.minhash import exact_keys

            ek = np.zeros((n, 2), dtype=np.uint64)
            if len(alive):
                ek[alive] = exact_keys([texts[i] for i in alive])
            arr = pa.FixedSizeListArray.from_arrays(pa.array(ek.reshape(-1)), 2)
            table = set_column(table, "_exact", _masked(arr, alive, n), pa.list_(pa.uint64(), 2))
        if dedup.minhash is not None:
            mh = self.minhasher
            assert mh is not None  # setup() builds it when the spec has minhash
            b = mh.bands
            bk = np.zeros((n, b), dtype=np.uint64)
            if len(alive):
                langs = values(table, "lang", None)
                sig = mh.signatures([texts[i] for i in alive], [langs[i] for i in alive])
                bk[alive] = mh.band_keys(sig)
            arr = pa.FixedSizeListArray.from_arrays(pa.array(bk.reshape(-1)), b)
            table = set_column(table, "_bands", _masked(arr, alive, n), pa.list_(pa.uint64(), b))
            # The whole signature too: dedup verifies each candidate pair on it (the share of equal values).
            k = mh.num_perm
            full = np.zeros((n, k), dtype=np.uint32)
            if len(alive):
                full[alive] = sig
            arr = pa.FixedSizeListArray.from_arrays(pa.array(full.reshape(-1)), k)
            table = set_column(table, "_sig", _masked(arr, alive, n), pa.list_(pa.uint32(), k))
        if dedup.url is not None and "url" in table.column_names:
            from curation.dedup.minhash import exact_keys
            from filters.urls import normalize_url

            urls_ = table["url"].to_pylist()
            with_url = np.array([i for i in alive if urls_[i]], dtype=np.int64)
            uk = np.zeros((n, 2), dtype=np.uint64)
            if len(with_url):
                uk[with_url] = exact_keys([normalize_url(urls_[i]) for i in with_url])
            arr = pa.FixedSizeListArray.from_arrays(pa.array(uk.reshape(-1)), 2)
            table = set_column(table, "_url", _masked(arr, with_url, n), pa.list_(pa.uint64(), 2))
        return table
