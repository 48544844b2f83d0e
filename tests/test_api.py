"""The REST API for real: `curate serve` under uvicorn on a loopback port, a SQLite file, and jobs on
the suite's `ray start --head` cluster (conftest's `ray_head`)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from api.settings import hash_token
from curation.cli import demo_spec
from tests.conftest import BIN, REPO, SHARED_DATA, free_port

TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789", "root": "root-token-0123456789"}


class Server:
    """`curate serve` as a child process; stop() ends it by its pid and start() brings it back on the
    same port and database (a restart)."""

    def __init__(self, tmp: Path, ray_address: str, env: dict[str, str], extra: tuple[str, ...] = ()):
        self.tmp, self.port = tmp, free_port()
        self.root = tmp / "root"  # where users' jobs read and write; the service's own state stays outside
        self.root.mkdir(exist_ok=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.generator_port = free_port()  # the one generator URL this service allows (tests/openai_server.py)
        tokens = [{"name": n, "sha256": hash_token(t), "admin": n == "root"} for n, t in TOKENS.items()]
        self.tokens_file = tmp / "tokens.yaml"
        self.tokens_file.write_text(yaml.safe_dump({"tokens": tokens}))
        self.db = tmp / "api.sqlite"
        self.cmd = [
            str(BIN / "curate"),
            "serve",
            "--port",
            str(self.port),
            "--database",
            f"sqlite:///{self.db}",
            "--ray-address",
            ray_address,
            "--tokens",
            str(self.tokens_file),
            "--root",
            str(self.root),
            "--root",
            str(REPO / "curation" / "demo"),
            "--root",
            str(SHARED_DATA),
            "--data-dir",
            str(tmp / "data"),
            "--generator-url",
            f"http://127.0.0.1:{self.generator_port}/v1",
            *extra,
        ]
        self.env = dict(env, CURATION_API_MAX_BODY_BYTES="200000")
        self.proc = None

    def out(self, name: str) -> Path:
        """An output folder inside the server's roots."""
        return self.root / "outputs" / name

    def start(self) -> None:
        self.launch()
        self.wait_up()

    def launch(self) -> None:
        self.log = open(self.tmp / "server.log", "ab")
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_up(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + (self.tmp / "server.log").read_text()[-3000:])
            time.sleep(0.3)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:  # with its own Ray head, the service waits for the head to drain (up to 30 s)
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def call(self, method: str, path: str, who: str | None = "alice", **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if who is not None:
            headers["Authorization"] = f"Bearer {TOKENS[who]}"
        kw.setdefault("timeout", 60)
        return requests.request(method, self.url + path, headers=headers, **kw)

    def wait_state(self, job_id: str, states: set[str], timeout: float = 240, who: str = "alice") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.call("GET", f"/v1/jobs/{job_id}", who).json()
            if job["state"] in states:
                return job
            assert time.monotonic() < deadline, f"job stuck in {job['state']}: {job}"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def server(tmp_path_factory, ray_head):
    address, env = ray_head
    srv = Server(tmp_path_factory.mktemp("api"), address, env)
    srv.start()
    yield srv
    srv.stop()


def slow_spec(out: Path) -> dict:
    """The whole Reuters corpus through every stage: long enough to cancel or restart around (a test that
    needs it skips in a clone without ../shared)."""
    if not (SHARED_DATA / "news_reuters21578.jsonl.gz").exists():
        pytest.skip("needs ../shared/data for a job that runs long enough to cancel or restart around")
    return {
        "name": "reuters-full",
        "output": str(out),
        "inputs": [{"path": str(SHARED_DATA / "news_reuters21578.jsonl.gz"), "format": "jsonl", "source": "reuters"}],
        "stages": {
            "langid": {},
            "filters": {"gopher_quality": {}, "gopher_repetition": {}, "c4": {}, "fineweb": {}},
            "dedup": {"exact": {}, "minhash": {}},
        },
        "execution": {"batch_size": 500},
    }


def test_health_needs_no_token_but_jobs_do(server):
    assert server.call("GET", "/healthz", who=None).json()["status"] == "ok"
    assert server.call("GET", "/v1/jobs", who=None).status_code == 401
    r = server.call("GET", "/v1/jobs", who=None, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert server.call("GET", "/v1/jobs/cj-0/logs", who=None).status_code == 401
    assert "/v1/jobs" in server.call("GET", "/openapi.json", who=None).json()["paths"]


@pytest.fixture(scope="module")
def demo_job(server):
    """The demo run through the service once (its submission checked here), for the tests that read it."""
    r = server.call("POST", "/v1/jobs", json=demo_spec(str(server.out("demo-job"))))
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] in ("PENDING", "RUNNING") and job["owner"] == "alice"
    done = server.wait_state(job["id"], {"SUCCEEDED", "FAILED"})
    assert done["state"] == "SUCCEEDED", done
    return done


def test_job_runs_to_success_with_stats_report_and_logs(server, demo_job):
    job = done = demo_job
    assert done["started_at"] and done["finished_at"]
    stats = done["stats"]
    assert stats["input_records"] == 3534 == stats["kept"] + stats["rejected"] + stats["quarantined"]
    assert done["progress"]["phase"] == "done"
    arts = server.call("GET", f"/v1/jobs/{job['id']}/artifacts").json()
    names = {a["name"] for a in arts["artifacts"]}
    assert {"stats.json", "report.html", "job.yaml"} <= names and arts["stats"] == stats
    report = server.call("GET", f"/v1/jobs/{job['id']}/artifacts/report.html")
    assert report.headers["content-type"].startswith("text/html") and "Curation report" in report.text
    assert server.call("GET", f"/v1/jobs/{job['id']}/artifacts/secrets.txt").status_code == 404
    page = server.call("GET", f"/v1/jobs/{job['id']}/logs", params={"limit": 5}).json()
    assert len(page["lines"]) == 5 and page["total"] > 5 and page["next_offset"] == 5
    streamed = server.call("GET", f"/v1/jobs/{job['id']}/logs", params={"follow": "true"})
    assert streamed.status_code == 200 and "input 3,534 = kept" in streamed.text  # ends with the finished job
    listed = server.call("GET", "/v1/jobs", params={"state": "SUCCEEDED"}).json()
    assert job["id"] in [j["id"] for j in listed["jobs"]]
    metrics = server.call("GET", "/metrics").text
    assert 'curation_jobs{state="SUCCEEDED"}' in metrics and "curation_api_requests_total" in metrics


def test_yaml_body_and_job_listing_scoped_to_owner(server, tmp_path):
    body = yaml.safe_dump(demo_spec(str(server.out(tmp_path.name))))
    r = server.call("POST", "/v1/jobs", who="bob", data=body, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert server.call("GET", f"/v1/jobs/{job_id}", who="alice").status_code == 404
    assert server.call("POST", f"/v1/jobs/{job_id}/cancel", who="alice").status_code == 404
    assert server.call("GET", f"/v1/jobs/{job_id}/artifacts", who="alice").status_code == 404
    assert job_id not in [j["id"] for j in server.call("GET", "/v1/jobs", who="alice").json()["jobs"]]
    assert server.call("GET", f"/v1/jobs/{job_id}", who="root").status_code == 200  # admin sees all
    assert job_id in [
        j["id"] for j in server.call("GET", "/v1/jobs", who="root", params={"owner": "bob"}).json()["jobs"]
    ]
    server.wait_state(job_id, {"SUCCEEDED", "FAILED"}, who="bob")


def test_bad_spec_is_422_with_the_key_path(server, tmp_path):
    spec = demo_spec(str(server.out(tmp_path.name)))
    spec["stages"]["filters"]["gopher_quality"] = {"min_words": 3}
    spec["inputs"][0].pop("source")
    r = server.call("POST", "/v1/jobs", json=spec)
    assert r.status_code == 422
    locs = [d["loc"] for d in r.json()["detail"]]
    assert ["body", "stages", "filters", "gopher_quality", "min_words"] in locs
    assert ["body", "inputs", "0", "source"] in locs
    r = server.call("POST", "/v1/jobs", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert server.call("GET", "/v1/jobs", params={"state": "BOGUS"}).status_code == 422


@pytest.mark.parametrize(
    "field, value",
    [
        ("output", "/etc/curated"),
        ("input", "/etc/passwd"),
        ("input", "{root}/../../etc/passwd"),
        ("output", "s3://other-bucket/out"),
    ],
)
def test_paths_outside_the_roots_are_refused(server, tmp_path, field, value):
    spec = demo_spec(str(server.out(tmp_path.name)))
    value = value.format(root=server.root)
    if field == "output":
        spec["output"] = value
    else:
        spec["inputs"][0]["path"] = value
    r = server.call("POST", "/v1/jobs", json=spec)
    assert r.status_code == 422, r.text
    loc = r.json()["detail"][0]["loc"]
    assert loc == (["body", "output"] if field == "output" else ["body", "inputs", "0", "path"])


def test_mix_and_ablate_specs_are_jobs_too(server, tmp_path):
    out = str(server.out(tmp_path.name))
    bad = {"kind": "ablate", "inputs": [out], "output": out, "target_tokens": 10, "proxy": "mamba"}
    r = server.call("POST", "/v1/jobs", json=bad)
    assert r.status_code == 422 and ["body", "proxy"] in [d["loc"] for d in r.json()["detail"]]
    outside = {"kind": "mix", "inputs": ["/etc"], "output": out, "target_tokens": 10}
    r = server.call("POST", "/v1/jobs", json=outside)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "inputs", "0"]
    # A model file outside the roots is refused like an input (the job would read it).
    spec = demo_spec(out)
    spec["stages"]["quality"] = {"classifiers": {"web": {"model": "/etc/hostname"}}}
    r = server.call("POST", "/v1/jobs", json=spec)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "stages", "quality", "classifiers", "web", "model"]
    # A valid ablate spec runs as a Ray job (dispatched on its kind) and fails with the job's own message.
    r = server.call(
        "POST",
        "/v1/jobs",
        json={"kind": "ablate", "inputs": [str(server.out("no-such-pool"))], "output": out, "target_tokens": 10},
    )
    assert r.status_code == 201 and r.json()["kind"] == "ablate"
    done = server.wait_state(r.json()["id"], {"SUCCEEDED", "FAILED"})
    assert done["state"] == "FAILED"
    logs = server.call("GET", f"/v1/jobs/{done['id']}/logs").json()["lines"]
    assert any("does not exist" in line for line in logs), logs[-5:]


def test_synthesize_spec_runs_as_a_job(server, tmp_path):
    """kind: synthesize through the API: validated (422 with the key path), then run as a Ray job against an
    OpenAI-compatible server on loopback (tests/openai_server.py)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.openai_server import OpenAITestServer

    inp = server.out(tmp_path.name + "-in") / "curated"
    inp.mkdir(parents=True)
    texts = [
        f"Story {i}. The harvest was large this year and prices fell. Farmers in the region said they would "
        f"store more grain. The ministry expects exports to grow by {i} percent next year."
        for i in range(12)
    ]
    pq.write_table(
        pa.table(
            {
                "id": [f"s{i}" for i in range(12)],
                "text": texts,
                "source": ["news"] * 12,
                "domain": ["web"] * 12,
                "lang": ["en"] * 12,
            }
        ),
        inp / "part-00000.parquet",
    )
    with OpenAITestServer(port=server.generator_port) as srv:
        spec = {
            "kind": "synthesize",
            "inputs": [str(inp.parent)],
            "output": str(server.out(tmp_path.name)),
            "tasks": {"wiki": {"template": "wikipedia", "select": {"min_chars": 100}}},
            "generator": {"model": "tiny", "base_url": srv.url, "max_retries": 1, "backoff_s": 0.05, "timeout_s": 0.5},
        }
        bad = {**spec, "tasks": {"wiki": {"template": "sonnet"}}}
        r = server.call("POST", "/v1/jobs", json=bad)
        assert r.status_code == 422 and ["body", "tasks", "wiki", "template"] in [d["loc"] for d in r.json()["detail"]]
        r = server.call("POST", "/v1/jobs", json=spec)
        assert r.status_code == 201 and r.json()["kind"] == "synthesize", r.text
        done = server.wait_state(r.json()["id"], {"SUCCEEDED", "FAILED"})
    assert done["state"] == "SUCCEEDED", done
    stats = done["stats"]
    assert stats["units"] == 12 == stats["kept"] + stats["rejected"] + stats["failed"] and stats["kept"] > 0
    report = server.call("GET", f"/v1/jobs/{done['id']}/artifacts/report.html")
    assert "Synthesis report" in report.text


def test_request_body_size_limit(server):
    r = server.call("POST", "/v1/jobs", data=b"x" * 300_000, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 413


def test_cancel_a_running_job(server, tmp_path):
    job_id = server.call("POST", "/v1/jobs", json=slow_spec(server.out(tmp_path.name))).json()["id"]
    server.wait_state(job_id, {"RUNNING"}, timeout=120)
    r = server.call("POST", f"/v1/jobs/{job_id}/cancel")
    assert r.status_code == 202, r.text
    done = server.wait_state(job_id, {"CANCELLED", "SUCCEEDED", "FAILED"}, timeout=120)
    assert done["state"] == "CANCELLED", done
    assert server.call("POST", f"/v1/jobs/{job_id}/cancel").status_code == 409
    assert not (server.out(tmp_path.name) / "stats.json").exists()


def test_server_restart_mid_job_keeps_the_job(server, tmp_path):
    job_id = server.call("POST", "/v1/jobs", json=slow_spec(server.out(tmp_path.name))).json()["id"]
    server.wait_state(job_id, {"RUNNING"}, timeout=120)
    server.stop()
    server.start()
    job = server.call("GET", f"/v1/jobs/{job_id}").json()
    assert job["state"] in ("RUNNING", "SUCCEEDED"), job
    done = server.wait_state(job_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=300)
    assert done["state"] == "SUCCEEDED", done
    assert done["stats"]["input_records"] == 21577


def test_jobs_ray_does_not_know_end_failed_with_a_reason(server):
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{server.db}")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO jobs (id, owner, name, kind, state, spec_yaml, output, ray_submission_id, "
                "created_at, updated_at) VALUES ('cj-lost', 'alice', 'lost', 'curate', 'RUNNING', '{}', "
                "'/nonexistent', 'cj-lost', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    engine.dispose()
    job = server.wait_state("cj-lost", {"FAILED"}, timeout=30)
    assert "lost with the Ray cluster" in job["message"]


# --- property-based fuzzing of every operation in /openapi.json --------------------------------


def test_fuzzed_requests_never_get_a_server_error(server):
    """Schemathesis generates requests for every operation of the live OpenAPI document (valid and
    invalid bodies, parameters, paths), sent with and without a token: none may get a 5xx, and every status
    code that comes back is one the document declares for that operation (with the error model)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    doc = requests.get(server.url + "/openapi.json", timeout=30).json()
    declared = {
        (method.upper(), path): set(op["responses"]) for path, ops in doc["paths"].items() for method, op in ops.items()
    }
    ids = {op["operationId"] for ops in doc["paths"].values() for op in ops.values()}
    assert ids == {
        "healthz",
        "metrics",
        "submit",
        "list_jobs",
        "get_job",
        "cancel",
        "logs",
        "artifacts",
        "artifact",
        "samples",
        "trace",
        "documents",
        "diff",
    }
    for (method, path), codes in declared.items():
        if path != "/healthz":
            assert "401" in codes, (method, path)
        for code in codes - {"200", "201", "202"}:
            op = doc["paths"][path][method.lower()]
            assert op["responses"][code]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorOut"
            }, (method, path, code)
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 9
    failures = []
    undeclared = []
    calls = []
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case):
            for who in ("alice", None):
                headers = {"Authorization": f"Bearer {TOKENS[who]}"} if who else {}
                response = case.call(headers=headers)
                calls.append(response.status_code)
                if str(response.status_code) not in declared[(case.method.upper(), case.operation.path)]:
                    undeclared.append(f"{case.method} {case.operation.path}: {response.status_code}")
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}"
                    )

        run()
    print(f"\n{len(calls)} fuzzed requests over {len(operations)} operations; status codes: {sorted(set(calls))}")
    assert len(calls) >= 10 * len(operations)
    assert not failures, failures[:5]
    assert not undeclared, sorted(set(undeclared))


