"""Load run for the REST API: N concurrent clients polling a job's status on loopback.

Starts `curate serve` (its own local Ray head, a SQLite file, in a temporary folder), submits the demo
job, then has `--clients` threads poll `GET /v1/jobs/{id}` for `--seconds`; prints requests per
second, errors and latency percentiles. Every loop is bounded in time and count, and the server is
ended by its process id.

    python bench/api_load.py --clients 50 --seconds 20 [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))

from api.settings import hash_token  # noqa: E402
from curation.cli import demo_spec  # noqa: E402

MAX_REQUESTS_PER_CLIENT = 100_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="api-load-"))
    token = "load-token-0123456789"
    (tmp / "tokens.yaml").write_text(yaml.safe_dump({"tokens": [{"name": "load", "sha256": hash_token(token)}]}))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / "server.log", "wb")
    server = subprocess.Popen([str(BIN / "curate"), "serve", "--port", str(port), "--database",
                               f"sqlite:///{tmp / 'api.sqlite'}", "--tokens", str(tmp / "tokens.yaml"), "--root",
                               str(tmp / "root"), "--root", str(REPO / "curation" / "demo"),
                               "--data-dir", str(tmp / "data")],  # the service's state outside the roots
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(url + "/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print("server did not start; see", tmp / "server.log", file=sys.stderr)
                return 1
            time.sleep(0.5)
        headers = {"Authorization": f"Bearer {token}"}
        job = requests.post(url + "/v1/jobs", json=demo_spec(str(tmp / "root" / "out")), headers=headers, timeout=60).json()
        target = f"{url}/v1/jobs/{job['id']}"
        latencies: list[list[float]] = [[] for _ in range(args.clients)]
        errors = [0] * args.clients
        states: set[str] = set()
        stop_at = time.monotonic() + args.seconds

        def client(i: int) -> None:
            s = requests.Session()
            s.headers.update(headers)
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= stop_at:
                    return
                t0 = time.perf_counter()
                try:
                    r = s.get(target, timeout=30)
                    ok = r.status_code == 200
                    if ok:
                        states.add(r.json()["state"])
                except requests.RequestException:
                    ok = False
                latencies[i].append(time.perf_counter() - t0)
                errors[i] += 0 if ok else 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        lat = sorted(x for per in latencies for x in per)
        n = len(lat)
        result = {"clients": args.clients, "seconds": round(wall, 2), "requests": n, "errors": sum(errors),
                  "requests_per_second": round(n / wall, 1),
                  "latency_ms": {"p50": round(1000 * lat[n // 2], 1), "p99": round(1000 * lat[int(n * 0.99)], 1),
                                 "mean": round(1000 * statistics.fmean(lat), 1)},
                  "job_states_seen": sorted(states)}
        print(f"{args.clients} clients polling GET /v1/jobs/ID for {wall:.1f}s: {n:,} requests, "
              f"{result['requests_per_second']:,} req/s, {result['errors']} errors, latency p50 "
              f"{result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms; "
              f"job states seen: {', '.join(result['job_states_seen'])}")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        return 0 if result["errors"] == 0 else 1
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=90)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
