"""The mix job's selection as steps over pool parts picks exactly what `select` picks on the whole pool."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.exchange import LocalRunner, Steps
from curation.outputs import Layout
from mixtures import distributed as dist
from mixtures.select import plan, select, selected_epochs


def _pool(rng: np.random.Generator, parts: int, docs: int, buckets: list[str]) -> list[pa.Table]:
    out = []
    for f in range(parts):
        n = int(rng.integers(docs // 2, docs))
        sizes = np.where(rng.random(n) < 0.1, rng.integers(2_000, 20_000, n), rng.integers(1, 600, n))
        out.append(
            pa.table(
                {
                    "file": pa.array(np.full(n, f, np.int32)),
                    "row": pa.array(np.arange(n, dtype=np.int64)),
                    "id": pa.array([f"d{f}-{i}" for i in range(n)]),
                    "id_hash": pa.array(
                        rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * 2
                        + rng.integers(0, 2, n).astype(np.uint64)
                    ),
                    "bucket": pa.array(rng.choice(buckets, n, p=[0.6, 0.3, 0.08, 0.02]).tolist()),
                    "n_tokens": pa.array(sizes.astype(np.int64)),
                    "synthetic": pa.array(np.zeros(n, bool)),
                }
            )
        )
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selection_over_parts_equals_select_on_the_whole_pool(tmp_path, seed):
    rng = np.random.default_rng(seed)
    buckets = ["a", "b", "c", "d"]
    tables = _pool(rng, 5, 3000, buckets)
    # a bucket of three large documents, 1,402 tokens wanted: none fits, so the last step takes the smallest
    e = {
        "file": [5] * 3,
        "row": [0, 1, 2],
        "id": ["e0", "e1", "e2"],
        "id_hash": rng.integers(0, 2**63, 3, dtype=np.int64).astype(np.uint64),
        "bucket": ["e"] * 3,
        "n_tokens": [1800, 1617, 1700],
        "synthetic": [False] * 3,
    }
    tables.append(pa.table(e, schema=tables[0].schema))
    buckets.append("e")
    pool = pa.concat_tables(tables)
    have = {b: int(pool.filter(pa.compute.equal(pool["bucket"], b))["n_tokens"].to_numpy().sum()) for b in buckets}
    # a remainder inside one bucket, 2.3 epochs of another, a cap that bites, a bucket taken 1 token deep
    alloc = {"a": int(have["a"] * 0.37), "b": int(have["b"] * 2.3), "c": int(have["c"] * 3.7), "d": 1, "e": 1402}
    caps = {"a": 4.0, "b": 4.0, "c": 3.71, "d": 4.0, "e": 4.0}
    layout = Layout(str(tmp_path))
    paths = []
    for i, t in enumerate(tables):
        paths.append(str(tmp_path / "pool" / f"p{i}.parquet"))
        (tmp_path / "pool").mkdir(exist_ok=True)
        pq.write_table(t, paths[-1])
    plans = plan(alloc, have, caps)
    steps = Steps(LocalRunner(), layout, layout.path("x"))
    decisions, picks = dist.select_remainders(steps, layout, paths, plans, seed=seed + 10)
    got = np.concatenate(
        [selected_epochs(t, i, decisions, picks.get(i, np.zeros(0, np.int64)), seed + 10) for i, t in enumerate(tables)]
    )
    ref = select(pool, alloc, seed + 10, caps)
    want = np.bincount(ref["pool_index"].to_numpy(), minlength=len(pool))
    assert np.array_equal(got, want)
    assert sum(len(v) for v in picks.values()), "first fit never ran: the test would not cover it"
    assert got[-3:].tolist() == [0, 1, 0]  # the smallest large document, 215 over rather than 1,402 under
    n = pool["n_tokens"].to_numpy()
    for b in buckets[:4]:  # each bucket within one document of its allocation, from below or just over
        m = pool["bucket"].to_numpy(zero_copy_only=False) == b
        taken = int((got[m] * n[m]).sum())
        assert taken <= caps[b] * have[b]
        assert abs(taken - alloc[b]) <= n[m].max()
    assert not list((tmp_path / "x").rglob("*.arrow"))  # the steps dropped their exchange files


def test_shard_row_groups_are_cut_by_bytes_with_a_page_index(tmp_path, monkeypatch):
    from curation import outputs

    monkeypatch.setattr(outputs, "_ROW_GROUP_BYTES", 1000)
    t = pa.table({"text": ["x" * 300] * 10, "n": list(range(10))})
    outputs.write_parquet(Layout(str(tmp_path)), str(tmp_path / "s.parquet"), t)
    meta = pq.ParquetFile(tmp_path / "s.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        4,
        4,
        2,
    ]  # the row that fills one ends it
    assert meta.row_group(0).column(0).has_offset_index
    assert pq.read_table(tmp_path / "s.parquet").equals(t)
    assert not list(tmp_path.glob(".inprogress-*")) and not list(tmp_path.glob("_inprogress-*"))
