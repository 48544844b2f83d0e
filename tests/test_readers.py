"""Input discovery and the streaming readers.

Every record written to an input file must come out of `read_file` exactly once: as a document, or
as a quarantine row carrying `error`, `position` (and raw bytes where there are any). Each test
checks that documents + quarantined rows equal the records it wrote.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from curation.io.formats import ReadSummary, read_file
from curation.io.readers import RAW_QUARANTINE_LIMIT, RAW_SCHEMA, ReadLimits, stable_id
from curation.io.sources import InputError, discover
from curation.spec import parse_spec

MB = 1 << 20


# --- helpers -------------------------------------------------------------------------------------


def make_job(tmp_path: Path, *inputs: dict):
    full = [{"source": "src", "format": "jsonl", **inp} for inp in inputs]
    return parse_spec({"output": str(tmp_path / "out"), "inputs": full, "execution": {"engine": "local"}})


def input_file(tmp_path: Path, path: Path | str, fmt: str = "jsonl", **kw):
    """The one InputFile discovery finds for `path` (so readers see real discovered URIs)."""
    files = discover(make_job(tmp_path, {"path": str(path), "format": fmt, **kw}))
    assert len(files) == 1, files
    return files[0]


class Read:
    """Everything read_file produced for one file."""

    def __init__(self, f, limits: ReadLimits | None = None):
        self.summary = ReadSummary()
        self.batches = list(read_file(f, limits or ReadLimits(), self.summary))
        for b in self.batches:
            assert b.schema == RAW_SCHEMA
            assert len(b) > 0  # no empty batches
        self.rows = [r for b in self.batches for r in b.to_pylist()]
        self.docs = [r for r in self.rows if r["error"] is None]
        self.quarantined = [r for r in self.rows if r["error"] is not None]

    def assert_accounted(self, records_written: int) -> None:
        assert len(self.docs) + len(self.quarantined) == records_written
        assert len(self.rows) == records_written
        doc_numbers = [r["_doc"] for r in self.rows]
        assert len(set(doc_numbers)) == len(doc_numbers), "document numbers must be unique"
        for r in self.docs:
            assert isinstance(r["text"], str) and r["id"]
        for r in self.quarantined:
            assert r["error"] and r["text"] is None and r["position"] is not None

    @property
    def texts(self) -> list[str]:
        return [r["text"] for r in self.docs]

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]


def records(n: int, prefix: str = "doc") -> list[dict]:
    return [
        {
            "id": f"{prefix}-{i}",
            "text": f"Document number {i}. " + "Some words in a sentence. " * (i % 7 + 1),
            "meta": {"i": i},
        }
        for i in range(n)
    ]


def jsonl_bytes(recs: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs).encode("utf-8")


def write_jsonl(path: Path, recs: list[dict]) -> Path:
    path.write_bytes(jsonl_bytes(recs))
    return path


# --- JSONL ---------------------------------------------------------------------------------------


def test_jsonl_plain(tmp_path):
    recs = records(25)
    recs[3]["text"] = "Ünïcödé — 中文 — emoji 🎉"
    f = input_file(tmp_path, write_jsonl(tmp_path / "a.jsonl", recs))
    r = Read(f)
    r.assert_accounted(25)
    assert r.quarantined == []
    assert r.ids == [x["id"] for x in recs]
    assert r.texts == [x["text"] for x in recs]
    assert [x["position"] for x in r.rows] == list(range(1, 26))  # 1-based line numbers
    assert {x["source"] for x in r.rows} == {"src"} and {x["domain"] for x in r.rows} == {"web"}


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_jsonl_compressed_matches_plain(tmp_path, suffix):
    recs = records(3000)
    data = jsonl_bytes(recs)
    packed = gzip.compress(data) if suffix.endswith(".gz") else zstandard.ZstdCompressor().compress(data)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / f"part{suffix}").write_bytes(packed)
    (tmp_path / "p").mkdir()
    write_jsonl(tmp_path / "p" / "part.jsonl", recs)
    comp = Read(input_file(tmp_path, tmp_path / "c" / f"part{suffix}"))
    plain = Read(input_file(tmp_path, tmp_path / "p" / "part.jsonl"))
    comp.assert_accounted(3000)
    assert comp.quarantined == []
    assert comp.ids == plain.ids == [x["id"] for x in recs]
    assert comp.texts == plain.texts


def test_jsonl_concatenated_gzip_members(tmp_path):
    recs = records(30)
    path = tmp_path / "multi.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl_bytes(recs[:10])) + gzip.compress(jsonl_bytes(recs[10:])))
    r = Read(input_file(tmp_path, path))
    r.assert_accounted(30)
    assert r.ids == [x["id"] for x in recs]


def test_jsonl_ids_stable_and_generated_when_missing(tmp_path):
    recs = records(10)
    for x in recs[::2]:
        del x["id"]
    recs[1]["id"] = 12345  # non-string ids are kept, as strings
    f = input_file(tmp_path, write_jsonl(tmp_path / "noid.jsonl", recs))
    first, second = Read(f), Read(f)
    first.assert_accounted(10)
    assert first.ids == second.ids
    assert [x["_doc"] for x in first.rows] == [x["_doc"] for x in second.rows]
    assert first.ids[1] == "12345"
    assert first.ids[0] == stable_id("src", f.uri, 1)
    assert len(set(first.ids)) == 10


def test_custom_text_and_id_fields(tmp_path):
    recs = [{"uid": f"u{i}", "content": f"text {i}"} for i in range(5)]
    f = input_file(tmp_path, write_jsonl(tmp_path / "c.jsonl", recs), text_field="content", id_field="uid")
    r = Read(f)
    r.assert_accounted(5)
    assert r.ids == [f"u{i}" for i in range(5)] and r.texts == [f"text {i}" for i in range(5)]


def test_batches_cut_at_batch_size(tmp_path):
    f = input_file(tmp_path, write_jsonl(tmp_path / "b.jsonl", records(2500)))
    r = Read(f, ReadLimits(batch_size=1000))
    r.assert_accounted(2500)
    assert [len(b) for b in r.batches] == [1000, 1000, 500]
    again = Read(f, ReadLimits(batch_size=1000))
    assert [b["_doc"].to_pylist() for b in r.batches] == [b["_doc"].to_pylist() for b in again.batches]


def test_batches_cut_at_batch_bytes(tmp_path):
    recs = [{"id": str(i), "text": "x" * 1000} for i in range(23)]
    f = input_file(tmp_path, write_jsonl(tmp_path / "b.jsonl", recs))
    r = Read(f, ReadLimits(batch_size=1000, batch_bytes=5000))
    r.assert_accounted(23)
    assert [len(b) for b in r.batches] == [5, 5, 5, 5, 3]


def test_blank_lines_are_not_records(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_bytes(b'{"id": "a", "text": "one"}\n\n   \n{"id": "b", "text": "two"}\n\n')
    r = Read(input_file(tmp_path, path))
    r.assert_accounted(2)
    assert r.summary.blank_lines == 3
    assert [x["position"] for x in r.rows] == [1, 4]


def test_crlf_and_missing_final_newline(tmp_path):
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b'{"id": "a", "text": "one"}\r\n{"id": "b", "text": "two"}')
    r = Read(input_file(tmp_path, path))
    r.assert_accounted(2)
    assert r.quarantined == [] and r.texts == ["one", "two"]


# --- quarantine ----------------------------------------------------------------------------------

BAD_LINES = [
    # (line bytes, expected id, expected error fragment)
    (b'{"id": "broken", "text": "no end', None, "broken JSON"),
    (b'{"id": "utf8", "text": "bad \xff\xfe bytes"}', None, "invalid UTF-8"),
    (b'{"id": "notext", "body": "text is elsewhere"}', "notext", "missing text field 'text'"),
    (b'{"id": "num", "text": 42}', "num", "is int, not a string"),
    (b'{"id": "nul", "text": null}', "nul", "not a string"),
    (b'{"id": "lst", "text": ["a", "b"]}', "lst", "is list, not a string"),
    (b'["an", "array", "line"]', None, "expected a JSON object, got list"),
    (b'"just a string"', None, "expected a JSON object, got str"),
    (b'{"id": "surrogate", "text": "lone \\ud800 surrogate"}', "surrogate", "lone surrogate"),
]


def test_quarantine_bad_jsonl_records(tmp_path):
    good = [json.dumps(x).encode() for x in records(6)]
    lines = []
    expected = {}  # line number -> (id, error fragment, raw)
    for i, (bad, id_, frag) in enumerate(BAD_LINES):
        lines.append(good[i % len(good)] if i < len(good) else good[0].replace(b"doc-0", f"g{i}".encode()))
        lines.append(bad)
        expected[len(lines)] = (id_, frag, bad)
    lines.append(good[5])
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    f = input_file(tmp_path, path)
    r = Read(f)
    r.assert_accounted(len(lines))
    assert len(r.quarantined) == len(BAD_LINES)
    assert len(r.docs) == len(lines) - len(BAD_LINES)
    by_pos = {x["position"]: x for x in r.quarantined}
    assert set(by_pos) == set(expected)
    for pos, (id_, frag, bad) in expected.items():
        row = by_pos[pos]
        assert frag in row["error"], (pos, row["error"])
        if id_ is not None:
            assert row["id"] == id_
        else:
            assert row["id"] == stable_id("src", f.uri, pos)
        if frag == "lone surrogate":
            assert row["raw"] and b"lone" in row["raw"]
        else:
            assert row["raw"] == bad  # the raw line is kept for inspection
    # the good records around the bad ones are all there
    assert all(x["text"].startswith("Document number") for x in r.docs)


def test_lone_surrogate_in_its_own_batch_does_not_poison_neighbours(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"id": "a", "text": "fine"}\n{"id": "b", "text": "x\\udc00y"}\n{"id": "c", "text": "ok"}\n')
    r = Read(input_file(tmp_path, path), ReadLimits(batch_size=2))
    r.assert_accounted(3)
    assert [x["id"] for x in r.docs] == ["a", "c"]
    assert [x["id"] for x in r.quarantined] == ["b"]


def test_record_over_small_max_doc_bytes(tmp_path):
    recs = [{"id": "small", "text": "short"}, {"id": "big", "text": "y" * 500}, {"id": "small2", "text": "s"}]
    f = input_file(tmp_path, write_jsonl(tmp_path / "m.jsonl", recs))
    r = Read(f, ReadLimits(max_doc_bytes=200))
    r.assert_accounted(3)
    assert [x["id"] for x in r.docs] == ["small", "small2"]
    (q,) = r.quarantined
    assert q["position"] == 2 and "over max_doc_bytes" in q["error"] and "200" in q["error"]
    assert q["raw"].startswith(b'{"id": "big"')


def test_record_over_small_max_doc_bytes_parquet(tmp_path):
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["short", "é" * 150]}), path)  # 300 bytes, 150 chars
    r = Read(input_file(tmp_path, path, "parquet"), ReadLimits(max_doc_bytes=200))
    r.assert_accounted(2)
    assert [x["id"] for x in r.docs] == ["a"]
    assert r.quarantined[0]["id"] == "b" and "over max_doc_bytes" in r.quarantined[0]["error"]


def test_real_50mb_document_over_default_limit(tmp_path):
    path = tmp_path / "huge.jsonl"
    chunk = "All work and no play makes Jack a dull boy. " * 1000  # ~44 KB
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"id": "before", "text": "small document"}\n')
        fh.write('{"id": "huge", "text": "')
        written = 0
        while written < 50 * MB:
            fh.write(chunk)
            written += len(chunk)
        fh.write('"}\n{"id": "after", "text": "another small one"}\n')
    limits = ReadLimits()
    assert limits.max_doc_bytes < 50 * MB
    r = Read(input_file(tmp_path, path), limits)
    r.assert_accounted(3)
    assert [x["id"] for x in r.docs] == ["before", "after"]
    (q,) = r.quarantined
    assert q["position"] == 2 and "over max_doc_bytes" in q["error"]
    assert len(q["raw"]) == RAW_QUARANTINE_LIMIT  # raw bytes are capped; the position locates the rest


def test_truncated_gzip_keeps_records_before_the_cut(tmp_path):
    recs = records(4000)
    data = gzip.compress(jsonl_bytes(recs))
    cut = data[: len(data) * 2 // 3]
    path = tmp_path / "trunc.jsonl.gz"
    path.write_bytes(cut)
    # what any gzip decoder can recover from the cut file: its complete lines are the records before the cut
    recoverable = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut)
    complete = recoverable.count(b"\n")
    assert 0 < complete < len(recs)
    r = Read(input_file(tmp_path, path))
    r.assert_accounted(complete + 1)
    assert r.ids[:complete] == [x["id"] for x in recs[:complete]]
    assert r.texts == [x["text"] for x in recs[:complete]]
    (q,) = r.quarantined
    assert q is r.rows[-1]
    assert q["position"] == -1 and "file unreadable" in q["error"]


def test_not_gzip_at_all(tmp_path):
    path = tmp_path / "fake.jsonl.gz"
    write_jsonl(path, records(3))
    r = Read(input_file(tmp_path, path))
    r.assert_accounted(1)
    assert r.quarantined[0]["position"] == -1 and "file unreadable" in r.quarantined[0]["error"]


def test_truncated_zstd_ends_with_quarantine_row(tmp_path):
    data = zstandard.ZstdCompressor().compress(jsonl_bytes(records(4000)))
    path = tmp_path / "trunc.jsonl.zst"
    path.write_bytes(data[: len(data) // 2])
    r = Read(input_file(tmp_path, path))
    r.assert_accounted(len(r.docs) + 1)
    assert r.rows[-1]["position"] == -1 and "file unreadable" in r.rows[-1]["error"]
    assert len(r.quarantined) == 1


@pytest.mark.parametrize(
    "name,content", [("empty.jsonl", b""), ("empty.jsonl.gz", gzip.compress(b"")), ("blank.jsonl", b"\n\n  \n")]
)
def test_empty_jsonl_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    r = Read(input_file(tmp_path, path))
    r.assert_accounted(0)
    assert r.batches == []


def test_empty_parquet_file(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}), path)
    r = Read(input_file(tmp_path, path, "parquet"))
    r.assert_accounted(0)


# --- Parquet -------------------------------------------------------------------------------------


def test_parquet_text_and_id(tmp_path):
    path = tmp_path / "p.parquet"
    recs = records(2500)
    pq.write_table(
        pa.table({"id": [x["id"] for x in recs], "text": [x["text"] for x in recs], "extra": list(range(2500))}),
        path,
        row_group_size=700,
    )
    r = Read(input_file(tmp_path, path, "parquet"), ReadLimits(batch_size=1000))
    r.assert_accounted(2500)
    assert r.ids == [x["id"] for x in recs] and r.texts == [x["text"] for x in recs]
    assert [x["position"] for x in r.rows] == list(range(2500))  # 0-based rows
    assert [len(b) for b in r.batches] == [1000, 1000, 500]


def test_parquet_large_string_and_int_ids(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(
        pa.table({"id": pa.array([7, 8, 9], pa.int64()), "text": pa.array(["a", "b", "c"], pa.large_string())}), path
    )
    r = Read(input_file(tmp_path, path, "parquet"))
    r.assert_accounted(3)
    assert r.ids == ["7", "8", "9"] and r.texts == ["a", "b", "c"]


def test_parquet_without_id_column_gets_stable_ids(tmp_path):
    path = tmp_path / "noid.parquet"
    pq.write_table(pa.table({"text": [f"text {i}" for i in range(50)]}), path)
    f = input_file(tmp_path, path, "parquet")
    first, second = Read(f), Read(f)
    first.assert_accounted(50)
    assert first.ids == second.ids
    assert len(set(first.ids)) == 50
    assert first.ids[0] == stable_id("src", f.uri, 0) and first.ids[49] == stable_id("src", f.uri, 49)
    # a fresh discovery of the same file gives the same ids (nothing depends on the process)
    assert Read(input_file(tmp_path, path, "parquet")).ids == first.ids


def test_parquet_null_text_quarantined(tmp_path):
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": ["x", None, "z"]}), path)
    r = Read(input_file(tmp_path, path, "parquet"))
    r.assert_accounted(3)
    (q,) = r.quarantined
    assert q["id"] == "b" and q["position"] == 1 and "null" in q["error"]


@pytest.mark.parametrize(
    "table,fragment",
    [
        (pa.table({"id": ["a", "b", "c", "d"], "body": ["w", "x", "y", "z"]}), "no column 'text'"),
        (pa.table({"id": ["a", "b", "c", "d"], "text": [1, 2, 3, 4]}), "not a string"),
    ],
)
def test_parquet_wrong_schema_quarantines_every_row(tmp_path, table, fragment):
    path = tmp_path / "wrong.parquet"
    pq.write_table(table, path, row_group_size=3)
    num_rows = pq.ParquetFile(path).metadata.num_rows
    r = Read(input_file(tmp_path, path, "parquet"), ReadLimits(batch_size=3))
    r.assert_accounted(num_rows)
    assert r.docs == [] and len(r.quarantined) == num_rows == 4
    assert [x["position"] for x in r.quarantined] == [0, 1, 2, 3]
    assert all("wrong schema" in x["error"] and fragment in x["error"] for x in r.quarantined)
    assert [x["id"] for x in r.quarantined] == ["a", "b", "c", "d"]  # ids still read when there is an id column


def test_parquet_wrong_schema_without_id_column(tmp_path):
    path = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"body": [f"x{i}" for i in range(2500)]}), path, row_group_size=1000)
    f = input_file(tmp_path, path, "parquet")
    r = Read(f, ReadLimits(batch_size=1000))
    r.assert_accounted(2500)
    assert [len(b) for b in r.batches] == [1000, 1000, 500]
    assert r.quarantined[7]["id"] == stable_id("src", f.uri, 7)


def test_not_a_parquet_file(tmp_path):
    path = tmp_path / "junk.parquet"
    path.write_bytes(b"this is not parquet at all" * 10)
    r = Read(input_file(tmp_path, path, "parquet"))
    r.assert_accounted(1)
    assert r.quarantined[0]["position"] == -1 and "file unreadable" in r.quarantined[0]["error"]


# --- text folders --------------------------------------------------------------------------------


def test_text_folder_one_document_per_file(tmp_path):
    root = tmp_path / "texts"
    (root / "sub" / "deeper").mkdir(parents=True)
    contents = {
        "b.txt": "second file",
        "a.md": "first file\nwith two lines\n",
        "sub/c.txt": "nested",
        "sub/deeper/d": "no suffix at all",
        "sub/bad.txt": b"bad \xff utf8",
    }
    for rel, content in contents.items():
        p = root / rel
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    (root / ".hidden").write_text("ignored")
    (root / "_SUCCESS").write_text("")
    files = discover(make_job(tmp_path, {"path": str(root), "format": "text"}))
    assert [f.rel for f in files] == sorted(contents)
    rows = []
    for f in files:
        r = Read(f)
        r.assert_accounted(1)
        rows += r.rows
    by_id = {x["id"]: x for x in rows}
    assert set(by_id) == set(contents)  # id = path relative to the folder
    assert by_id["a.md"]["text"] == "first file\nwith two lines\n"
    assert by_id["sub/deeper/d"]["text"] == "no suffix at all"
    bad = by_id["sub/bad.txt"]
    assert bad["text"] is None and "invalid UTF-8" in bad["error"] and bad["raw"] == b"bad \xff utf8"
    # stable across runs
    again = [x["id"] for f in discover(make_job(tmp_path, {"path": str(root), "format": "text"})) for x in Read(f).rows]
    assert again == [x["id"] for x in rows]


def test_text_file_over_max_doc_bytes(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "big.txt").write_text("z" * 300)
    r = Read(input_file(tmp_path, root / "big.txt", "text"), ReadLimits(max_doc_bytes=100))
    r.assert_accounted(1)
    assert "over max_doc_bytes" in r.quarantined[0]["error"] and r.quarantined[0]["id"] == "big.txt"


# --- discovery -----------------------------------------------------------------------------------


def test_nonexistent_path_fails_with_the_path(tmp_path):
    missing = tmp_path / "no" / "such" / "file.jsonl"
    with pytest.raises(InputError) as exc:
        discover(make_job(tmp_path, {"path": str(missing)}))
    assert str(missing) in str(exc.value) and "does not exist" in str(exc.value)


def test_glob_under_missing_folder_fails(tmp_path):
    pattern = tmp_path / "nowhere" / "*.jsonl"
    with pytest.raises(InputError, match="does not exist") as exc:
        discover(make_job(tmp_path, {"path": str(pattern)}))
    assert str(pattern) in str(exc.value)


def test_glob_without_match_fails(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", records(1))
    pattern = tmp_path / "*.parquet"
    with pytest.raises(InputError) as exc:
        discover(make_job(tmp_path, {"path": str(pattern), "format": "parquet"}))
    assert str(pattern) in str(exc.value) and "no parquet files found" in str(exc.value)


def test_empty_directory_fails(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no jsonl files found"):
        discover(make_job(tmp_path, {"path": str(tmp_path / "empty")}))


def test_glob_matches_sorted_and_numbered(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    for name in ["c.jsonl", "a.jsonl", "b.jsonl", "b.txt"]:
        write_jsonl(d / name, records(1))
    files = discover(make_job(tmp_path, {"path": str(d / "*.jsonl")}))
    assert [Path(f.path).name for f in files] == ["a.jsonl", "b.jsonl", "c.jsonl"]
    assert [f.ordinal for f in files] == [0, 1, 2]


def test_directory_input_picks_files_by_format_suffix(tmp_path):
    d = tmp_path / "mixed"
    (d / "nested").mkdir(parents=True)
    for name in ["a.jsonl", "b.jsonl.gz", "c.json", "nested/d.jsonl.zst", "e.ndjson"]:
        (d / name).write_bytes(b"")
    for name in ["f.parquet", "nested/g.pq"]:
        pq.write_table(pa.table({"text": ["x"]}), d / name)
    for name in ["readme.txt", ".hidden.jsonl", "_tmp.jsonl", "nested/notes.csv"]:
        (d / name).write_bytes(b"x")
    jsonl = discover(make_job(tmp_path, {"path": str(d)}))
    assert [f.rel for f in jsonl] == ["a.jsonl", "b.jsonl.gz", "c.json", "e.ndjson", "nested/d.jsonl.zst"]
    parquet = discover(make_job(tmp_path, {"path": str(d), "format": "parquet"}))
    assert [f.rel for f in parquet] == ["f.parquet", "nested/g.pq"]


def test_inputs_numbered_across_entries_and_not_read_twice(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    for name in ["a.jsonl", "b.jsonl"]:
        write_jsonl(d / name, records(1))
    files = discover(
        make_job(
            tmp_path,
            {"path": str(d / "b.jsonl"), "source": "one"},
            {"path": str(d / "*.jsonl"), "source": "two", "domain": "news"},
        )
    )
    assert [(Path(f.path).name, f.ordinal, f.input_index, f.source) for f in files] == [
        ("b.jsonl", 0, 0, "one"),
        ("a.jsonl", 1, 1, "two"),
    ]
    assert files[1].domain == "news"


def test_relative_input_path(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "rel.jsonl", records(2))
    monkeypatch.chdir(tmp_path)
    (f,) = discover(make_job(tmp_path, {"path": "rel.jsonl"}))
    assert f.path == str(tmp_path / "rel.jsonl")
    Read(f).assert_accounted(2)


def test_glob_star_stays_within_a_folder(tmp_path):
    from curation.io.sources import list_input
    from curation.spec import InputSpec

    (tmp_path / "nested").mkdir()
    for rel in ("a.jsonl", "b.jsonl", "nested/c.jsonl"):
        (tmp_path / rel).write_text('{"text": "x"}\n')
    one = list_input(InputSpec(path=str(tmp_path / "*.jsonl"), format="jsonl", source="s"))
    assert [rel for _, _, rel in one] == ["a.jsonl", "b.jsonl"]
    deep = list_input(InputSpec(path=str(tmp_path / "**" / "*.jsonl"), format="jsonl", source="s"))
    assert [rel for _, _, rel in deep] == ["a.jsonl", "b.jsonl", "nested/c.jsonl"]


def test_sample_fraction_and_max_records_pick_the_same_records_whatever_the_batches(tmp_path):
    """`sample_fraction` keeps a seeded share decided by position alone; `max_records` stops after that many
    of them (what `curate plan` reads and a quick look at a big input uses)."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": f"doc {i}"}) + "\n" for i in range(5000)))

    def ids(batch_size: int, **kw) -> list[str]:
        f = input_file(tmp_path, src, **kw)
        return [i for t in read_file(f, ReadLimits(batch_size=batch_size)) for i in t["id"].to_pylist()]

    a, b = ids(1000, sample_fraction=0.1), ids(37, sample_fraction=0.1)
    assert a == b and 400 < len(a) < 600  # about a tenth, the same records
    assert ids(37, sample_fraction=0.1, sample_seed=1) != a
    assert ids(64, max_records=100) == [f"d{i}" for i in range(100)]
    assert ids(64, sample_fraction=0.1, max_records=20) == a[:20]