# --- metrics: per job and stage while it runs ----------------------------------------------------


def _metric(text: str, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def _long_corpus(path: Path, n: int) -> Path:
    """`n` generated English-like documents: enough to watch the funnel grow between scrapes."""
    import json
    import random

    words = (
        "the of and to in a is that for it as was with be by on not he this are or his from at which but "
        "river city market school winter music garden letter museum village harbour station"
    ).split()
    with path.open("w") as f:
        for i in range(n):
            rng = random.Random(i)
            text = " ".join(rng.choice(words) for _ in range(60 + i % 40)) + "."
            f.write(json.dumps({"id": f"m{i}", "text": text}) + "\n")
    return path


def _watch_spec(server, name: str, label: str, n: int) -> dict:
    """A job over `n` generated documents, long enough to watch while it runs."""
    src = _long_corpus(server.root / f"{name}.jsonl", n)
    return {
        "name": label,
        "output": str(server.out(name)),
        "languages": "all",
        "inputs": [{"path": str(src), "format": "jsonl", "source": "gen"}],
        "stages": {"langid": {}, "filters": {"gopher_quality": {}, "gopher_repetition": {}}},
        "execution": {"batch_size": 500},
    }


def test_metrics_follow_a_running_job_stage_by_stage(server, tmp_path):
    """/metrics during a running job: per-stage counters of that job grow from scrape to scrape, drops are
    labelled by stage and reason; a user sees only their jobs, an admin all, no token gets 401; durations of
    finished jobs appear once it ends."""
    spec = _watch_spec(server, tmp_path.name, "metrics-watch", 60_000)
    r = server.call("POST", "/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    server.wait_state(job_id, {"RUNNING"}, timeout=120)
    assert server.call("GET", "/metrics", who=None).status_code == 401
    seen: list[float] = []
    reasons = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        text = server.call("GET", "/metrics").text
        value = _metric(text, "curation_job_stage_records", job=job_id, stage="langid", side="in")
        if value is not None and (not seen or value != seen[-1]):
            seen.append(value)
            reasons = _metric(text, "curation_job_dropped_records", job=job_id, stage="gopher_quality")
        if len(seen) >= 3 or server.call("GET", f"/v1/jobs/{job_id}").json()["state"] != "RUNNING":
            break
        time.sleep(0.3)
    assert len(seen) >= 2 and seen == sorted(seen) and seen[-1] <= 60_000, seen
    assert reasons is not None and reasons > 0  # e.g. stage="gopher_quality", reason="gopher_quality:stop_words"
    admin = server.call("GET", "/metrics", who="root").text
    others = server.call("GET", "/metrics", who="bob").text
    if _metric(admin, "curation_job_stage_records", job=job_id) is not None:  # (unless it ended in between)
        assert _metric(others, "curation_job_stage_records", job=job_id) is None
    done = server.wait_state(job_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=300)
    assert done["state"] == "SUCCEEDED", done
    text = server.call("GET", "/metrics").text
    assert _metric(text, "curation_job_stage_records", job=job_id) is None  # only running jobs
    assert _metric(text, "curation_job_duration_seconds_count", kind="curate", state="SUCCEEDED") >= 1
    assert _metric(text, "curation_jobs_by_kind", kind="curate", state="SUCCEEDED") >= 1


def test_public_metrics_need_no_token(tmp_path, ray_head):
    address, env = ray_head
    srv = Server(tmp_path, address, env, extra=("--public-metrics",))
    srv.start()
    try:
        r = srv.call("GET", "/metrics", who=None)
        assert r.status_code == 200 and "curation_api_requests_total" in r.text
        assert srv.call("GET", "/v1/jobs", who=None).status_code == 401  # the rest still needs one
    finally:
        srv.stop()


# --- inspection routes and the web console -----------------------------------------------------


def test_samples_trace_and_documents_routes(server, demo_job):
    job_id, stats = demo_job["id"], demo_job["stats"]
    got = server.call("GET", f"/v1/jobs/{job_id}/samples").json()
    assert set(stats["by_reason"]) <= set(got["reasons"])
    low = server.call("GET", f"/v1/jobs/{job_id}/samples", params={"reason": "gopher_quality:word_count_low"}).json()
    assert low["samples"] and all(s["value"] < s["threshold"] for s in low["samples"])
    pick = low["samples"][0]
    trace = server.call("GET", f"/v1/jobs/{job_id}/trace", params={"doc_id": pick["id"]}).json()
    rec = trace["records"][0]
    assert rec["drop_reason"] == "gopher_quality:word_count_low" and rec["position"] == pick["position"]
    by_pos = server.call(
        "GET", f"/v1/jobs/{job_id}/trace", params={"input": rec["input_ordinal"], "position": rec["position"]}
    ).json()
    assert by_pos["records"][0]["id"] == pick["id"]
    assert server.call("GET", f"/v1/jobs/{job_id}/trace", params={"doc_id": "nope"}).status_code == 404
    assert server.call("GET", f"/v1/jobs/{job_id}/trace").status_code == 422
    docs = server.call(
        "GET", f"/v1/jobs/{job_id}/documents", params={"status": "rejected", "reason": "c4:too_few_sentences"}
    ).json()["documents"]
    assert len(docs) == 20 and all(d["drop_reason"] == "c4:too_few_sentences" for d in docs)
    page2 = server.call(
        "GET",
        f"/v1/jobs/{job_id}/documents",
        params={"status": "rejected", "reason": "c4:too_few_sentences", "offset": 20},
    ).json()["documents"]
    assert page2 and not {d["id"] for d in page2} & {d["id"] for d in docs}
    kept_de = server.call("GET", f"/v1/jobs/{job_id}/documents", params={"lang": "de"}).json()["documents"]
    assert len(kept_de) == stats["by_lang"]["de"]["kept"]
    # another user's job does not exist for bob; a diff of a run with itself moves nothing
    assert server.call("GET", f"/v1/jobs/{job_id}/samples", who="bob").status_code == 404
    same = server.call("GET", "/v1/diff", params={"a": job_id, "b": job_id}).json()
    assert same["moved"] == 0 and same["documents"] == stats["input_records"]


def test_a_plan_job_reads_only_inside_the_roots(server, tmp_path):
    spec = demo_spec(str(server.out(tmp_path.name + "-x")))
    spec["inputs"][0]["path"] = "/etc/passwd"
    r = server.call("POST", "/v1/jobs", json={"kind": "plan", "output": str(server.out(tmp_path.name)), "job": spec})
    assert r.status_code == 422 and any(d["loc"][:2] == ["body", "job"] for d in r.json()["detail"]), r.text


def test_inspection_routes_do_not_follow_links_planted_in_an_output(server, demo_job, tmp_path):
    """A user who can write into a root plants a lineage file that is a link to another file: the
    routes skip it rather than read through it."""
    import shutil

    job_id = demo_job["id"]
    out = Path(demo_job["output"])
    victim = tmp_path / "elsewhere.parquet"
    lineage = out / "lineage" / "part-00000.parquet"
    shutil.copy(lineage, victim)
    pick = server.call("GET", f"/v1/jobs/{job_id}/trace", params={"input": 0, "position": 5}).json()["records"][0]
    lineage.unlink()
    lineage.symlink_to(victim)
    try:
        r = server.call("GET", f"/v1/jobs/{job_id}/trace", params={"doc_id": pick["id"]})
        assert r.status_code == 404, r.text
    finally:
        lineage.unlink()
        shutil.copy(victim, lineage)


def test_a_lineage_row_naming_a_file_outside_the_output_is_not_read(server, demo_job, tmp_path):
    """A user who can write into their own output rewrites a lineage file (a real file, no link) so that a
    row's output points at another folder (`../../elsewhere/secret.parquet`): trace refuses the path rather
    than read it."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(demo_job["output"])
    secret = out.parent.parent / "elsewhere" / "secret.parquet"
    secret.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": ["s"], "text": ["the other user's text"]}), secret)
    lineage = out / "lineage" / "part-00000.parquet"
    keep = tmp_path / "lineage.parquet"
    shutil.copy(lineage, keep)
    t = pq.read_table(lineage)
    rel = os.path.relpath(secret, out)
    t = t.set_column(t.schema.get_field_index("output"), "output", pa.array([rel] * len(t), pa.string()))
    t = t.set_column(t.schema.get_field_index("row"), "row", pa.array([0] * len(t), pa.int64()))
    pq.write_table(t, lineage)
    try:
        r = server.call("GET", f"/v1/jobs/{demo_job['id']}/trace", params={"input": 0, "position": 5})
        assert r.status_code == 404 and "leaves the job's output" in r.text, r.text
        assert "the other user's text" not in r.text
    finally:
        shutil.copy(keep, lineage)


def _browser(tmp_path: Path):
    import shutil

    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        opts.add_argument(arg)
    # the driver's own process, ended by quit() (selenium stops the service it started, by its pid)
    return webdriver.Chrome(service=Service(driver, log_output=str(tmp_path / "chromedriver.log")), options=opts)


ARTIFACTS = Path(os.environ.get("CURATION_TEST_ARTIFACTS", REPO / "test-artifacts"))


def test_console_in_a_headless_browser(server, tmp_path):
    """Log in, open a running job and watch its records advance, then open a drop reason's samples and a
    sample's lineage; screenshots go to test-artifacts/."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser(tmp_path)
    try:
        spec = _watch_spec(server, tmp_path.name, "console-watch", 40_000)
        src = spec["inputs"][0]["path"]
        r = server.call("POST", "/v1/jobs", json=spec)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        wait = WebDriverWait(browser, 240, poll_frequency=0.2)
        browser.get(f"{server.url}/console#/job/{job_id}")
        wait.until(ec.presence_of_element_located((By.ID, "token"))).send_keys(TOKENS["alice"])
        browser.find_element(By.ID, "login").click()
        seen: list[int] = []
        deadline = time.monotonic() + 240
        state = ""
        while time.monotonic() < deadline:
            try:
                state = browser.find_element(By.ID, "state").text
                records = int(browser.find_element(By.ID, "progress").get_attribute("data-records"))
            except Exception:  # the page is being redrawn
                time.sleep(0.2)
                continue
            if state == "RUNNING" and records and (not seen or records != seen[-1]):
                seen.append(records)
            if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            time.sleep(0.2)
        assert state == "SUCCEEDED", state
        assert len(seen) >= 2 and seen == sorted(seen) and seen[0] < 40_000, seen  # it advanced while running
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        button = wait.until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, "button.reason[data-reason^='gopher_quality:']"))
        )
        reason = button.get_attribute("data-reason")
        button.click()
        link = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#sample-list .sample a.lineage")))
        sample_meta = browser.find_element(By.CSS_SELECTOR, "#sample-list .sample .meta").text
        assert "threshold" in sample_meta, sample_meta  # the rule's value and threshold beside the sample
        browser.save_screenshot(str(ARTIFACTS / "console-samples.png"))
        link.click()
        stages = wait.until(ec.presence_of_element_located((By.ID, "stages")))
        assert "dropped" in stages.text and reason in stages.text
        assert src in browser.find_element(By.ID, "origin").text
        browser.save_screenshot(str(ARTIFACTS / "console-lineage.png"))
        assert (ARTIFACTS / "console-lineage.png").stat().st_size > 10_000
        # a plan of the same job, from the plan page
        browser.get(f"{server.url}/console#/plan")
        planned = {**spec, "execution": {"engine": "local"}}
        wait.until(ec.presence_of_element_located((By.ID, "plan-spec"))).send_keys(yaml.safe_dump(planned))
        browser.find_element(By.ID, "plan-output").send_keys(str(server.out(tmp_path.name + "-plan")))
        sample = browser.find_element(By.ID, "plan-sample")
        sample.clear()
        sample.send_keys("400")
        browser.find_element(By.ID, "plan-submit").click()
        kept = wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "#plan-figures td[data-key='kept_documents']"))
        )
        assert int(kept.text.replace(",", "")) == pytest.approx(39_993, rel=0.05)  # the run above kept 39,993
        browser.save_screenshot(str(ARTIFACTS / "console-plan.png"))
    finally:
        browser.quit()
