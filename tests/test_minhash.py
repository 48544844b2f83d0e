"""MinHash signatures (datasketch-compatible), band keys, the key shuffle and connected components."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from curation.dedup import shuffle
from curation.dedup.components import connected_components
from curation.dedup.distributed import cluster_local
from curation.dedup.minhash import MinHasher, exact_keys, shingle_hash32, to_datasketch
from filters import segmentation
from tests.conftest import read_jsonl_gz, shared_file


@pytest.fixture(scope="module")
def reuters_texts():
    return [r["text"] for r in read_jsonl_gz(shared_file("news_reuters21578.jsonl.gz"), limit=300)]


def _datasketch_signature(text: str, n: int = 5, num_perm: int = 112, seed: int = 1) -> np.ndarray:
    ws = segmentation.words(text)
    shingles = {" ".join(ws[i : i + n]) for i in range(max(1, len(ws) - n + 1))}
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash32)
    m.update_batch([s.encode() for s in shingles])
    return m.hashvalues


def test_signatures_equal_datasketch(reuters_texts):
    sigs = MinHasher().signatures(reuters_texts[:60])
    for text, sig in zip(reuters_texts[:60], sigs):
        assert np.array_equal(sig, _datasketch_signature(text))


def test_datasketch_lsh_finds_our_near_duplicates(reuters_texts):
    base = reuters_texts[0]
    edited = base.replace(" the ", " a ", 1)
    sigs = MinHasher(seed=3).signatures([base, edited, reuters_texts[1]])
    lsh = MinHashLSH(threshold=0.7, num_perm=112)
    lsh.insert("base", to_datasketch(sigs[0], seed=3))
    assert lsh.query(to_datasketch(sigs[1], seed=3)) == ["base"]
    assert lsh.query(to_datasketch(sigs[2], seed=3)) == []


def test_signature_estimates_jaccard(reuters_texts):
    a = segmentation.words(reuters_texts[5])
    b = a[: len(a) // 2] + ["zzz%d" % i for i in range(len(a) // 2)]
    mh = MinHasher(ngram=1, bands=32, rows=8)
    sa, sb = mh.signatures([" ".join(a), " ".join(b)])
    true = len(set(a) & set(b)) / len(set(a) | set(b))
    assert abs(float(np.mean(sa == sb)) - true) < 0.1


def test_band_keys_match_exactly_when_band_rows_match():
    mh = MinHasher(bands=4, rows=2)
    sig = np.arange(16, dtype=np.uint32).reshape(2, 8)
    sig[1, :2] = sig[0, :2]  # band 0 equal, the others differ
    keys = mh.band_keys(sig)
    assert keys[0, 0] == keys[1, 0]
    assert (keys[0, 1:] != keys[1, 1:]).all()
    same_rows_other_band = np.tile(sig[0, :2], 4).reshape(1, 8)  # equal rows in every band
    k = mh.band_keys(same_rows_other_band)[0]
    assert len(set(k.tolist())) == 4  # a band's index is part of its key


def test_word_fast_path_matches_tokenizer(reuters_texts):
    extra = ["Ünïcode wörds, digits 3.14 and don't-stop!", "我爱北京天安门 and English", "ภาษาไทย ไม่มีช่องว่าง"]
    for text in reuters_texts[:100] + extra:
        for lang in ("en", "zh", "th"):
            slow = [t.lower() for t in segmentation.tokenize(text, lang) if segmentation._IS_WORD.search(t)]
            assert segmentation.words(text, lang) == slow


def test_document_without_words_gets_empty_signature():
    sig = MinHasher().signatures(["... !!! ---", "real words here"])
    assert (sig[0] == 0xFFFFFFFF).all() and not (sig[1] == 0xFFFFFFFF).all()


def test_exact_keys_distinguish_texts():
    k = exact_keys(["a", "a", "b"])
    assert (k[0] == k[1]).all() and not (k[0] == k[2]).all()


def test_connected_components_chain_and_roots():
    u = np.array([5, 3, 9, 10, 7], dtype=np.int64)
    v = np.array([3, 1, 8, 9, 7], dtype=np.int64)  # 1-3-5 chain, 8-9-10 chain, a self loop
    nodes, roots = connected_components(u, v)
    assert dict(zip(nodes.tolist(), roots.tolist())) == {1: 1, 3: 1, 5: 1, 7: 7, 8: 8, 9: 8, 10: 8}


def test_components_of_a_long_path_converge():
    n = 5000
    perm = np.random.default_rng(0).permutation(n).astype(np.int64)
    nodes, roots = connected_components(perm[:-1], perm[1:])
    assert len(nodes) == n and (roots == perm.min()).all()


def _clusters(recs: np.ndarray, partitions: int) -> dict[int, tuple[int, int]]:
    edges = [shuffle.reduce_edges([p]) for p in shuffle.partition(recs, partitions)]
    u, v, kind = (np.concatenate([e[i] for e in edges]) for i in range(3))
    res = cluster_local(u, v, kind, partitions=partitions)
    return {int(d): (int(c), int(r)) for d, c, r in zip(res["doc"], res["cluster"], res["reason"])}


def test_shuffle_finds_copies_whatever_the_partitioning(reuters_texts):
    texts = reuters_texts[:200] + reuters_texts[:20] + [t + " extra words at the end" for t in reuters_texts[20:40]]
    docs = np.arange(len(texts), dtype=np.int64) * 7
    mh = MinHasher()
    recs = shuffle.keyed_records(docs, exact_keys(texts), mh.band_keys(mh.signatures(texts)))
    got = _clusters(recs, 1)
    for i in range(20):  # verbatim copies: exact duplicates, in the cluster of an earlier document
        cluster, reason = got[int(docs[200 + i])]
        assert reason == 1 and cluster <= docs[i] and got[int(docs[i])][0] == cluster
    near = [got.get(int(docs[220 + i])) for i in range(20)]  # lightly edited copies
    assert sum(1 for x in near if x is not None and x[1] == 2) >= 16
    for partitions in (3, 16):
        assert _clusters(recs, partitions) == got


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_star_rounds_give_the_components_of_one_machine(partitions):
    """Large-star / small-star over hash partitions labels every node as the one-machine algorithm does."""
    from curation.dedup import cluster
    from curation.exchange import LocalRunner

    rng = np.random.default_rng(partitions)
    n = 3000
    u = rng.integers(0, n, 2500).astype(np.int64) * 11 + (5 << 32)
    v = rng.integers(0, n, 2500).astype(np.int64) * 11 + (5 << 32)
    keep = u != v
    u, v = u[keep], v[keep]
    nodes, roots = connected_components(u, v)
    runner = LocalRunner()
    edges = {"u": u, "v": v, "kind": np.ones(len(u), np.int8), "sim": np.ones(len(u), np.float32)}
    pairs = [
        runner.submit(cluster.orient, (partitions, *[p]), num_returns=partitions)
        for p in cluster.split(edges, cluster.node_partition(u, partitions), partitions)
    ]
    for _ in range(cluster.MAX_ROUNDS):
        before = pairs
        for large in (True, False):
            step = [
                runner.submit(
                    cluster.star_step, (large, partitions, *[q[p] for q in pairs]), num_returns=partitions + 1
                )
                for p in range(partitions)
            ]
            pairs = [s[:partitions] for s in step]
        if [cluster._fingerprint(*cluster._unique_pairs(q)) for q in zip(*before)] == [
            cluster._fingerprint(*cluster._unique_pairs(q)) for q in zip(*pairs)
        ]:
            break
    got = cluster.concat(
        [cluster.labels(*[q[p] for q in pairs])[0] for p in range(partitions)],
        {"doc": np.zeros(0, np.int64), "comp": np.zeros(0, np.int64)},
    )
    order = np.argsort(got["doc"])
    assert np.array_equal(got["doc"][order], nodes) and np.array_equal(got["comp"][order], roots)
    # The whole steps 2-4 agree across partition counts too.
    assert (
        cluster_local(u, v, edges["kind"], partitions=partitions)["cluster"].tolist()
        == cluster_local(u, v, edges["kind"], partitions=1)["cluster"].tolist()
    )


def test_a_chain_removes_only_what_is_similar_to_its_keeper():
    """v2.0 ~ v2.4 ~ v2.8, but v2.8 is not similar to v2.0: v2.4 goes, v2.8 stays as a keeper of its own."""
    res = cluster_local([2, 3], [1, 2], [1, 1], sim=[0.8, 0.8])
    assert res["doc"].tolist() == [1, 2] and res["reason"].tolist() == [0, 2]
    assert res["sim"][1] == pytest.approx(0.8)
    # With a verified edge from v2.8 to v2.0 as well, both later versions go.
    res = cluster_local([2, 3, 3], [1, 2, 1], [1, 1, 1], sim=[0.8, 0.8, 0.75])
    assert res["reason"].tolist() == [0, 2, 2] and res["cluster"].tolist() == ["1", "1", "1"]
    assert res["sim"].tolist() == pytest.approx([np.nan, 0.8, 0.75], nan_ok=True)
