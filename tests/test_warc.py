"""WARC in: records built from the raw HTML of real pages (bytes as served, any charset), through a job
with HTML extraction; and the extractors measured on the pages with gold snippets."""

from __future__ import annotations

import gzip
import tarfile
import uuid

import pyarrow.dataset as pads
import pytest

from curation.job import run_job
from curation.progress import Progress
from curation.spec import parse_spec
from tests.conftest import read_jsonl_gz, shared_file

pytest.importorskip("fastwarc")


def warc_record(kind: str, url: str, block: bytes, content_type: str) -> bytes:
    head = (
        f"WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Target-URI: {url}\r\nWARC-Date: 2026-11-01T00:00:00Z\r\n"
        f"WARC-Record-ID: <urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, kind + url)}>\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(block)}\r\n\r\n"
    ).encode()
    return gzip.compress(head + block + b"\r\n\r\n")  # gzip per record, as Common Crawl writes them


def http_response(body: bytes, status: str = "200 OK", content_type: str = "text/html") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n\r\n".encode() + body


@pytest.fixture(scope="module")
def pages():
    recs = {
        r["id"]: r
        for r in read_jsonl_gz(shared_file("web_trafilatura_eval.jsonl.gz"))
        if r.get("gt_with") or r.get("gt_without")
    }
    html = {}
    with tarfile.open(shared_file("web_trafilatura_html.tar.gz")) as t:
        for m in t:
            pid = m.name.rsplit("/", 1)[-1].removesuffix(".html")
            if m.isfile() and pid in recs:
                html[pid] = t.extractfile(m).read()
    return recs, html


