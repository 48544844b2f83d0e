"""The path policy, the generator allow-list and the spec body limits on their own (no server, no Ray)."""

from __future__ import annotations

import pytest

from api.body import BodyError, parse_body
from api.paths import _metadata_host, _url_allowed
from curation.io.policy import PathPolicy, path_key


@pytest.fixture
def policy(tmp_path):
    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    return PathPolicy(
        (str(tmp_path / "root"), "s3://bkt/data?endpoint_override=h:1&scheme=http", "gs://g/"),
        deny=(str(tmp_path / "root" / "theirs"), "gs://g/theirs"),
    )


@pytest.mark.parametrize(
    "path, why",
    [
        ("{t}/root/a/x.jsonl", None),
        ("{t}/root/a/*.jsonl", None),
        ("{t}/root/**/*.jsonl", None),
        ("{t}/root", None),
        ("{t}/root/*/../../elsewhere/x", "outside"),
        ("{t}/root/../elsewhere", "outside"),
        ("{t}/rootx/a", "outside"),
        ("{t}/ro*/a", "outside"),  # a glob in the fixed part could match beside the root
        ("{t}/root/link/x.jsonl", "outside"),  # a symlink out of the root
        ("{t}/root/theirs/curated/p.parquet", "another user"),
        ("file://{t}/root/a/x", None),
        ("file://{t}/elsewhere/x", "outside"),
        ("file://otherhost{t}/root/a/x", "neither a host"),
        ("relative/path", "absolute"),
        ("{t}/root/a/\x00x", "NUL"),
        ("s3://bkt/data/x?endpoint_override=h:1&scheme=http", None),
        ("s3://bkt/data/x", None),
        ("s3://bkt/data/x?endpoint_override=evil:1", "URI options"),
        ("s3://bkt/data/%2e%2e/other", "'..'"),
        ("s3://bkt/data/./x", "'..'"),
        ("s3://bkt/dataX/x", "outside"),
        ("s3://other/data/x", "outside"),
        ("s3:///data/x", "bucket"),
        ("gs://g/theirs/x", "another user"),
        ("gs://g/mine/x", None),
    ],
)
def test_paths_are_judged_after_normalization(policy, tmp_path, path, why):
    got = policy.problem(path.format(t=tmp_path))
    if why is None:
        assert got is None, got
    else:
        assert got is not None and why in got, got


def test_uri_options_when_the_operator_allows_them(tmp_path):
    open_policy = PathPolicy(("s3://bkt/",), allow_uri_options=True)
    assert open_policy.problem("s3://bkt/x?endpoint_override=h:1") is None
    assert PathPolicy.from_json(open_policy.to_json()) == open_policy


def test_path_keys_compare_by_segment():
    assert path_key("s3://b/x/y").within("s3://b/x")
    assert not path_key("s3://b/xy").within("s3://b/x")
    assert path_key("s3://b/a%20b/c").key == "s3://b/a b/c"


@pytest.mark.parametrize(
    "url, ok",
    [
        ("http://gen.svc:8000/v1", True),
        ("http://gen.svc:8000/v1/", True),
        ("http://gen.svc:8000/v1/chat", True),
        ("http://gen.svc:8000/v10", False),
        ("http://gen.svc:8001/v1", False),
        ("https://gen.svc:8000/v1", False),
        ("http://gen.svc.evil:8000/v1", False),
        ("http://gen.svc:8000@evil/v1", False),
        ("http://user:pw@gen.svc:8000/v1", False),
    ],
)
def test_generator_urls_are_matched_by_parts(url, ok):
    assert _url_allowed(url, "http://gen.svc:8000/v1") is ok


@pytest.mark.parametrize(
    "host, metadata",
    [
        ("169.254.169.254", True),
        ("169.254.1.1", True),
        ("fe80::1", True),
        ("::ffff:169.254.169.254", True),
        ("2852039166", True),
        ("100.100.100.200", True),
        ("metadata.google.internal", True),
        ("METADATA.", True),
        ("127.0.0.1", False),
        ("10.0.0.5", False),
        ("gen.svc", False),
    ],
)
def test_metadata_hosts(host, metadata):
    assert _metadata_host(host) is metadata


def test_body_limits_count_aliases_on_the_graph():
    wide = "a: &a [" + ",".join(["x"] * 50) + "]\nb: [" + ",".join(["*a"] * 50) + "]\n"
    assert len(parse_body(wide.encode(), True)["b"]) == 50  # 2,551 nodes: within the limit
    with pytest.raises(BodyError, match="expands to over 2,000 nodes"):
        parse_body(wide.encode(), True, max_nodes=2000)
    with pytest.raises(BodyError, match="refers to itself"):
        parse_body(b"a: &a [*a]\n", True)
    with pytest.raises(BodyError, match="nested deeper than 3"):
        parse_body(b'{"a": {"b": {"c": {"d": 1}}}}', False, max_depth=3)
    with pytest.raises(BodyError, match="not valid JSON"):
        parse_body(b"{", False)
    with pytest.raises(BodyError, match="not valid YAML"):
        parse_body(b"a: [", True)
    assert parse_body(b"", True) is None
