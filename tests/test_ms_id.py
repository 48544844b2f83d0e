"""Standard Malay or Indonesian (filters/ms_id.py): five-sentence documents of Tatoeba sentences the decision's
parameters were not chosen on are labelled right >= 95% of the time each, where lid.176 alone gets most Malay
ones wrong; other labels are untouched; the word table is what its builder makes of wordfreq-format lists."""

from __future__ import annotations

import gzip
import hashlib
import random

import msgpack
import pytest

from filters.build_ms_id_table import build
from filters.langid import LanguageIdentifier
from tests.conftest import read_jsonl_gz, shared_file


def _held_out(text: str) -> bool:  # the half of the sentences MARKER_WEIGHT and THRESHOLD were not chosen on
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % 2 == 0


@pytest.fixture(scope="module")
def documents() -> dict[str, list[str]]:
    rows = read_jsonl_gz(shared_file("lid_tatoeba_laser.jsonl.gz"), where=lambda r: r["lang"] in ("ms", "id"))
    out = {}
    for lang in ("ms", "id"):
        sents = [r["text"] for r in rows if r["lang"] == lang and _held_out(r["text"])]
        random.Random(3).shuffle(sents)
        out[lang] = [" ".join(sents[i : i + 5]) for i in range(0, len(sents) - 4, 5)]
    return out


@pytest.mark.parametrize("lang", ["ms", "id"])
def test_held_out_malay_and_indonesian_documents(documents, lang):
    docs = documents[lang]
    assert len(docs) >= 80
    labels, scores = LanguageIdentifier().predict(docs)
    accuracy = sum(label == lang for label in labels) / len(docs)
    alone, _ = LanguageIdentifier(pairs=()).predict(docs)
    print(
        f"\n{lang}: {accuracy:.3f} with the pair decision, {sum(a == lang for a in alone) / len(docs):.3f} lid.176 alone"
    )
    assert accuracy >= 0.95
    assert all(0.0 < s <= 1.0 for s in scores)


def test_the_pair_decision_touches_only_ms_and_id():
    texts = ["The weather is nice today.", "Das Wetter ist heute schön.", "Saya tidak tahu kerana dia sahaja yang pergi.",
             "Saya tidak tahu karena hanya dia saja yang pergi.", "今天天气很好。"]  # fmt: skip
    with_pair, s1 = LanguageIdentifier().predict(texts)
    without, s0 = LanguageIdentifier(pairs=()).predict(texts)
    assert with_pair[:2] == without[:2] == ["en", "de"] and with_pair[4] == without[4] == "zh"
    assert with_pair[2:4] == ["ms", "id"]
    assert list(s1[[0, 1, 4]]) == list(s0[[0, 1, 4]])


def test_the_table_builder_reads_wordfreq_lists(tmp_path):
    def cb(buckets: list[list[str]]) -> bytes:  # wordfreq's format: a header, then words per 0.01 dB bucket
        return gzip.compress(msgpack.dumps([{"format": "cB", "version": 1}, *buckets]))

    (tmp_path / "small_ms.msgpack.gz").write_bytes(cb([["dan"], [], ["kerana"]]))
    (tmp_path / "small_id.msgpack.gz").write_bytes(cb([["dan"], ["karena"]]))
    rows = dict(line.split("\t") for line in gzip.decompress(build(tmp_path)).decode().splitlines()[1:])
    assert "dan" not in rows  # as frequent in both: says nothing
    assert float(rows["kerana"]) == 5.0 and float(rows["karena"]) == -5.0  # missing from one list: clipped
