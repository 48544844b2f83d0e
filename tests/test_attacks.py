"""The record of what a hostile user has tried against the service (issue 15), one test per finding, each
replaying the attack as it was made: `curate serve` on loopback with two users and an admin, a local root,
an `s3://` root, a storage root that never answers, fake cloud credentials in the service's environment
and a recording HTTP listener standing in for the attacker's host.

Findings that live below the service (the job's path policy, resume, readers) are replayed on the job
itself, under the policy the service gives its jobs (`CURATION_PATH_POLICY`)."""

from __future__ import annotations

import concurrent.futures
import gzip
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
import yaml
from sqlalchemy import create_engine, text

from curation.cli import demo_spec
from tests.conftest import SHARED_DATA
from tests.test_api import TOKENS, Server, slow_spec

FAKE_SECRET = "FAKEsecretKEY0123456789"


class Recorder:
    """The attacker's host: an HTTP listener on loopback that records every request it gets."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                recorder.requests.append((self.path, dict(self.headers)))
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST  # noqa: N815

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class BlackHole:
    """A storage endpoint that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.open:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        self.open = False
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture(scope="module")
def attack(tmp_path_factory, ray_head):
    address, env = ray_head
    tmp = tmp_path_factory.mktemp("attack")
    hole, recorder = BlackHole(), Recorder()
    env = dict(
        env,
        AWS_ACCESS_KEY_ID="FAKEACCESSKEY",
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
        CURATION_API_HEADER_TIMEOUT_S="2",
        CURATION_API_BODY_TIMEOUT_S="2",
    )
    slow_root = f"s3://slow/?endpoint_override=127.0.0.1:{hole.port}&scheme=http"
    srv = Server(tmp, address, env, extra=("--root", "s3://attack-bucket/", "--root", slow_root))
    srv.slow_root, srv.recorder = slow_root, recorder
    srv.start()
    yield srv
    srv.stop()
    hole.close()
    recorder.close()


def post(srv: Server, spec, who: str = "bob", **kw) -> requests.Response:
    return srv.call("POST", "/v1/jobs", who=who, json=spec, **kw)


def locs(r: requests.Response) -> list[list[str]]:
    return [d["loc"] for d in r.json()["detail"]]


def job_rows(srv: Server) -> int:
    engine = create_engine(f"sqlite:///{srv.db}")
    with engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM jobs")).scalar_one()
    engine.dispose()
    return n


def insert_job(srv: Server, job_id: str, owner: str, output: str, state: str = "SUCCEEDED") -> None:
    """A job record as the service writes it (for outputs whose job need not run here)."""
    from curation.io.policy import path_key

    engine = create_engine(f"sqlite:///{srv.db}")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO jobs (id, owner, name, kind, state, spec_yaml, output, output_key, "
                "created_at, updated_at) VALUES (:i, :o, 'planted', 'curate', :s, '{}', :out, :k, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"i": job_id, "o": owner, "s": state, "out": output, "k": path_key(output).key},
        )
    engine.dispose()


def assert_healthy(srv: Server) -> None:
    """/healthz answers 200 (a blocked event loop would not answer at all; its latency under these loads is
    measured by bench/api_load.py --hostile, not here)."""
    assert requests.get(srv.url + "/healthz", timeout=30).status_code == 200


# --- critical -------------------------------------------------------------------------------------------


def test_1_glob_escape_read_is_refused(attack):
    root = attack.root
    spec = demo_spec(str(attack.out("g1")))
    spec["inputs"] = [
        {"path": f"{root}/*/../../../../etc/passwd", "format": "text", "source": "x"},
        {"path": f"{root}/*/../../../../proc/self/environ", "format": "text", "source": "x"},
    ]
    r = post(attack, spec)
    assert r.status_code == 422, r.text
    assert ["body", "inputs", "0", "path"] in locs(r) and ["body", "inputs", "1", "path"] in locs(r)
    spec = demo_spec(str(attack.out("g1")))
    spec["stages"]["decontam"] = {"benchmarks": {"b": {"path": f"{root}/*/../../../../etc/passwd"}}}
    r = post(attack, spec)
    assert r.status_code == 422 and ["body", "stages", "decontam", "benchmarks", "b", "path"] in locs(r), r.text


def test_1_glob_escape_read_is_refused_by_the_job_too(tmp_path, monkeypatch):
    """The job applies the same policy after glob expansion: a hand-edited job.yaml cannot slip past."""
    from curation.io.policy import PathPolicy, PathRefused
    from curation.io.sources import filesystem_for

    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    monkeypatch.setenv("CURATION_PATH_POLICY", PathPolicy((str(root),)).to_json())
    with pytest.raises(PathRefused, match="outside the allowed roots"):
        filesystem_for(f"{root}/*/../../../../etc/passwd")
    assert filesystem_for(str(root / "a"))[1] == str(root / "a")