def test_url_field_is_read_as_the_url_column_of_jsonl_and_parquet(tmp_path):
    """`url_field` carries each record's URL into `url` (what URL dedup keys on); a record without one, or with
    a URL that is not a string, gets null, and a broken line is still quarantined with the column present."""
    lines = [
        json.dumps({"id": "a", "text": "one", "link": "https://x.example/a"}),
        json.dumps({"id": "b", "text": "two"}),
        json.dumps({"id": "c", "text": "three", "link": 7}),
        "{broken",
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    for split in (False, True):  # the whole file, and as a split (a byte range)
        f = input_file(tmp_path, src, url_field="link")
        if split:
            import dataclasses

            f = dataclasses.replace(f, split=(0, src.stat().st_size), split_size=src.stat().st_size)
        rows = [r for t in read_file(f, ReadLimits(batch_size=2)) for r in t.to_pylist()]
        assert [(r["id"], r["url"]) for r in rows[:3]] == [("a", "https://x.example/a"), ("b", None), ("c", None)]
        assert rows[3]["error"] and rows[3]["url"] is None
    pq.write_table(pa.table({"text": ["p", "q"], "page": ["https://y.example/p", None]}), tmp_path / "in.parquet")
    f = input_file(tmp_path, tmp_path / "in.parquet", "parquet", url_field="page")
    assert [r["url"] for t in read_file(f, ReadLimits()) for r in t.to_pylist()] == ["https://y.example/p", None]
    with pytest.raises(ValueError, match="url_field"):
        make_job(tmp_path, {"path": str(src), "format": "text", "url_field": "link"})
