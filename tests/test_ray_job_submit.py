"""The same job through `ray job submit` against a cluster from `ray start --head`, with token auth.

The cluster is this test's own child process (`ray start --block`), ended by its process id; the
suite never calls `ray stop`. Ray >= 2.60 turns token authentication on by default, so the cluster
and the client share RAY_AUTH_MODE=token and a token file (what users must set too; see README).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from curation.cli import demo_spec

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rayhead")
    token = tmp / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("RAY_ADDRESS", None)
    dash = _free_port()
    cmd = [str(BIN / "ray"), "start", "--head", "--block", f"--port={_free_port()}", f"--dashboard-port={dash}",
           "--dashboard-host=127.0.0.1", "--node-ip-address=127.0.0.1", "--num-cpus=2", "--disable-usage-stats",
           # Fixed defaults (e.g. the agent's 52365) clash with the suite's own Ray session: pick free ones.
           *(f"--{flag}={_free_port()}" for flag in ("dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                                                     "metrics-export-port", "runtime-env-agent-port",
                                                     "ray-client-server-port"))]
    log = open(tmp / "ray_start.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 90
        while True:
            probe = subprocess.run([str(BIN / "ray"), "job", "list", "--address", address], env=env,
                                   capture_output=True, timeout=60)
            if probe.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("ray start --head did not come up:\n" + (tmp / "ray_start.log").read_text()[-3000:])
            time.sleep(2)
        yield address, env
    finally:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` drains and ends the processes it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group of our own child, nothing else
            proc.wait()
        log.close()


def test_ray_job_submit_runs_the_curation_job(ray_head, tmp_path):
    address, env = ray_head
    out = tmp_path / "out"
    spec_path = tmp_path / "job.yaml"
    spec_path.write_text(yaml.safe_dump(demo_spec(str(out))))
    cmd = [str(BIN / "ray"), "job", "submit", "--address", address, "--working-dir", str(REPO), "--",
           "python", "-m", "curation.run", str(spec_path), "--quiet"]
    deadline = time.monotonic() + 90
    while True:  # the head's job agent comes up a little after its dashboard answers
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if "No available agent" not in res.stderr or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "succeeded" in (res.stdout + res.stderr).lower()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["input_records"] == 3534
    assert stats["input_records"] == stats["kept"] + stats["rejected"] + stats["quarantined"]
    assert stats["kept"] > 0 and (out / "curated" / "lang=en" / "part-00000.parquet").is_file()


def test_submission_without_the_token_is_refused(ray_head):
    address, env = ray_head
    bad = dict(env, RAY_AUTH_TOKEN_PATH=str(Path(env["RAY_AUTH_TOKEN_PATH"]).with_name("missing")),
               RAY_AUTH_TOKEN="0" * 64)
    res = subprocess.run([str(BIN / "ray"), "job", "list", "--address", address], env=bad, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode != 0