def test_2_glob_escape_write_is_refused(attack):
    victim = attack.tmp / "victim"
    (victim / "curated").mkdir(parents=True, exist_ok=True)
    (victim / "curated" / "part-00000.parquet").write_bytes(b"the victim's data")
    r = post(attack, demo_spec(f"{attack.root}/*/../../victim"))
    assert r.status_code == 422 and locs(r) == [["body", "output"]], r.text
    assert (victim / "curated" / "part-00000.parquet").read_bytes() == b"the victim's data"


@pytest.mark.parametrize(
    "base_url, api_key_env, loc",
    [
        ("{attacker}", None, "base_url"),  # not under the service's --generator-url
        ("http://169.254.169.254/v1", None, "base_url"),  # cloud metadata
        ("http://[::ffff:169.254.169.254]/v1", None, "base_url"),
        ("http://2852039166/v1", None, "base_url"),  # 169.254.169.254 as one number
        ("http://127.0.0.1:{gport}@evil.example/v1", None, "base_url"),  # userinfo trick on the allowed prefix
        ("http://127.0.0.1:{gport}/v1", "AWS_SECRET_ACCESS_KEY", "api_key_env"),  # allowed URL, secret not listed
    ],
)
def test_3_synthesis_cannot_exfiltrate(attack, base_url, api_key_env, loc):
    pool = attack.out("synth-in") / "curated"
    pool.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "id": ["a"],
                "text": ["Some curated text of another user."],
                "source": ["s"],
                "domain": ["web"],
                "lang": ["en"],
            }
        ),
        pool / "part-00000.parquet",
    )
    gen = {"model": "m", "base_url": base_url.format(attacker=attack.recorder.url, gport=attack.generator_port)}
    if api_key_env:
        gen["api_key_env"] = api_key_env
    spec = {
        "kind": "synthesize",
        "inputs": [str(pool.parent)],
        "output": str(attack.out("synth-out")),
        "tasks": {"w": {"template": "wikipedia"}},
        "generator": gen,
    }
    r = post(attack, spec)
    assert r.status_code == 422 and ["body", "generator", loc] in locs(r), r.text
    assert attack.recorder.requests == []


def test_3_k8s_job_pods_name_no_secret_a_spec_may_use():
    """The manifests' service lets jobs name no environment variable as api_key_env (the default), so the
    pods' RAY_AUTH_TOKEN and AWS_* cannot be sent anywhere by a spec."""
    repo = Path(__file__).resolve().parents[1]
    cm = next(
        d
        for d in yaml.safe_load_all((repo / "k8s" / "base" / "configmap.yaml").read_text())
        if d["metadata"]["name"] == "curation-api"
    )
    data = cm["data"]
    assert "CURATION_API_GENERATOR_KEY_ENVS" in data and "CURATION_API_GENERATOR_URLS" in data
    assert data.get("CURATION_API_GENERATOR_KEY_ENVS", "") == ""
    assert data.get("CURATION_API_GENERATOR_URLS", "") == ""


# --- high -----------------------------------------------------------------------------------------------


def test_4_a_user_cannot_take_or_read_another_users_output(attack):
    alice_out = attack.out("alice-4")
    insert_job(attack, "cj-alice-4", "alice", str(alice_out))
    before = job_rows(attack)
    r = post(attack, demo_spec(str(alice_out)), who="bob")
    assert r.status_code == 409 and locs(r) == [["body", "output"]], r.text
    assert "another user's job" in r.json()["detail"][0]["msg"]
    r = post(attack, demo_spec(str(alice_out / "inside")), who="bob")  # nested inside hers
    assert r.status_code == 409, r.text
    r = post(attack, demo_spec(str(attack.root / "outputs")), who="bob")  # holding hers
    assert r.status_code == 409, r.text
    mix = {"kind": "mix", "inputs": [str(alice_out)], "output": str(attack.out("bob-4")), "target_tokens": 10}
    r = post(attack, mix, who="bob")
    assert r.status_code == 422 and locs(r) == [["body", "inputs", "0"]], r.text
    assert "another user's job" in r.json()["detail"][0]["msg"]
    assert job_rows(attack) == before
    assert attack.call("GET", "/v1/jobs/cj-alice-4", who="bob").status_code == 404


def test_4_dedup_against_reads_only_what_the_user_may_read(attack):
    """`stages.dedup.against` names earlier outputs or indexes to read: one outside the roots, or another
    user's output (its index/ holds her documents' ids), is refused at submission like any other read."""
    alice_out = attack.out("alice-4c")
    insert_job(attack, "cj-alice-4c", "alice", str(alice_out))
    before = job_rows(attack)
    for path, why in ((str(alice_out), "another user's job"), ("/etc", "")):
        spec = demo_spec(str(attack.out("bob-4c")))
        spec["stages"]["dedup"]["against"] = [path]
        r = post(attack, spec, who="bob")
        assert r.status_code == 422 and ["body", "stages", "dedup", "against[0]"] in locs(r), r.text
        assert why in r.text
    assert job_rows(attack) == before


