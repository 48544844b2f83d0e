"""A whole job (local engine) over good documents mixed with 30 kinds of bad input: nothing is lost,
every unreadable record lands in quarantine with its error and position, and the counts add up.
Inputs that name nothing fail before any output is written; a bad spec fails the CLI cleanly."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from curation.io.sources import InputError
from curation.job import run_job
from curation.progress import Progress
from curation.spec import load_spec, parse_spec
from tests.conftest import read_jsonl_gz, shared_file

MB = 1 << 20
N_GOOD = 200


def reuters_docs(n: int) -> list[dict]:
    recs = read_jsonl_gz(shared_file("news_reuters21578.jsonl.gz"), n, where=lambda r: r.get("text", "").strip())
    return [{"id": r["id"], "text": r["text"]} for r in recs]


def jsonl(recs: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs).encode("utf-8")


class Corpus:
    """Input files written for the job, with what the job must find in them."""

    def __init__(self, root: Path):
        self.root = root
        self.records = 0  # records the job must count as input (blank lines are not records)
        self.quarantined = 0  # records that cannot be parsed
        self.ids: set[str] = set()  # ids of every record that has one and can be reached
        self.blank_lines = 0

    def add(self, records: int, quarantined: int, ids=()) -> None:
        self.records += records
        self.quarantined += quarantined
        self.ids.update(ids)


def build_corpus(root: Path) -> Corpus:
    c = Corpus(root)
    js, pqd, txt = root / "jsonl", root / "parquet", root / "texts"
    for d in (js, pqd, txt):
        d.mkdir(parents=True)
    good = reuters_docs(N_GOOD)
    # good documents, plus copies under new ids so exact dedup has something to find
    dupes = [{"id": f"copy-of-{r['id']}", "text": r["text"]} for r in good[:5]]
    (js / "good.jsonl.gz").write_bytes(gzip.compress(jsonl(good[:150] + dupes)))
    c.add(155, 0, [r["id"] for r in good[:150] + dupes])

    ok = lambda i: json.dumps({"id": f"ok-{i}", "text": good[i % len(good)]["text"] + f" (variant {i})"}).encode()
    bad_files = {
        "corrupt.jsonl": (b'{"id": "corrupt-1", "text": "never closed', None),
        "bad_utf8.jsonl": (b'{"id": "utf8-1", "text": "caf\xe9 au lait"}', None),
        "missing_text.jsonl": (b'{"id": "missing-1", "body": "no text field"}', "missing-1"),
        "text_number.jsonl": (b'{"id": "number-1", "text": 12345}', "number-1"),
        "array_line.jsonl": (b'[{"id": "array-1", "text": "inside an array"}]', None),
        "surrogate.jsonl": (b'{"id": "surrogate-1", "text": "broken \\ud800 pair"}', "surrogate-1"),
    }
    n = 0
    for name, (bad, bad_id) in bad_files.items():
        (js / name).write_bytes(ok(n) + b"\n" + bad + b"\n" + ok(n + 1) + b"\n\n")
        c.add(3, 1, [f"ok-{n}", f"ok-{n + 1}"] + ([bad_id] if bad_id else []))
        c.blank_lines += 1
        n += 2

    (js / "empty.jsonl").write_bytes(b"")
    c.add(0, 0)

    # one real 50 MB document (over the default max_doc_bytes) between two good ones
    with (js / "huge.jsonl").open("wb") as fh:
        fh.write(ok(100) + b"\n" + b'{"id": "huge-1", "text": "')
        block = b"An enormous document that repeats itself over and over. " * 2000
        written = 0
        while written < 50 * MB:
            fh.write(block)
            written += len(block)
        fh.write(b'"}\n' + ok(101) + b"\n")
    # (the id of a record over max_doc_bytes is not parsed out of it: its quarantine row has a generated
    # id, and input_file + position locate it)
    c.add(3, 1, ["ok-100", "ok-101"])

    # a gzip file cut short: the complete lines before the cut, then one quarantine row
    cut_recs = [{"id": f"cut-{i}", "text": good[i % len(good)]["text"] + f" [cut {i}]"} for i in range(300)]
    packed = gzip.compress(jsonl(cut_recs))
    cut = packed[: len(packed) // 2]
    (js / "truncated.jsonl.gz").write_bytes(cut)
    complete = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut).count(b"\n")
    assert 0 < complete < 300
    c.add(complete + 1, 1, [r["id"] for r in cut_recs[:complete]])

    # Parquet: good rows without an id column (stable ids are generated), and a file with a wrong schema
    pq.write_table(pa.table({"text": [r["text"] + " (parquet)" for r in good[150:190]]}), pqd / "good.parquet")
    c.add(40, 0)
    pq.write_table(pa.table({"id": [f"wrong-{i}" for i in range(7)], "body": ["x"] * 7}), pqd / "wrong.parquet")
    c.add(7, 7, [f"wrong-{i}" for i in range(7)])  # the schema error quarantines every row, ids kept
    pq.write_table(
        pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}), pqd / "empty.parquet"
    )
    c.add(0, 0)

    # a text folder: one document per file, id = relative path
    (txt / "sub").mkdir()
    for i, r in enumerate(good[190:200]):
        (txt / ("sub" if i % 2 else ".") / f"doc{i}.txt").write_text(r["text"], encoding="utf-8")
    (txt / "latin1.txt").write_bytes("Ein Text in Latin-1 kodiert: Größe".encode("latin-1"))
    c.add(11, 1, [f"sub/doc{i}.txt" if i % 2 else f"doc{i}.txt" for i in range(10)] + ["latin1.txt"])
    add_more_kinds(c, js, pqd, txt, ok)
    return c


def add_more_kinds(c: Corpus, js: Path, pqd: Path, txt: Path, ok) -> None:
    """The rest of the bad-input kinds (the ones above: broken JSON, invalid UTF-8, missing or non-string
    text, a JSON array line, lone surrogates, an empty file, a 50 MB record, truncated gzip, Parquet without
    ids, with the wrong schema or empty, a Latin-1 text file)."""
    # JSON nested 200,000 levels deep: Python's parser gives up with RecursionError, the reader quarantines it.
    (js / "deep.jsonl").write_bytes(
        ok(200)
        + b"\n"
        + b'{"id": "deep-1", "text": "x", "meta": '
        + b"[" * 200_000
        + b"]" * 200_000
        + b"}\n"
        + ok(201)
        + b"\n"
    )
    c.add(3, 1, ["ok-200", "ok-201"])
    (js / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + ok(202) + b"\n" + ok(203) + b"\n")  # a byte-order mark
    c.add(2, 0, ["ok-202", "ok-203"])
    (js / "garbage.jsonl.zst").write_bytes(bytes(range(256)) * 20)  # not zstd at all
    c.add(1, 1)
    (js / "nul.jsonl").write_bytes(
        ok(204)
        + b"\n"
        + b'{"id": "nul-raw", "text": "a\x00b"}\n'
        + b'{"id": "nul-escaped", "text": "an escaped \\u0000 NUL"}\n'
    )
    c.add(3, 1, ["ok-204", "nul-escaped"])  # a raw NUL byte is broken JSON; an escaped one is text
    types = [
        {"id": "t-list", "text": ["a"]},
        {"id": "t-object", "text": {"a": 1}},
        {"id": "t-null", "text": None},
        {"id": "t-bool", "text": True},
        {"id": 5, "text": "an integer id"},
        {"id": None, "text": "a null id"},
        {"id": {"x": 1}, "text": "an object id"},
        {"id": "dup", "text": "one of two records with one id"},
        {"id": "dup", "text": "the other record with the same id"},
        {"id": "empty", "text": ""},
        {"id": "blank", "text": "   \n\t "},
    ]
    (js / "types.jsonl").write_bytes(jsonl(types))
    c.add(11, 4, ["t-list", "t-object", "t-null", "t-bool", "5", "dup", "empty", "blank"])
    (js / "cr_only.jsonl").write_bytes(ok(205) + b"\r" + ok(206) + b"\r")  # old Mac line ends: one line
    c.add(1, 1)
    (js / "trailing.jsonl.gz").write_bytes(gzip.compress(ok(207) + b"\n") + b"TRAILING GARBAGE")
    c.add(2, 1, ["ok-207"])
    (js / "folder.jsonl").mkdir()  # a folder with a data file's name is not an input file
    good = pq.read_table(pqd / "good.parquet")
    buf = pa.BufferOutputStream()
    pq.write_table(good.slice(0, 5), buf)
    data = buf.getvalue().to_pybytes()
    (pqd / "truncated.parquet").write_bytes(data[: len(data) // 2])
    c.add(1, 1)
    os.symlink(".", txt / "sub" / "loop")  # a symlink loop: every file is still read once
    os.symlink(txt / "no-such-file.txt", txt / "dangling.txt")  # a dangling link: one quarantine row
    (txt / "binary.txt").write_bytes(bytes(range(256)) * 8)  # not text at all
    c.add(2, 2)


def job_spec(root: Path, out: Path, **extra) -> dict:
    return {
        "name": "bad-input",
        "output": str(out),
        "inputs": [
            {"path": str(root / "jsonl"), "format": "jsonl", "source": "mixed", "domain": "web"},
            {"path": str(root / "parquet"), "format": "parquet", "source": "pq"},
            {"path": str(root / "texts"), "format": "text", "source": "txt", "domain": "books"},
        ],
        "languages": "all",
        "stages": {"langid": {}, "filters": {"gopher_quality": {}, "c4": {}}, "dedup": {"exact": {}, "minhash": {}}},
        "execution": {"engine": "local", "batch_size": 64},
        **extra,
    }


def rows(path: Path) -> list[dict]:
    out = []
    for f in sorted(path.rglob("part-*.parquet")):
        out += pq.read_table(f).to_pylist()
    return out


@pytest.fixture(scope="module")
def bad_input_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    corpus = build_corpus(root / "in")
    out = root / "out"
    job = parse_spec(job_spec(root / "in", out))
    stats = run_job(job, progress=Progress(enabled=False))
    return corpus, job, out, stats


def test_counts_add_up(bad_input_run):
    corpus, _, out, stats = bad_input_run
    assert stats == json.loads((out / "stats.json").read_text())
    assert stats["input_records"] == stats["kept"] + stats["rejected"] + stats["quarantined"]
    assert stats["input_records"] == corpus.records
    assert stats["quarantined"] == corpus.quarantined
    assert stats["input_blank_lines"] == corpus.blank_lines
    assert stats["kept"] > 0 and stats["rejected"] > 0
    assert stats["by_reason"].get("exact_duplicate", 0) >= 5
    assert sum(stats["by_reason"].values()) == stats["rejected"]


def test_quarantine_rows_name_error_and_position(bad_input_run):
    corpus, _, out, stats = bad_input_run
    q = rows(out / "quarantine")
    assert len(q) == stats["quarantined"] == corpus.quarantined
    for r in q:
        assert r["error"], r
        assert r["position"] is not None
        assert r["input_file"]
    by_file: dict[str, list[dict]] = {}
    for r in q:
        by_file.setdefault(Path(r["input_file"]).name, []).append(r)
    expect = {
        "corrupt.jsonl": "broken JSON",
        "bad_utf8.jsonl": "invalid UTF-8",
        "missing_text.jsonl": "missing text",
        "text_number.jsonl": "not a string",
        "array_line.jsonl": "expected a JSON object",
        "surrogate.jsonl": "lone surrogate",
        "huge.jsonl": "over max_doc_bytes",
        "truncated.jsonl.gz": "file unreadable",
        "wrong.parquet": "wrong schema",
        "latin1.txt": "invalid UTF-8",
        "deep.jsonl": "nested too deeply",
        "garbage.jsonl.zst": "file unreadable",
        "nul.jsonl": "broken JSON",
        "types.jsonl": "not a string",
        "cr_only.jsonl": "broken JSON",
        "trailing.jsonl.gz": "file unreadable",
        "truncated.parquet": "file unreadable",
        "dangling.txt": "file unreadable",
        "binary.txt": "invalid UTF-8",
    }
    assert set(by_file) == set(expect)
    for name, fragment in expect.items():
        assert all(fragment in r["error"] for r in by_file[name]), (name, by_file[name][0]["error"])
    assert len(by_file["wrong.parquet"]) == 7 and len(by_file["types.jsonl"]) == 4
    assert [r["position"] for r in by_file["truncated.jsonl.gz"]] == [-1]
    # the bad JSONL record sits on line 2 of its file, between two good ones
    for name in (
        "corrupt.jsonl",
        "bad_utf8.jsonl",
        "missing_text.jsonl",
        "text_number.jsonl",
        "array_line.jsonl",
        "surrogate.jsonl",
        "huge.jsonl",
    ):
        assert [r["position"] for r in by_file[name]] == [2], name
    assert by_file["corrupt.jsonl"][0]["raw"] == b'{"id": "corrupt-1", "text": "never closed'
    assert len(by_file["huge.jsonl"][0]["raw"]) <= 1 << 20


def test_every_record_id_is_somewhere(bad_input_run):
    corpus, _, out, stats = bad_input_run
    curated, rejected, quarantined = rows(out / "curated"), rows(out / "rejected"), rows(out / "quarantine")
    assert len(curated) == stats["kept"] and len(rejected) == stats["rejected"]
    ids = {
        "curated": {r["id"] for r in curated},
        "rejected": {r["id"] for r in rejected},
        "quarantine": {r["id"] for r in quarantined},
    }
    union = ids["curated"] | ids["rejected"] | ids["quarantine"]
    missing = corpus.ids - union
    assert not missing, sorted(missing)[:10]
    assert not ids["curated"] & ids["rejected"]
    assert len(ids["curated"]) == len(curated)  # no document written twice
    for r in rejected:
        assert r["drop_reason"]
    # text-folder documents carry their relative path as id
    assert {"doc0.txt", "sub/doc1.txt"} <= union
    # generated ids of the id-less Parquet rows are present and distinct
    pq_rows = [r for r in curated + rejected if r["source"] == "pq"]
    assert len(pq_rows) == 40 and len({r["id"] for r in pq_rows}) == 40


def test_job_yaml_round_trips(bad_input_run):
    _, job, out, _ = bad_input_run
    assert load_spec(out / "job.yaml") == job


def test_missing_input_fails_before_any_output(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(jsonl([{"id": "a", "text": "some text"}]))
    out = tmp_path / "out"
    spec = job_spec(tmp_path / "in", out)
    missing = tmp_path / "in" / "does-not-exist" / "*.jsonl"
    spec["inputs"] = [
        {"path": str(tmp_path / "in" / "a.jsonl"), "format": "jsonl", "source": "a"},
        {"path": str(missing), "format": "jsonl", "source": "b"},
    ]
    with pytest.raises(InputError) as exc:
        run_job(parse_spec(spec), progress=Progress(enabled=False))
    assert str(missing) in str(exc.value)
    assert not (out / "stats.json").exists()
    assert not out.exists() or not any(out.iterdir())


def curate_cmd() -> list[str]:
    script = Path(sys.executable).parent / "curate"
    return [str(script)] if script.exists() else [sys.executable, "-m", "curation.cli"]


def run_cli(tmp_path: Path, spec: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run(
        [*curate_cmd(), "run", str(path), "--quiet"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )


def test_cli_bad_key_exits_2_with_key_path(tmp_path):
    (tmp_path / "in" / "jsonl").mkdir(parents=True)
    spec = job_spec(tmp_path / "in", tmp_path / "out")
    spec["stages"]["dedup"]["minhash"] = {"bands": "x"}
    spec["stages"]["filters"]["gopher_quality"] = {"bogus_option": 1}
    proc = run_cli(tmp_path, spec)
    assert proc.returncode == 2, proc.stderr
    assert "stages.dedup.minhash.bands" in proc.stderr
    assert "stages.filters.gopher_quality.bogus_option" in proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert proc.stderr.startswith("curate: error: invalid job spec")
    assert not (tmp_path / "out").exists()


def test_cli_missing_input_exits_2(tmp_path):
    spec = job_spec(tmp_path / "nothing-here", tmp_path / "out")
    proc = run_cli(tmp_path, spec)
    assert proc.returncode == 2, proc.stderr
    assert str(tmp_path / "nothing-here" / "jsonl") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "stats.json").exists()
