"""Reading inputs from `s3://` through pyarrow.fs, against a real S3-compatible server (moto's server
mode) on the loopback interface: discovery (globs, folders, single files) and the readers, end to end
through a local-engine job whose output is a local folder."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from curation.io.formats import read_file
from curation.io.readers import ReadLimits
from curation.io.sources import InputError, discover
from curation.job import run_job
from curation.progress import Progress
from curation.spec import parse_spec
from tests.conftest import free_port

BUCKET = "curation-test"


def _moto_command(port: int) -> list[str]:
    script = Path(sys.executable).parent / "moto_server"
    if script.exists():
        return [str(script), "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """A moto S3 server on 127.0.0.1; yields its `host:port`. Stopped by its pid at the end."""
    try:
        import moto.server  # noqa: F401  (is moto[server] installed?)
    except ImportError as e:
        pytest.skip(f"moto[server] is not installed ({e}); install the `test` extra: pip install -e '.[test]'")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(_moto_command(port), stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.skip(f"moto server exited with code {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    pytest.skip(f"moto server did not answer on port {port}: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)


def s3fs(endpoint: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        endpoint_override=endpoint,
        scheme="http",
        access_key="test",
        secret_key="test",
        region="us-east-1",
        allow_bucket_creation=True,
    )


def records(prefix: str, n: int) -> list[dict]:
    return [
        {
            "id": f"{prefix}-{i}",
            "text": f"This is document {i} of {prefix}. It talks about the weather, the "
            f"markets and the harvest, in several plain English sentences that a reader can follow. "
            f"Number {i * 7919 % 1000} appears here so that no two documents are the same.",
        }
        for i in range(n)
    ]


def jsonl(recs: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in recs).encode()


@pytest.fixture(scope="module")
def bucket(s3_server):
    """The test bucket with its files; yields (endpoint, {key: records written})."""
    fs = s3fs(s3_server)
    fs.create_dir(BUCKET)
    written: dict[str, list[dict]] = {}

    def put(key: str, data: bytes, recs: list[dict]) -> None:
        with fs.open_output_stream(f"{BUCKET}/{key}", compression=None) as out:  # bytes as given
            out.write(data)
        written[key] = recs

    for name, n in (("b", 120), ("a", 80)):
        recs = records(name, n)
        put(f"data/{name}.jsonl.gz", gzip.compress(jsonl(recs)), recs)
    put("data/notes.txt", b"not an input", [])
    pq_recs = records("p", 60)
    buf = pa.BufferOutputStream()
    pq.write_table(
        pa.table({"id": [r["id"] for r in pq_recs], "text": [r["text"] for r in pq_recs]}), buf, row_group_size=25
    )
    put("parquet/part-0.parquet", buf.getvalue().to_pybytes(), pq_recs)
    noid = records("q", 15)
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table({"text": [r["text"] for r in noid]}), buf)
    put("parquet/part-1.parquet", buf.getvalue().to_pybytes(), noid)
    # the server really holds them (not a local fallback)
    listed = fs.get_file_info(pafs.FileSelector(BUCKET, recursive=True))
    assert {i.path for i in listed if i.type == pafs.FileType.File} == {f"{BUCKET}/{k}" for k in written}
    return s3_server, written


def uri(endpoint: str, path: str) -> str:
    return f"s3://{BUCKET}/{path}?endpoint_override={endpoint}&scheme=http"


def make_job(tmp_path: Path, inputs: list[dict], **extra):
    return parse_spec(
        {
            "name": "s3-input",
            "output": str(tmp_path / "out"),
            "inputs": inputs,
            "languages": "all",
            "execution": {"engine": "local", "batch_size": 50},
            **extra,
        }
    )


def test_from_uri_accepts_glob_and_query_options(s3_server):
    fs, path = pafs.FileSystem.from_uri(f"s3://{BUCKET}/data/*.jsonl.gz?endpoint_override={s3_server}&scheme=http")
    assert isinstance(fs, pafs.S3FileSystem)
    assert path == f"{BUCKET}/data/*.jsonl.gz"


def test_discover_glob_on_s3(bucket, tmp_path):
    endpoint, _ = bucket
    files = discover(
        make_job(tmp_path, [{"path": uri(endpoint, "data/*.jsonl.gz"), "format": "jsonl", "source": "s3"}])
    )
    assert [f.path for f in files] == [f"{BUCKET}/data/a.jsonl.gz", f"{BUCKET}/data/b.jsonl.gz"]  # sorted
    for f in files:
        # each file's URI keeps the endpoint options, so the readers open it on the same server
        assert f.uri == uri(endpoint, f.path.removeprefix(f"{BUCKET}/"))


def test_read_jsonl_from_s3(bucket, tmp_path):
    endpoint, written = bucket
    (f,) = discover(make_job(tmp_path, [{"path": uri(endpoint, "data/a.jsonl.gz"), "format": "jsonl", "source": "s3"}]))
    rows = [r for t in read_file(f, ReadLimits(batch_size=30)) for r in t.to_pylist()]
    assert [r["error"] for r in rows] == [None] * 80
    assert [r["id"] for r in rows] == [r["id"] for r in written["data/a.jsonl.gz"]]
    assert [r["text"] for r in rows] == [r["text"] for r in written["data/a.jsonl.gz"]]


def test_missing_s3_inputs_fail_up_front(bucket, tmp_path):
    endpoint, _ = bucket
    with pytest.raises(InputError, match="does not exist"):
        discover(make_job(tmp_path, [{"path": uri(endpoint, "nowhere/*.jsonl.gz"), "format": "jsonl", "source": "s3"}]))
    with pytest.raises(InputError, match="no parquet files found"):
        discover(make_job(tmp_path, [{"path": uri(endpoint, "data/*.parquet"), "format": "parquet", "source": "s3"}]))


def test_job_reads_jsonl_and_parquet_from_s3(bucket, tmp_path):
    endpoint, written = bucket
    job = make_job(
        tmp_path,
        [
            {"path": uri(endpoint, "data/*.jsonl.gz"), "format": "jsonl", "source": "s3-jsonl"},
            {"path": uri(endpoint, "parquet"), "format": "parquet", "source": "s3-parquet"},  # a folder
        ],
        stages={"langid": {}, "dedup": {"exact": {}}},
    )
    stats = run_job(job, progress=Progress(enabled=False))
    expected = {k: v for k, v in written.items() if not k.endswith(".txt")}
    n = sum(len(v) for v in expected.values())
    assert stats["input_files"] == len(expected)
    assert stats["input_records"] == n == 275
    assert stats["quarantined"] == 0, list((tmp_path / "out" / "quarantine").glob("*"))
    assert stats["input_records"] == stats["kept"] + stats["rejected"] + stats["quarantined"]
    assert stats["kept"] == n, stats["by_reason"]  # distinct English documents: nothing to drop

    out_rows = []
    for sub in ("curated", "rejected"):
        for p in sorted((tmp_path / "out" / sub).rglob("part-*.parquet")):
            out_rows += pq.read_table(p, columns=["id", "text", "source"]).to_pylist()
    assert len(out_rows) == n
    texts = sorted(r["text"] for r in out_rows)
    assert texts == sorted(r["text"] for v in expected.values() for r in v)
    ids = {r["id"] for r in out_rows}
    with_ids = {r["id"] for k, v in expected.items() if k != "parquet/part-1.parquet" for r in v}
    assert with_ids <= ids
    assert len(ids) == n  # the id-less Parquet rows got distinct generated ids
    assert {r["source"] for r in out_rows} == {"s3-jsonl", "s3-parquet"}
    assert not (tmp_path / "out" / "quarantine").exists()