def test_4_other_spellings_and_links_of_another_users_output_are_hers_too(attack):
    """An attack tried after the fixes: Alice's folder under another name (`/.`, `//`, a link in the root)."""
    alice_out = attack.out("alice-4b")
    alice_out.mkdir(parents=True, exist_ok=True)
    insert_job(attack, "cj-alice-4b", "alice", str(alice_out))
    link = attack.root / "bob-view-4b"
    link.symlink_to(alice_out, target_is_directory=True)
    for output in (
        f"{alice_out}/.",
        str(alice_out).replace("/outputs/", "/outputs//"),
        str(link),
        f"{link}/inside",
        f"{attack.root}/outputs/../outputs/alice-4b",
    ):
        r = post(attack, demo_spec(output), who="bob")
        assert r.status_code == 409 and locs(r) == [["body", "output"]], (output, r.text)
    r = post(
        attack,
        {"kind": "mix", "inputs": [str(link)], "output": str(attack.out("bob-4b")), "target_tokens": 10},
        who="bob",
    )
    assert r.status_code == 422 and "another user's job" in r.text, r.text


def test_5_mix_and_ablate_check_their_output_folder(attack, tmp_path):
    alice_out = attack.out("alice-5")
    insert_job(attack, "cj-alice-5", "alice", str(alice_out))
    for spec in (
        {"kind": "ablate", "inputs": [str(attack.root)], "output": str(alice_out), "target_tokens": 10},
        {"kind": "mix", "inputs": [str(attack.root)], "output": str(alice_out), "target_tokens": 10},
    ):
        r = post(attack, spec, who="bob")
        assert r.status_code == 409 and locs(r) == [["body", "output"]], r.text
    # The job itself refuses an output folder that holds another spec (as a curate job does).
    from curation.job import JobError
    from mixtures.ablate import run_ablate
    from mixtures.job import run_mix
    from mixtures.spec import parse_ablate_spec, parse_mix_spec

    out = tmp_path / "held"
    out.mkdir()
    (out / "job.yaml").write_text("kind: mix\ninputs: [x]\noutput: y\ntarget_tokens: 99\n")
    pool = tmp_path / "pool" / "curated"
    pool.mkdir(parents=True)
    pq.write_table(
        pa.table({"id": ["a"], "text": ["t"], "source": ["s"], "domain": ["web"], "lang": ["en"]}),
        pool / "part-00000.parquet",
    )
    with pytest.raises(JobError, match="different spec"):
        run_mix(
            parse_mix_spec(
                {
                    "kind": "mix",
                    "inputs": [str(pool.parent)],
                    "output": str(out),
                    "target_tokens": 10,
                    "execution": {"engine": "local"},
                }
            )
        )
    with pytest.raises(JobError, match="different spec"):
        run_ablate(
            parse_ablate_spec(
                {
                    "kind": "ablate",
                    "inputs": [str(pool.parent)],
                    "output": str(out),
                    "target_tokens": 10,
                    "execution": {"engine": "local"},
                }
            )
        )
    assert "target_tokens: 99" in (out / "job.yaml").read_text()


@pytest.mark.parametrize(
    "uri",
    [
        "s3://attack-bucket/%2e%2e/other/x.jsonl",
        "s3://attack-bucket/a/%2E%2E/%2e%2e/other/x.jsonl",
        "s3://attack-bucket/x.jsonl?endpoint_override=127.0.0.1:1&scheme=http",
    ],
)
def test_6_object_store_tricks_are_refused(attack, uri):
    spec = demo_spec(str(attack.out("s3-6")))
    spec["inputs"] = [{"path": uri, "format": "jsonl", "source": "x"}]
    r = post(attack, spec)
    assert r.status_code == 422 and locs(r) == [["body", "inputs", "0", "path"]], r.text
    spec = demo_spec(uri.replace("x.jsonl", "out"))
    r = post(attack, spec)
    assert r.status_code == 422 and ["body", "output"] in locs(r), r.text


