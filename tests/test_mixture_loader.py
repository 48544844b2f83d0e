"""mixtures.loader on a synthetic shard set written per the mixture contract (SPEC section 4): Reuters
stories, some repeated, shuffled, in zstd Parquet shards of uneven sizes plus manifest.json."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mixtures.loader import ManifestError, MixtureLoader, ShardError, shard_order
from mixtures.tokenizer import TOKENIZER_NAME, count_tokens, eot_token, qwen_encoding, vocab_sha256
from tests.conftest import read_jsonl_gz, shared_file

SEED = 1234
SHARD_ROWS = [12, 9, 15, 1, 20, 13]  # uneven, one single-row shard: 70 rows
SCHEMA = pa.schema(
    [
        ("row_id", pa.string()),
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("domain", pa.string()),
        ("lang", pa.string()),
        ("bucket", pa.string()),
        ("n_tokens", pa.int64()),
        ("epoch", pa.int32()),
    ]
)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_shard_set(out: Path, rows: list[dict], sizes: list[int], seed: int = SEED) -> dict:
    (out / "shards").mkdir(parents=True)
    entries, at = [], 0
    for i, n in enumerate(sizes):
        part = rows[at : at + n]
        at += n
        rel = f"shards/shard-{i:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(part, schema=SCHEMA), out / rel, compression="zstd")
        entries.append(
            {
                "path": rel,
                "rows": n,
                "tokens": sum(r["n_tokens"] for r in part),
                "bytes": (out / rel).stat().st_size,
                "sha256": sha256_of(out / rel),
            }
        )
    assert at == len(rows)
    total = sum(r["n_tokens"] for r in rows)
    manifest = {
        "schema_version": 1,
        "mixture_id": "test-mixture",
        "seed": seed,
        "tokenizer": {"name": TOKENIZER_NAME, "vocab_sha256": vocab_sha256()},
        "target_tokens": total,
        "achieved_tokens": total,
        "buckets": [
            {"name": "reuters/en", "available_tokens": total, "selected_tokens": total, "weight": 1.0, "epochs": 2}
        ],
        "shards": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


@pytest.fixture(scope="module")
def mixture(tmp_path_factory) -> tuple[Path, list[dict]]:
    """(folder, rows in manifest-then-file order): 60 Reuters stories, the first 10 repeated once."""
    docs = read_jsonl_gz(shared_file("news_reuters21578.jsonl.gz"), limit=60, where=lambda r: r.get("text"))
    # A literal special-token string in web text stays ordinary text (counted and encoded as text).
    docs[3] = dict(docs[3], text=docs[3]["text"] + "\n<|endoftext|> is just text here.")
    counts = count_tokens([d["text"] for d in docs])
    rows = []
    for rep, subset in ((0, docs), (1, docs[:10])):
        for d, n in zip(subset, counts):
            rows.append(
                {
                    "row_id": f"{d['id']}@{rep}",
                    "id": d["id"],
                    "text": d["text"],
                    "source": "reuters",
                    "domain": "news",
                    "lang": "en",
                    "bucket": "reuters/en",
                    "n_tokens": int(n),
                    "epoch": rep,
                }
            )
    random.Random(SEED).shuffle(rows)
    out = tmp_path_factory.mktemp("mixture")
    write_shard_set(out, rows, SHARD_ROWS)
    return out, rows


def ids(loader: MixtureLoader, epoch: int = 0, **kw) -> list[str]:
    return [r["row_id"] for r in loader.documents(epoch, columns=["row_id"], **kw)]


def test_ranks_are_disjoint_and_cover_all_rows(mixture):
    out, rows = mixture
    world = 4
    per_rank = [ids(MixtureLoader(out, rank=r, world_size=world)) for r in range(world)]
    sets = [set(p) for p in per_rank]
    assert all(len(s) == len(p) for s, p in zip(sets, per_rank))  # no row twice within a rank
    for a in range(world):
        for b in range(a + 1, world):
            assert not sets[a] & sets[b]
    assert set().union(*sets) == {r["row_id"] for r in rows}
    counts = [len(p) for p in per_rank]
    assert counts == [MixtureLoader(out, rank=r, world_size=world).num_rows() for r in range(world)]
    assert sum(counts) == len(rows) and max(counts) - min(counts) <= 1
    assert counts == [18, 18, 17, 17]


def test_epoch0_is_manifest_order_and_ranks_stride_it(mixture):
    out, rows = mixture
    everything = ids(MixtureLoader(out))
    assert everything == [r["row_id"] for r in rows]  # shards in manifest order, rows in file order
    for world in (2, 3, 4, 7, 71):  # 71 ranks > 70 rows: the last rank gets nothing
        for r in range(world):
            assert ids(MixtureLoader(out, rank=r, world_size=world)) == everything[r::world]


def test_deterministic_across_runs(mixture):
    out, _ = mixture
    for epoch in (0, 1, 5):
        first = [ids(MixtureLoader(out, rank=r, world_size=3), epoch) for r in range(3)]
        again = [ids(MixtureLoader(out, rank=r, world_size=3), epoch) for r in range(3)]
        assert first == again
    full = list(MixtureLoader(out, rank=1, world_size=2).documents(2))
    assert full == list(MixtureLoader(out, rank=1, world_size=2).documents(2))
    assert set(full[0]) == set(SCHEMA.names)


def test_other_epochs_reorder_the_same_rows(mixture):
    out, rows = mixture
    loader = MixtureLoader(out)
    orders = {e: ids(loader, e) for e in range(4)}
    for e in range(1, 4):
        assert orders[e] != orders[0]
        assert sorted(orders[e]) == sorted(orders[0])
        # the order is shards permuted by (seed, epoch), rows within a shard in file order
        perm = shard_order(len(SHARD_ROWS), SEED, e)
        starts = [sum(SHARD_ROWS[:i]) for i in range(len(SHARD_ROWS))]
        expect = [rows[starts[i] + j]["row_id"] for i in perm for j in range(SHARD_ROWS[i])]
        assert orders[e] == expect
    assert len({tuple(o) for o in orders.values()}) == 4
    # the rank split of a later epoch strides that epoch's order
    world = 4
    per_rank = [ids(MixtureLoader(out, rank=r, world_size=world), 3) for r in range(world)]
    assert per_rank == [orders[3][r::world] for r in range(world)]


def test_token_ids_decode_to_text_plus_eot(mixture):
    out, _ = mixture
    enc, eot = qwen_encoding(), eot_token()
    loader = MixtureLoader(out, rank=1, world_size=2)
    docs = list(loader.documents(1))
    toks = list(loader.token_ids(1))
    assert len(toks) == len(docs) == loader.num_rows()
    for d, t in zip(docs, toks):
        assert t[-1] == eot
        assert len(t) - 1 == d["n_tokens"]
        assert enc.decode(t[:-1]) == d["text"]
    assert any("<|endoftext|>" in d["text"] for d in MixtureLoader(out).documents())
    bare = list(loader.token_ids(1, append_eot=False))
    assert bare == [t[:-1] for t in toks]


def test_start_resumes_mid_epoch(mixture):
    out, _ = mixture
    for world, rank in ((1, 0), (4, 2)):
        loader = MixtureLoader(out, rank=rank, world_size=world)
        full = ids(loader, 2)
        for start in (0, 1, 5, 9, 13, len(full) - 1, len(full), len(full) + 3):
            assert ids(loader, 2, start=start) == full[start:]
        assert list(loader.token_ids(2, start=3)) == list(loader.token_ids(2))[3:]


def test_small_batches_and_uris(mixture):
    out, rows = mixture
    expect = [r["row_id"] for r in rows][1::3]
    assert ids(MixtureLoader(out, rank=1, world_size=3, batch_rows=4)) == expect
    assert ids(MixtureLoader(out / "manifest.json", rank=1, world_size=3)) == expect
    assert ids(MixtureLoader(f"file://{out}", rank=1, world_size=3, verify=True)) == expect
    assert ids(MixtureLoader(str(out) + "/", rank=1, world_size=3)) == expect


def test_verify_catches_a_tampered_shard(mixture, tmp_path):
    src, _ = mixture
    out = tmp_path / "mix"
    out.mkdir()
    (out / "shards").mkdir()
    (out / "manifest.json").write_bytes((src / "manifest.json").read_bytes())
    for p in (src / "shards").iterdir():
        (out / "shards" / p.name).write_bytes(p.read_bytes())
    assert len(list(MixtureLoader(out, verify=True).documents())) == sum(SHARD_ROWS)
    # Same rows, one text changed: only the checksum can tell.
    victim = out / "shards" / "shard-00002.parquet"
    t = pq.read_table(victim)
    texts = t["text"].to_pylist()
    texts[0] = texts[0].upper()
    pq.write_table(
        t.set_column(t.column_names.index("text"), "text", pa.array(texts, pa.string())), victim, compression="zstd"
    )
    assert len(list(MixtureLoader(out).documents())) == sum(SHARD_ROWS)  # unverified reads it
    loader = MixtureLoader(out, verify=True)
    seen = []
    with pytest.raises(ShardError, match=r"shard-00002\.parquet.*(sha256|bytes)"):
        for d in loader.documents():
            seen.append(d["row_id"])
    assert len(seen) == sum(SHARD_ROWS[:2])  # nothing from the tampered shard was yielded
    with pytest.raises(ShardError, match="shard-00002"):
        list(loader.token_ids())
    # A row count that disagrees with the manifest fails with or without verify.
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"][0]["rows"] += 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    for verify in (False, True):
        with pytest.raises(ShardError, match=r"shard-00000\.parquet: 12 rows in the file, the manifest says 13"):
            list(MixtureLoader(out, verify=verify).documents())
    # A missing shard.
    manifest["shards"][0]["rows"] -= 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "shards" / "shard-00001.parquet").unlink()
    with pytest.raises(ShardError, match="shard-00001.parquet cannot be opened"):
        list(MixtureLoader(out).documents())


@pytest.mark.parametrize("rank,world_size", [(4, 4), (-1, 4), (0, 0), (0, -2), (1.0, 2), (True, 2), ("0", 1)])
def test_bad_rank_or_world_size(mixture, rank, world_size):
    out, _ = mixture
    with pytest.raises(ValueError, match="rank|world_size"):
        MixtureLoader(out, rank=rank, world_size=world_size)


def test_bad_epoch_or_start(mixture):
    out, _ = mixture
    loader = MixtureLoader(out)
    with pytest.raises(ValueError, match="epoch"):
        next(loader.documents(-1))
    with pytest.raises(ValueError, match="start"):
        next(loader.documents(0, start=-1))


def test_missing_or_bad_manifest(tmp_path, mixture):
    with pytest.raises(FileNotFoundError, match="no mixture manifest"):
        MixtureLoader(tmp_path)
    with pytest.raises(FileNotFoundError, match="no mixture manifest"):
        MixtureLoader(tmp_path / "nowhere" / "manifest.json")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        MixtureLoader(tmp_path)
    src, _ = mixture
    manifest = json.loads((src / "manifest.json").read_text())
    for change, match in (
        ({"schema_version": 2}, "schema_version 2"),
        ({"shards": []}, "non-empty"),
        ({"seed": "x"}, "seed"),
    ):
        (tmp_path / "manifest.json").write_text(json.dumps(dict(manifest, **change)))
        with pytest.raises(ManifestError, match=match):
            MixtureLoader(tmp_path)
    # A manifest counted with another vocabulary: documents are fine, token ids refuse.
    (tmp_path / "manifest.json").write_text(json.dumps(dict(manifest, tokenizer={"name": "x", "vocab_sha256": "0"})))
    with pytest.raises(ManifestError, match="vocabulary"):
        next(MixtureLoader(tmp_path).token_ids())