def test_warc_job_extracts_pages_and_accounts_for_every_record(pages, tmp_path):
    recs, html = pages
    ids = sorted(html)[:40]
    data = b"".join(
        warc_record(
            "response",
            recs[i]["url"] or f"http://example.com/{i}",
            http_response(html[i]),
            "application/http; msgtype=response",
        )
        for i in ids
    )
    data += warc_record(
        "request", "http://example.com/a", b"GET /a HTTP/1.1\r\n\r\n", "application/http; msgtype=request"
    )
    data += warc_record(
        "response",
        "http://example.com/missing",
        http_response(b"<h1>Not found</h1>", "404 Not Found"),
        "application/http; msgtype=response",
    )
    data += warc_record(
        "response",
        "http://example.com/logo.png",
        http_response(b"\x89PNG\r\n\x1a\n" + bytes(200), content_type="image/png"),
        "application/http; msgtype=response",
    )
    wet_text = " ".join(["Plain text from a WET conversion record, already extracted by the crawler."] * 8)
    data += warc_record("conversion", "http://example.com/wet", wet_text.encode(), "text/plain")
    cut = warc_record("response", "http://example.com/cut", http_response(html[ids[0]]), "application/http")
    (tmp_path / "crawl.warc.gz").write_bytes(data + cut[: len(cut) // 2])
    out = tmp_path / "out"
    spec = {
        "output": str(out),
        "languages": "all",
        "inputs": [{"path": str(tmp_path), "format": "warc", "source": "crawl"}],
        "stages": {"extract": {}, "langid": {}},
        "execution": {"engine": "local"},
    }
    stats = run_job(parse_spec(spec), progress=Progress(enabled=False))
    # 40 pages + 404 + png + WET + the cut record's quarantine row; the request record is not a document.
    assert stats["input_records"] == 44 == stats["kept"] + stats["rejected"] + stats["quarantined"]
    assert stats["quarantined"] == 1
    assert stats["by_reason"].get("extract:http_status") == 1 and stats["by_reason"].get("extract:not_html") == 1
    kept = pads.dataset(str(out / "curated"), partitioning="hive").to_table().to_pylist()
    by_url = {r["url"]: r for r in kept}
    assert all(r["warc_date"] == "2026-11-01T00:00:00Z" and r["url"] for r in kept)
    assert by_url["http://example.com/wet"]["text"].startswith("Plain text from a WET")
    found = total = 0
    for i in ids:
        row = by_url.get(recs[i]["url"] or f"http://example.com/{i}")
        for snippet in recs[i].get("gt_with") or []:
            total += 1
            found += row is not None and snippet in row["text"]
    print(f"\n{found}/{total} required snippets in the extracted text of the {len(ids)} WARC pages")
    assert found >= 0.85 * total


@pytest.mark.slow  # trafilatura over every gold page: 20 s
@pytest.mark.parametrize(
    "name, required_floor, forbidden_floor", [("trafilatura", 0.92, 0.85), ("resiliparse", 0.92, 0.6)]
)
def test_extraction_quality_on_gold_snippets(pages, name, required_floor, forbidden_floor):
    """Every page with gold snippets, decoded as the WARC reader decodes it: the share of required snippets
    present and of forbidden (boilerplate) snippets absent."""
    from curation.io.warc import decode_body
    from filters.html_extract import load_extractor, snippet_shares

    recs, html = pages
    extract = load_extractor(name)
    present, absent, req, forb = snippet_shares(
        {pid: extract(decode_body(b, None)[0]) for pid, b in html.items()}, recs
    )
    print(
        f"\n{name}: {present:.3f} of {req} required snippets present, {absent:.3f} of {forb} forbidden "
        f"absent on {len(html)} pages"
    )
    assert present >= required_floor and absent >= forbidden_floor


def test_url_filter_rules(tmp_path):
    from filters.urls import UrlFilter, read_domain_list

    (tmp_path / "block.txt").write_text("# adult and spam\nbad.com\nhttp://www.spam.org/path\n\n")
    block = read_domain_list(tmp_path / "block.txt")
    assert block == {"bad.com", "spam.org"}
    f = UrlFilter(block, None, [r"/(login|cart)\b"])
    assert f.check("https://sub.bad.com/x") == "url:blocked_domain"  # subdomains are covered
    assert f.check("http://notbad.com/") is None  # but not a longer name ending the same way
    assert f.check("https://ok.org/login?next=/") == "url:pattern"
    assert f.check("not a url") == "url:invalid" and f.check(None) is None
    allow = UrlFilter(frozenset(), frozenset({"wiki.org"}))
    assert allow.check("https://en.wiki.org/a") is None and allow.check("https://other.org/") == "url:not_allowed"


def test_url_stage_in_a_warc_job(pages, tmp_path):
    recs, html = pages
    ids = sorted(html)[:6]
    urls = [f"http://{'blocked' if k < 2 else 'fine'}.example/{k}" for k in range(6)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "c.warc.gz").write_bytes(
        b"".join(warc_record("response", u, http_response(html[i]), "application/http") for u, i in zip(urls, ids))
    )
    (tmp_path / "block.txt").write_text("blocked.example\n")
    spec = {
        "output": str(tmp_path / "out"),
        "languages": "all",
        "inputs": [{"path": str(tmp_path / "in"), "format": "warc", "source": "crawl"}],
        "stages": {"urls": {"block_domains": [str(tmp_path / "block.txt")], "block_patterns": ["/5$"]}, "extract": {}},
        "execution": {"engine": "local"},
    }
    stats = run_job(parse_spec(spec), progress=Progress(enabled=False))
    assert stats["by_reason"].get("url:blocked_domain") == 2 and stats["by_reason"].get("url:pattern") == 1
    assert stats["input_records"] == 6 == stats["kept"] + stats["rejected"]
    assert [s["stage"] for s in stats["by_stage"]][:4] == ["read", "normalize", "url", "extract"]


def test_per_url_dedup_keeps_the_first_copy_of_each_url(pages, tmp_path):
    from filters.urls import normalize_url

    assert normalize_url("HTTP://X.Example:80/p?q=1#frag") == "http://x.example/p?q=1"
    assert normalize_url("https://x.example:8443") == "https://x.example:8443/"
    recs, html = pages
    ids = sorted(html)[:5]
    urls = [
        "http://a.example/1",
        "http://a.example/2",
        "http://a.example/1",
        "HTTP://B.example:80/p#top",
        "http://b.example/p",
    ]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "c.warc.gz").write_bytes(
        b"".join(  # five different pages, three different URLs
            warc_record("response", u, http_response(html[i]), "application/http") for u, i in zip(urls, ids)
        )
    )
    spec = {
        "output": str(tmp_path / "out"),
        "languages": "all",
        "inputs": [{"path": str(tmp_path / "in"), "format": "warc", "source": "crawl"}],
        "stages": {"extract": {}, "dedup": {"url": {}}},
        "execution": {"engine": "local"},
    }
    stats = run_job(parse_spec(spec), progress=Progress(enabled=False))
    assert stats["by_reason"].get("url_duplicate") == 2
    kept = {
        r["url"] for r in pads.dataset(str(tmp_path / "out" / "curated"), partitioning="hive").to_table().to_pylist()
    }
    assert kept == {"http://a.example/1", "http://a.example/2", "HTTP://B.example:80/p#top"}  # the first of each
    assert [s["stage"] for s in stats["by_stage"]][-2] == "url_dedup"