def test_7_log_streams_are_bounded_and_the_service_stays_up(attack):
    if not (SHARED_DATA / "news_reuters21578.jsonl.gz").exists():
        pytest.skip("needs ../shared/data for a job that runs long enough")
    r = post(attack, slow_spec(attack.out("logs-7")), who="alice")
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    attack.wait_state(job_id, {"RUNNING"}, timeout=120)
    opened, codes = [], []
    try:
        for _ in range(16):
            resp = requests.get(
                f"{attack.url}/v1/jobs/{job_id}/logs",
                params={"follow": "true"},
                stream=True,
                headers={"Authorization": f"Bearer {TOKENS['alice']}"},
                timeout=30,
            )
            codes.append(resp.status_code)
            opened.append(resp)
        assert codes.count(200) == 4 and codes.count(429) == 12, codes
        assert_healthy(attack)
        assert attack.call("GET", "/v1/jobs", who="bob").status_code == 200
        assert attack.call("GET", f"/v1/jobs/{job_id}", who="alice").status_code == 200
    finally:
        for resp in opened:
            resp.close()
        attack.call("POST", f"/v1/jobs/{job_id}/cancel", who="alice")
    deadline = time.monotonic() + 30
    while True:  # closed streams give their slots back
        resp = requests.get(
            f"{attack.url}/v1/jobs/{job_id}/logs",
            params={"follow": "true"},
            stream=True,
            headers={"Authorization": f"Bearer {TOKENS['alice']}"},
            timeout=30,
        )
        resp.close()
        if resp.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert resp.status_code == 200
    attack.wait_state(job_id, {"CANCELLED", "SUCCEEDED", "FAILED"}, timeout=120, who="alice")


def test_8_storage_that_never_answers_does_not_take_the_service_down(attack):
    output = attack.slow_root.replace("?", "alice-8?", 1)
    insert_job(attack, "cj-slow-8", "alice", output)
    with concurrent.futures.ThreadPoolExecutor(45) as pool:
        futures = [pool.submit(attack.call, "GET", "/v1/jobs/cj-slow-8", "alice") for _ in range(45)]
        time.sleep(1.0)
        for _ in range(3):
            assert_healthy(attack)
        others = attack.call("GET", "/v1/jobs", who="bob")
        results = [f.result(timeout=60) for f in futures]
    assert others.status_code == 200
    assert all(r.status_code == 200 for r in results), {r.status_code for r in results}
    assert all(r.json()["stats"] is None for r in results)
    assert any(
        "did not answer" in (r.json()["message"] or "") or "not answering" in (r.json()["message"] or "")
        for r in results
    )
    arts = attack.call("GET", "/v1/jobs/cj-slow-8/artifacts/stats.json")
    assert arts.status_code == 503


ALIAS_BOMB = (
    "\n".join(
        ["a: &a [x,x,x,x,x,x,x,x,x,x]"] + [f"{b}: &{b} [{', '.join(['*' + a] * 10)}]" for a, b in zip("abcde", "bcdef")]
    )
    + "\n"
)


def test_9_yaml_alias_bombs_are_refused_before_expansion(attack):
    before = job_rows(attack)
    for body in (
        ALIAS_BOMB + f"name: *f\noutput: {attack.out('bomb')}\n",
        ALIAS_BOMB + f"inputs: *f\noutput: {attack.out('bomb')}\n",
    ):
        assert len(body) < 1000
        r = attack.call(
            "POST", "/v1/jobs", who="bob", data=body, headers={"Content-Type": "application/yaml"}, timeout=30
        )
        assert r.status_code == 422 and "expands to over" in r.text, r.text[:300]
        assert len(r.content) < 10_000
    assert job_rows(attack) == before
    assert (
        not list((attack.tmp / "data" / "jobs").glob("*/job.yaml"))
        or max(p.stat().st_size for p in (attack.tmp / "data" / "jobs").glob("*/job.yaml")) < 100_000
    )
    # A long error is cut, not echoed back whole.
    r = post(attack, {"output": str(attack.out("e")), "inputs": [{"path": "x" * 150_000}]})
    assert r.status_code == 422 and len(r.content) < 20_000


def test_10_mix_and_ablate_jobs_submitted_through_the_api_succeed(attack):
    """The stored spec loads back as the spec given (a null is not an option set), so mix and ablate jobs run."""
    pool = attack.out("pool-10") / "curated" / "lang=en"
    pool.mkdir(parents=True, exist_ok=True)
    words = "the of grain harvest market price rain river town school".split()
    for part, source in enumerate(("news", "web", "books")):
        texts = [
            " ".join(words[(i * 7 + k * (part + 3)) % len(words)] for k in range(120)) + f" {source} {i}"
            for i in range(60)
        ]
        pq.write_table(
            pa.table(
                {
                    "id": [f"{source}-{i}" for i in range(60)],
                    "text": texts,
                    "source": [source] * 60,
                    "domain": ["web"] * 60,
                    "lang": ["en"] * 60,
                }
            ),
            pool / f"part-{part:05d}.parquet",
        )
    inputs = [str(attack.out("pool-10"))]
    mix = {
        "kind": "mix",
        "inputs": inputs,
        "output": str(attack.out("mix-10")),
        "target_tokens": 5000,
        "bucket_by": ["source"],
        "temperature": {"alpha": 0.5},
    }
    ablate = {
        "kind": "ablate",
        "inputs": inputs,
        "output": str(attack.out("ablate-10")),
        "target_tokens": 50_000,
        "bucket_by": ["source"],
        "n_mixtures": 10,
        "n_heldout": 3,
        "seeds": 2,
        "proxy_tokens": 20_000,
    }
    ids = []
    for spec in (mix, ablate):
        r = post(attack, spec, who="alice")
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    for job_id in ids:
        done = attack.wait_state(job_id, {"SUCCEEDED", "FAILED"}, timeout=300)
        logs = attack.call("GET", f"/v1/jobs/{job_id}/logs").json()["lines"]
        assert done["state"] == "SUCCEEDED", (done["message"], logs[-10:])
    manifest = attack.call("GET", f"/v1/jobs/{ids[0]}/artifacts").json()["manifest"]
    assert {b["weight_source"] for b in manifest["buckets"]} == {"temperature"}
    assert (attack.out("ablate-10") / "weights.yaml").exists()


