"""A local multi-node Ray cluster for benchmarks and fault tests: a head and worker nodes, each its own
`ray start --block` child process with its own temp dir and CPU count, ended by pid (never `ray stop`).

    with LocalCluster(workers=2, cpus_per_node=1) as c:
        run_job(job, address=c.address)
        c.kill_worker_raylet(0)      # a node lost mid-job, as a crashed machine would be
"""

from __future__ import annotations

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

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ports() -> list[str]:
    # Fixed defaults (the agent's 52365, ...) clash between nodes of one machine: pick free ones for each.
    return [
        f"--{flag}={free_port()}"
        for flag in (
            "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port",
            "metrics-export-port",
            "runtime-env-agent-port",
            "node-manager-port",
            "object-manager-port",
        )
    ]


def descendants(root: int) -> list[int]:
    """Pids of every process under `root` (itself included), from /proc."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _status_bytes(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    return _status_bytes(pid, "VmRSS:")


def heap_bytes(pid: int) -> int:
    """Private resident memory (RssAnon): RSS less shared pages. Ray's memory guide measures a worker's
    heap this way (RSS - SHR), because object-store pages a worker has read count in its RSS but live
    once, in the node's object store."""
    return _status_bytes(pid, "RssAnon:")


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class LocalCluster:
    """`workers` worker nodes joined to a head with `ray start --address`; `address` is the GCS address
    for `ray.init(address=...)`. The head takes `head_cpus` (default `cpus_per_node`)."""

    def __init__(
        self,
        workers: int = 2,
        cpus_per_node: int = 1,
        head_cpus: int | None = None,
        object_store_mb: int = 400,
        env: dict[str, str] | None = None,
    ):
        self.workers, self.cpus, self.head_cpus = workers, cpus_per_node, head_cpus
        self.object_store = object_store_mb * 1024 * 1024
        self.env = dict(env or os.environ)
        self.env.pop("RAY_ADDRESS", None)
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env.get('PATH', '')}"
        # Ray >= 2.60 turns token authentication on by default: the nodes and their clients share one token.
        self._token_dir = tempfile.mkdtemp(prefix="ray-token-", dir="/tmp")
        token = os.path.join(self._token_dir, "auth_token")
        with open(token, "w") as f:
            f.write(secrets.token_hex(32))
        self.env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=token)
        self.procs: list[subprocess.Popen] = []
        self.temp_dirs: list[str] = []
        self.address = ""

    def _start(self, args: list[str], name: str) -> subprocess.Popen:
        temp = tempfile.mkdtemp(prefix=f"ray-{name}-", dir="/tmp")
        self.temp_dirs.append(temp)
        log = open(os.path.join(temp, "start.log"), "wb")
        cmd = [
            str(BIN / "ray"),
            "start",
            "--block",
            f"--temp-dir={temp}",
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
            f"--object-store-memory={self.object_store}",
            *_ports(),
            *args,
        ]
        proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def __enter__(self) -> "LocalCluster":
        try:
            return self._up()
        except BaseException:
            self.__exit__()  # the nodes that did start end with us
            raise

    def _up(self) -> "LocalCluster":
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self._start(
            [
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                f"--num-cpus={self.head_cpus if self.head_cpus is not None else self.cpus}",
                f"--ray-client-server-port={free_port()}",
            ],
            "head",
        )
        self._wait_nodes(1)
        for i in range(self.workers):
            self._start([f"--address={self.address}", f"--num-cpus={self.cpus}"], f"worker{i}")
        self._wait_nodes(1 + self.workers)
        return self

    def _wait_nodes(self, n: int, timeout: float = 120) -> None:
        code = (
            "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
            "print(sum(1 for x in ray.nodes() if x['Alive']))"
        )
        deadline = time.monotonic() + timeout
        while True:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a ray node did not start (exit {p.returncode}); see {self.temp_dirs}")
            r = subprocess.run(
                [sys.executable, "-c", code, self.address], env=self.env, capture_output=True, text=True, timeout=120
            )
            if r.returncode == 0 and r.stdout.strip().isdigit() and int(r.stdout.strip()) >= n:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{n} ray node(s) not up after {timeout:.0f}s: {r.stderr[-2000:]}")
            time.sleep(1)

    def node_pids(self) -> list[int]:
        """Every process of every node (raylets, GCS, workers), for memory sampling."""
        return [p for proc in self.procs if proc.poll() is None for p in descendants(proc.pid)]

    def kill_worker_raylet(self, index: int = 0) -> int:
        """SIGKILL the raylet of worker node `index` (found among that node's own processes): the node
        dies as if its machine crashed. Returns the killed pid."""
        proc = self.procs[1 + index]
        for pid in descendants(proc.pid):
            if "raylet" in command_line(pid).split(" ")[0]:
                os.kill(pid, signal.SIGKILL)
                return pid
        raise RuntimeError(f"no raylet found under worker node {index}")

    def __exit__(self, *exc) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # `ray start --block` ends the processes it started
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the group of our own child, nothing else
                proc.wait()
        for d in [*self.temp_dirs, self._token_dir]:
            shutil.rmtree(d, ignore_errors=True)
