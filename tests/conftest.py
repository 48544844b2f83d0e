"""Shared fixtures: the real-text data folder and one Ray session for the whole suite.

`ray.init()` costs seconds and about a gigabyte, so every test that needs Ray shares one local
cluster, started here and shut down (by ray.shutdown, never `ray stop`) at the end.
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHARED_DATA = REPO.parent / "shared" / "data"


# Modules whose tests start servers, subprocess jobs or Ray jobs of their own (the fixtures below mark the
# rest that use Ray): deselected by the fast loop, `pytest -m "not slow"`.
SLOW_MODULES = {
    "test_api",
    "test_api_local_head",
    "test_attacks",
    "test_ray_job_submit",
    "test_plugins",
    "test_fault_tolerance",
    "test_ablate",
    "test_distill",
    "test_k8s_manifests",
    "test_s3_input",
}
RAY_FIXTURES = {"ray_session", "ray_head"}


def pytest_collection_modifyitems(config, items):
    """Markers from what a test uses: `ray` (and `slow`) for tests on a Ray cluster, `slow` for the modules
    above, `shared_data` for modules that read ../shared/data."""
    sources: dict[str, str] = {}
    for item in items:
        module = item.module.__name__.rpartition(".")[2]
        if RAY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ray)
            item.add_marker(pytest.mark.slow)
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        path = str(item.module.__file__)
        if path not in sources:
            sources[path] = Path(path).read_text(encoding="utf-8")
        if "SHARED_DATA" in sources[path] or "shared_file(" in sources[path]:
            item.add_marker(pytest.mark.shared_data)


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"shared data {path} not present")
    return path


def read_jsonl_gz(path: Path, limit: int | None = None, where=None) -> list[dict]:
    """Records of a gzipped JSONL file, optionally only those `where(record)` accepts, at most `limit`."""
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if where is None or where(rec):
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    break
    return out


@pytest.fixture(scope="session")
def ray_session():
    import ray

    temp_dir = None
    if not ray.is_initialized():
        # A temp dir of its own: Ray's "latest cluster" file in a shared /tmp/ray would make jobs on
        # the `ray_head` cluster resolve "auto" to this one.
        temp_dir = tempfile.mkdtemp(prefix="ray-tests-", dir="/tmp")
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            _temp_dir=temp_dir,
        )
    yield ray
    ray.shutdown()
    if temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory):
    """A Ray cluster from `ray start --head --block`, the suite's own child process, ended by its pid
    (never `ray stop`). Ray >= 2.60 turns token authentication on by default, so the cluster and its
    clients share RAY_AUTH_MODE=token and a token file, as users must (see README). Yields
    (dashboard address, environment for clients)."""
    tmp = tmp_path_factory.mktemp("rayhead")
    token = tmp / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = dict(
        os.environ,
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("RAY_ADDRESS", None)
    dash = free_port()
    head_temp = tempfile.mkdtemp(prefix="ray-head-", dir="/tmp")
    cmd = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        f"--port={free_port()}",
        f"--dashboard-port={dash}",
        f"--temp-dir={head_temp}",
        "--dashboard-host=127.0.0.1",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--disable-usage-stats",
        # Fixed defaults (e.g. the agent's 52365) clash with the suite's own Ray session: pick free ones.
        *(
            f"--{flag}={free_port()}"
            for flag in (
                "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port",
                "metrics-export-port",
                "runtime-env-agent-port",
                "ray-client-server-port",
            )
        ),
    ]
    log = open(tmp / "ray_start.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 90
        while True:
            probe = subprocess.run(
                [str(BIN / "ray"), "job", "list", "--address", address], env=env, capture_output=True, timeout=60
            )
            if probe.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("ray start --head did not come up:\n" + (tmp / "ray_start.log").read_text()[-3000:])
            time.sleep(2)
        yield address, env
    finally:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` drains and ends the processes it started
        try:  # the drain waits on idle workers for half a minute; the suite has nothing left to save
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group of our own child, nothing else
            proc.wait()
        log.close()
        shutil.rmtree(head_temp, ignore_errors=True)