def test_10_every_job_kind_survives_the_store_round_trip():
    """What the service stores (parse_any_spec's YAML) parses back into the same job, for every kind and every
    weighting option."""
    from curation.kinds import parse_any_spec

    base = {"inputs": ["/d/pool"], "output": "/d/out", "target_tokens": 1000}
    specs = [
        demo_spec("/d/out"),
        {**base, "kind": "mix"},
        {**base, "kind": "mix", "temperature": None},
        {**base, "kind": "mix", "temperature": {"alpha": 0.7}},
        {**base, "kind": "mix", "unimax": {}},
        {**base, "kind": "mix", "weights": {"a": 1.0}},
        {**base, "kind": "mix", "weights_file": "/d/w.yaml"},
        {**base, "kind": "mix", "long_context": {"target_tokens": 100}},
        {**base, "kind": "ablate"},
        {**base, "kind": "ablate", "target": {"buckets": ["a"]}},
        {
            "kind": "synthesize",
            "inputs": ["/d/pool"],
            "output": "/d/out",
            "tasks": {"w": {"template": "wikipedia"}},
            "generator": {"model": "m", "base_url": "http://127.0.0.1:1/v1"},
        },
    ]
    for spec in specs:
        job, stored = parse_any_spec(spec)
        again, stored_again = parse_any_spec(yaml.safe_load(stored))
        assert again.model_dump() == job.model_dump(), spec
        assert stored_again == stored
        if job.kind == "mix":
            assert again.weight_source() == job.weight_source()


def test_11_two_jobs_racing_for_one_new_output_one_is_refused(attack):
    out = attack.out("race-11")
    specs = [demo_spec(str(out)), {**demo_spec(str(out)), "name": "other"}]
    barrier = threading.Barrier(2)

    def submit(spec):
        barrier.wait()
        return post(attack, spec, who="alice")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(submit, specs))
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 409], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 201).json()["id"]
    loser = next(r for r in results if r.status_code == 409)
    assert locs(loser) == [["body", "output"]] and "in use by your job" in loser.json()["detail"][0]["msg"]
    attack.call("POST", f"/v1/jobs/{winner}/cancel", who="alice")
    attack.wait_state(winner, {"CANCELLED", "SUCCEEDED", "FAILED"}, who="alice")


def test_11_two_runs_of_one_folder_at_once_the_second_is_refused(tmp_path):
    """Below the service (hand-run jobs too): the output folder is locked while a job runs."""
    from curation.job import JobError, claim_output
    from curation.spec import parse_spec, resolved_yaml

    job = parse_spec({**demo_spec(str(tmp_path / "out")), "execution": {"engine": "local"}})
    layout, lock = claim_output(job, resolved_yaml(job))
    with lock:
        with pytest.raises(JobError, match="in use by another running job"):
            claim_output(job, resolved_yaml(job))
    _, again = claim_output(job, resolved_yaml(job))  # released when the first ends
    again.__exit__()


# --- medium and low ------------------------------------------------------------------------------------


def test_symlinks_out_of_a_root_are_not_followed_by_the_job(tmp_path, monkeypatch):
    from curation.io.policy import PathPolicy
    from curation.io.sources import InputError, list_input
    from curation.spec import InputSpec

    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "data").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.jsonl").write_text('{"text": "secret"}\n')
    (root / "data" / "ok.jsonl").write_text('{"text": "fine"}\n')
    (outside / "more").mkdir()
    (outside / "more" / "other.jsonl").write_text('{"text": "other"}\n')
    (root / "data" / "linked.jsonl").symlink_to(outside / "secret.jsonl")
    (root / "data" / "folder").symlink_to(outside / "more")
    without = list_input(InputSpec(path=str(root / "data"), format="jsonl", source="s"))
    assert len(without) == 3  # a hand-run job follows links, as the README says
    monkeypatch.setenv("CURATION_PATH_POLICY", PathPolicy((str(root),)).to_json())
    for path in (str(root / "data"), str(root / "*" / "*.jsonl"), str(root / "data" / "linked.jsonl")):
        with pytest.raises(InputError, match="outside the allowed roots"):
            list_input(InputSpec(path=path, format="jsonl", source="s"))


