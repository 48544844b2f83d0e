"""Token files byte by byte: the Megatron-LM indexed dataset layout and the raw numpy token files."""

from __future__ import annotations

import struct

import numpy as np

from curation.outputs import Layout
from mixtures.token_files import flatten, read_megatron, write_megatron, write_numpy


def test_megatron_files_follow_the_indexed_dataset_layout(tmp_path):
    ids, lengths = flatten([[1, 2], [70_000], []], eod=151_643)
    assert ids.tolist() == [1, 2, 151_643, 70_000, 151_643, 151_643] and lengths.tolist() == [3, 2, 1]
    layout = Layout(str(tmp_path))
    write_megatron(layout, str(tmp_path / "m" / "shard"), ids, lengths)
    assert np.fromfile(tmp_path / "m" / "shard.bin", "<i4").tolist() == ids.tolist()  # int32: ids above 65,535
    idx = (tmp_path / "m" / "shard.idx").read_bytes()
    want = (
        b"MMIDIDX\x00\x00"
        + struct.pack("<QBQQ", 1, 4, 3, 4)
        + struct.pack("<3i", 3, 2, 1)
        + struct.pack("<3q", 0, 12, 20)
        + struct.pack("<4q", 0, 1, 2, 3)
    )
    assert idx == want
    assert [d.tolist() for d in read_megatron(str(tmp_path / "m" / "shard"))] == [
        [1, 2, 151_643],
        [70_000, 151_643],
        [151_643],
    ]


def test_numpy_token_files_are_raw_uint32_with_an_index(tmp_path):
    import pyarrow.parquet as pq

    ids, lengths = flatten([[5, 6, 7], [8]], eod=0)
    layout = Layout(str(tmp_path))
    entries = write_numpy(layout, str(tmp_path / "t.npy"), ids, lengths, ["a@0", "b@1"])
    assert (tmp_path / "t.npy").stat().st_size == 4 * len(ids)  # no header: np.memmap reads it as is
    assert np.memmap(tmp_path / "t.npy", dtype=np.uint32, mode="r").tolist() == [5, 6, 7, 0, 8, 0]
    index = pq.read_table(tmp_path / "t.index.parquet").to_pylist()
    assert index == [{"row_id": "a@0", "start": 0, "end": 4}, {"row_id": "b@1", "start": 4, "end": 6}]
    assert [e["suffix"] for e in entries] == [".npy", ".index.parquet"]
