"""`curate serve` without a Ray address: it starts its own Ray head, runs jobs on it, and ends it."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import requests
from ray.job_submission import JobSubmissionClient

from curation.cli import demo_spec
from tests.test_api import TOKENS, Server


@pytest.fixture
def local_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    srv = Server(tmp_path, ray_address="", env=env)
    srv.cmd = [c for c in srv.cmd if c not in ("--ray-address", "")]  # no address: the service's own head
    srv.start()
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


def test_service_runs_jobs_on_its_own_ray_head_and_ends_it(local_server):
    srv = local_server
    r = srv.call("POST", "/v1/jobs", json=demo_spec(str(srv.out("demo"))))
    assert r.status_code == 201, r.text
    job = srv.wait_state(r.json()["id"], {"SUCCEEDED", "FAILED"})
    assert job["state"] == "SUCCEEDED", job["message"]
    log = (srv.tmp / "server.log").read_text()
    m = re.search(r"local Ray head at (http://127\.0\.0\.1:\d+) \(pid (\d+)\)", log)
    assert m, log[-2000:]
    address, pid = m.group(1), int(m.group(2))
    srv.stop()
    # The head's `ray start` process is gone, and with it the dashboard.
    assert subprocess.run(["ps", "-p", str(pid)], capture_output=True).returncode != 0
    with pytest.raises(Exception):
        JobSubmissionClient(address).list_jobs()
    assert TOKENS  # the same users as the main API tests
    with pytest.raises(requests.ConnectionError):
        requests.get(srv.url + "/healthz", timeout=2)