def test_planted_symlinks_in_an_output_are_not_served(attack):
    out = attack.out("planted")
    out.mkdir(parents=True, exist_ok=True)
    for name, target in (
        ("stats.json", "/etc/passwd"),
        ("report.html", "/etc/hostname"),
        ("progress.json", "/proc/self/environ"),
    ):
        (out / name).symlink_to(target)
    insert_job(attack, "cj-planted", "alice", str(out))
    job = attack.call("GET", "/v1/jobs/cj-planted").json()
    assert job["stats"] is None and job["progress"] is None
    assert attack.call("GET", "/v1/jobs/cj-planted/artifacts").json()["artifacts"] == []
    for name in ("stats.json", "report.html", "progress.json"):
        r = attack.call("GET", f"/v1/jobs/cj-planted/artifacts/{name}")
        assert r.status_code == 404 and "root:" not in r.text and FAKE_SECRET not in r.text


def test_a_job_under_the_service_writes_through_no_link(tmp_path, monkeypatch):
    from curation.io.policy import PathPolicy
    from curation.job import JobError, run_job
    from curation.spec import parse_spec

    root = tmp_path / "root"
    out = root / "out"
    out.mkdir(parents=True)
    (out / "curated").symlink_to(tmp_path / "victim", target_is_directory=True)
    repo_demo = str(Path(__file__).resolve().parents[1] / "curation" / "demo")
    monkeypatch.setenv("CURATION_PATH_POLICY", PathPolicy((str(root), repo_demo)).to_json())
    with pytest.raises(JobError, match="symbolic link"):
        run_job(parse_spec({**demo_spec(str(out)), "execution": {"engine": "local"}}))


def _small_job(tmp_path, inputs_dir: Path, out: Path) -> dict:
    return {
        "name": "small",
        "output": str(out),
        "inputs": [{"path": str(inputs_dir), "format": "jsonl", "source": "s"}],
        "stages": {},
        "languages": "all",
        "execution": {"engine": "local"},
    }


def _write_docs(path: Path, n: int, start: int = 0) -> None:
    with path.open("a") as f:
        for i in range(start, start + n):
            f.write(json.dumps({"id": f"d{i}", "text": f"Document number {i} with a few words in it."}) + "\n")


def test_a_driver_killed_in_the_write_phase_leaves_no_stale_stats(tmp_path, monkeypatch):
    import curation.job as job_module
    from curation.job import run_job
    from curation.progress import Progress
    from curation.spec import parse_spec

    (tmp_path / "in").mkdir()
    _write_docs(tmp_path / "in" / "a.jsonl", 20)
    out = tmp_path / "out"
    spec = parse_spec(_small_job(tmp_path, tmp_path / "in", out))
    first = run_job(spec, progress=Progress(enabled=False))
    assert (out / "stats.json").exists()

    def killed(*a, **kw):
        raise KeyboardInterrupt  # the driver dies while writing

    monkeypatch.setattr(job_module, "finalize_file", killed)
    with pytest.raises(KeyboardInterrupt):
        run_job(spec, progress=Progress(enabled=False))
    assert not (out / "stats.json").exists() and not (out / "report.html").exists()
    monkeypatch.undo()
    again = run_job(spec, progress=Progress(enabled=False))
    assert again["kept"] == first["kept"] == 20 and (out / "stats.json").exists()


def test_an_output_inside_its_input_folder_is_not_read_back(tmp_path):
    from curation.job import run_job
    from curation.progress import Progress
    from curation.spec import parse_spec

    (tmp_path / "in").mkdir()
    _write_docs(tmp_path / "in" / "a.jsonl", 10)
    spec = _small_job(tmp_path, tmp_path / "in", tmp_path / "in" / "out")
    spec["inputs"][0]["format"] = "text"  # every file of the folder, Parquet outputs included
    said = []
    first = run_job(parse_spec(spec), progress=Progress(enabled=False))
    progress = Progress(enabled=False)
    progress.say = said.append  # type: ignore[method-assign]
    again = run_job(parse_spec(spec), progress=progress)
    assert first["input_records"] == again["input_records"] == 1  # the one text file, not the outputs
    assert any("not read as input" in s for s in said), said


def test_resume_rereads_an_input_file_that_changed(tmp_path):
    from curation.job import run_job
    from curation.progress import Progress
    from curation.spec import parse_spec

    (tmp_path / "in").mkdir()
    _write_docs(tmp_path / "in" / "a.jsonl", 10)
    spec = parse_spec(_small_job(tmp_path, tmp_path / "in", tmp_path / "out"))
    assert run_job(spec, progress=Progress(enabled=False))["input_records"] == 10
    _write_docs(tmp_path / "in" / "a.jsonl", 5, start=10)  # same name, new content
    assert run_job(spec, progress=Progress(enabled=False))["input_records"] == 15


def test_mix_over_an_output_without_curated_is_a_clear_error(tmp_path):
    from curation.spec import SpecError
    from mixtures.pool import curated_files

    out = tmp_path / "out"
    (out / "rejected").mkdir(parents=True)
    (out / "job.yaml").write_text("name: x\n")
    pq.write_table(pa.table({"id": ["a"], "text": ["t"]}), out / "rejected" / "part-00000.parquet")
    with pytest.raises(SpecError, match="no curated/ folder"):
        curated_files([str(out)])
    # A plain folder of Parquet files skips work and in-progress files at every level.
    plain = tmp_path / "plain"
    (plain / "_work").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"], "text": ["t"]}), plain / "_work" / "p.parquet")
    pq.write_table(pa.table({"id": ["a"], "text": ["t"]}), plain / "_inprogress-x.parquet")
    pq.write_table(pa.table({"id": ["a"], "text": ["t"]}), plain / "good.parquet")
    assert curated_files([str(plain)]) == [str(plain / "good.parquet")]


def test_a_gzip_bomb_of_one_huge_line_is_not_buffered_whole(tmp_path):
    from curation.io.formats import read_file
    from curation.io.readers import ReadLimits
    from curation.io.sources import InputFile

    path = tmp_path / "bomb.jsonl.gz"
    line_bytes = 256 << 20
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(b'{"text": "')
        chunk = b"a" * (8 << 20)
        for _ in range(line_bytes // len(chunk)):
            f.write(chunk)
        f.write(b'"}\n{"text": "after the bomb"}\n')
    assert path.stat().st_size < 4 << 20
    f = InputFile(0, str(path), str(path), "bomb.jsonl.gz", 0, "jsonl", "s", "web", "text", None)
    tracemalloc.start()
    try:
        tables = list(read_file(f, ReadLimits(max_doc_bytes=1 << 20)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rows = pa.concat_tables(tables).to_pylist()
    assert len(rows) == 2 and "over max_doc_bytes" in rows[0]["error"] and rows[1]["text"] == "after the bomb"
    assert f"{line_bytes + 12:,}" in rows[0]["error"]  # the whole line's size is still reported
    print(f"\n{line_bytes >> 20} MB line: peak {peak / 2**20:.0f} MB of Python memory while reading")
    assert peak < line_bytes / 4


def test_metrics_need_a_token(attack):
    assert attack.call("GET", "/metrics", who=None).status_code == 401
    assert "curation_api_requests_total" in attack.call("GET", "/metrics", who="bob").text


@pytest.mark.parametrize("yaml_body", [False, True])
def test_deep_nesting_is_a_422(attack, yaml_body):
    body = "[" * 100_000 if yaml_body else "[" * 100_000 + "]" * 100_000
    r = attack.call(
        "POST",
        "/v1/jobs",
        who="bob",
        data=body,
        headers={"Content-Type": "application/yaml" if yaml_body else "application/json"},
    )
    assert r.status_code in (413, 422), r.text[:200]
    small = "[" * 5000 + "]" * 5000  # under the body limit: the parser's recursion must not be a 500
    r = attack.call(
        "POST",
        "/v1/jobs",
        who="bob",
        data=small,
        headers={"Content-Type": "application/yaml" if yaml_body else "application/json"},
    )
    assert r.status_code == 422 and "nested" in r.text, r.text[:200]


def test_a_model_outside_the_roots_is_no_existence_oracle(attack):
    answers = []
    for model in ("/etc/hostname", "/etc/no-such-model.bin"):
        spec = demo_spec(str(attack.out("oracle")))
        spec["stages"]["quality"] = {"classifiers": {"web": {"model": model}}}
        r = post(attack, spec)
        assert r.status_code == 422
        detail = r.json()["detail"]
        assert [d["loc"] for d in detail] == [["body", "stages", "quality", "classifiers", "web", "model"]]
        answers.append(detail[0]["msg"].replace(model, "MODEL"))
    assert answers[0] == answers[1] and "not found" not in answers[0]


@pytest.mark.parametrize("key", ["model", "thresholds_file"])
def test_the_langid_files_are_no_existence_oracle_either(attack, key):
    """The keys added for GlotLID-format models (`stages.langid.model`, `.thresholds_file`): a file outside
    the roots is refused with the same answer whether it exists or not, naming the key."""
    answers = []
    for path in ("/etc/hostname", "/etc/no-such-file.yaml"):
        spec = demo_spec(str(attack.out("oracle-lid")))
        spec["stages"]["langid"] = {key: path}
        r = post(attack, spec)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert [d["loc"] for d in detail] == [["body", "stages", "langid", key]]
        answers.append(detail[0]["msg"].replace(path, "PATH"))
    assert answers[0] == answers[1] and "not found" not in answers[0]


def test_removed_tokens_stop_working_without_a_restart(attack):
    original = attack.tokens_file.read_text()
    entries = yaml.safe_load(original)["tokens"]
    try:
        assert attack.call("GET", "/v1/jobs", who="bob").status_code == 200
        attack.tokens_file.write_text(yaml.safe_dump({"tokens": [t for t in entries if t["name"] != "bob"]}))
        deadline = time.monotonic() + 10
        while attack.call("GET", "/v1/jobs", who="bob").status_code != 401:
            assert time.monotonic() < deadline, "bob's removed token still works"
            time.sleep(0.3)
        assert attack.call("GET", "/v1/jobs", who="alice").status_code == 200
    finally:
        attack.tokens_file.write_text(original)
        os.utime(attack.tokens_file)
    deadline = time.monotonic() + 10
    while attack.call("GET", "/v1/jobs", who="bob").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.3)


def test_two_servers_starting_on_a_fresh_database_both_come_up(attack, tmp_path):
    db = tmp_path / "fresh.sqlite"
    servers = []
    for i in range(2):
        (tmp_path / f"s{i}").mkdir()
        srv = Server(tmp_path / f"s{i}", "", attack.env)
        srv.cmd = [c if not c.startswith("sqlite:///") else f"sqlite:///{db}" for c in attack.cmd]
        srv.cmd[srv.cmd.index("--port") + 1] = str(srv.port)
        srv.cmd[srv.cmd.index("--data-dir") + 1] = str(tmp_path / f"s{i}" / "data")
        servers.append(srv)
    for srv in servers:
        srv.launch()  # both at once: they race on the fresh database's migration
    try:
        for srv in servers:
            srv.wait_up()
        assert servers[0].call("GET", "/v1/jobs").json()["total"] == 0
    finally:
        for srv in servers:
            if srv.proc is not None and srv.proc.poll() is None:
                srv.stop()


def test_the_service_state_may_not_live_inside_a_root(attack, tmp_path):
    cmd = [c for c in attack.cmd]
    cmd[cmd.index("--data-dir") + 1] = str(attack.root / "state")
    done = subprocess.run(cmd, env=attack.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "inside an allowed root" in done.stdout


def test_a_read_only_output_is_a_clean_message(tmp_path):
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("needs root and mount(8) for a read-only file system")
    ro = tmp_path / "ro"
    ro.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        spec = tmp_path / "job.yaml"
        spec.write_text(yaml.safe_dump(demo_spec(str(ro / "out"))))
        done = subprocess.run(
            [sys.executable, "-m", "curation.run", str(spec)], capture_output=True, text=True, timeout=300
        )
    finally:
        subprocess.run(["umount", str(ro)], check=True)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "Read-only file system" in done.stderr, done.stderr[-2000:]


def test_a_symlink_cycle_among_input_files_is_quarantined(tmp_path):
    from curation.job import run_job
    from curation.progress import Progress
    from curation.spec import parse_spec

    d = tmp_path / "in"
    d.mkdir()
    _write_docs(d / "good.jsonl", 3)
    (d / "a.jsonl").symlink_to(d / "b.jsonl")
    (d / "b.jsonl").symlink_to(d / "a.jsonl")
    stats = run_job(parse_spec(_small_job(tmp_path, d, tmp_path / "out")), progress=Progress(enabled=False))
    assert stats["kept"] == 3 and stats["quarantined"] == 2
    assert stats["input_records"] == stats["kept"] + stats["rejected"] + stats["quarantined"]


def test_a_user_has_a_bounded_number_of_active_jobs(attack):
    engine = create_engine(f"sqlite:///{attack.db}")
    ids = [f"cj-active-{i}" for i in range(16)]
    for i, job_id in enumerate(ids):
        insert_job(attack, job_id, "root", str(attack.out(f"active-{i}")), state="PENDING")
    try:
        r = post(attack, demo_spec(str(attack.out("active-one-more"))), who="root")
        assert r.status_code == 429 and "16 active jobs" in r.text, r.text
        assert job_rows(attack) >= 16
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM jobs WHERE id LIKE 'cj-active-%'"))
        engine.dispose()


def test_slow_headers_and_bodies_are_cut_off(attack):
    """A client trickling its headers (slowloris) or its body holds its connection only for the timeouts."""
    with socket.create_connection(("127.0.0.1", attack.port), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the headers never end
        assert s.recv(1024) == b""  # closed by the server (the socket's own timeout is 30 s)
    with socket.create_connection(("127.0.0.1", attack.port), timeout=30) as s:
        s.sendall(
            f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKENS['bob']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
        )
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert_healthy(attack)
