"""The service's side of Ray: submit, watch, stop and read logs of jobs through Ray's job API.

Jobs go through `JobSubmissionClient` with the entrypoint `python -m curation.run job.yaml`, the
command a user would give `ray job submit`; the spec travels as the job's working directory. Without
a Ray address the service starts its own head (`ray start --head --block` as a child process, ended
by its pid when the service stops), with token authentication on and a token of its own.
"""

from __future__ import annotations

import logging
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
from typing import AsyncIterator

log = logging.getLogger("curation.api")
RAY_TO_STATE = {
    "PENDING": "PENDING",
    "RUNNING": "RUNNING",
    "SUCCEEDED": "SUCCEEDED",
    "FAILED": "FAILED",
    "STOPPED": "CANCELLED",
}


class RayUnavailable(RuntimeError):
    """The Ray cluster could not be reached."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRayHead:
    """A Ray head owned by the service: started as a child process and ended by its process id."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.address = ""
        self.env: dict[str, str] = {}

    def start(self, timeout: float = 120) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        token = self.data_dir / "ray_auth_token"
        if not token.exists():
            token.write_text(secrets.token_hex(32))
            token.chmod(0o600)
        bindir = str(Path(sys.executable).parent)
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
        env = dict(os.environ, **self.env, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
        env.pop("RAY_ADDRESS", None)
        dash = _free_port()
        ports = {
            f: _free_port()
            for f in (
                "port",
                "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port",
                "metrics-export-port",
                "runtime-env-agent-port",
                "ray-client-server-port",
            )
        }
        # Its own temp dir: Ray resolves "auto" (what a job's driver uses) through a "latest cluster"
        # file in the temp dir, which another cluster on this machine would otherwise overwrite.
        self.temp_dir = tempfile.mkdtemp(prefix="curation-api-ray-", dir="/tmp")
        cmd = [
            str(Path(bindir) / "ray"),
            "start",
            "--head",
            "--block",
            f"--dashboard-port={dash}",
            f"--temp-dir={self.temp_dir}",
            "--dashboard-host=127.0.0.1",
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
            *(f"--{k}={v}" for k, v in ports.items()),
        ]
        self.log = open(self.data_dir / "ray_head.log", "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.address = f"http://127.0.0.1:{dash}"
        # This process talks to the head with the same token.
        os.environ.update(self.env)
        deadline = time.monotonic() + timeout
        while True:
            try:
                from ray.job_submission import JobSubmissionClient

                JobSubmissionClient(self.address).list_jobs()
                log.info("local Ray head at %s (pid %d)", self.address, self.proc.pid)
                return self.address
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RayUnavailable(f"the local Ray head did not start; see {self.data_dir / 'ray_head.log'}")
                time.sleep(1)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # `ray start --block` drains and ends what it started
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


class RayBackend:
    """Thin wrapper over JobSubmissionClient, with Ray's states mapped to the service's."""

    def __init__(self, address: str, job_python: str = "python"):
        self.address = address
        self.job_python = job_python
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            try:
                self._client = JobSubmissionClient(self.address)
            except Exception as e:  # connection refused, auth, wrong address
                raise RayUnavailable(f"cannot reach Ray at {self.address}: {e}") from None
        return self._client

    def submit(
        self, job_id: str, workdir: Path, metadata: dict[str, str], env_vars: dict[str, str] | None = None
    ) -> str:
        """Submit; `env_vars` reach the job's driver and every worker (the service's path policy)."""
        entrypoint = f"{self.job_python} -m curation.run job.yaml"
        runtime_env: dict = {"working_dir": str(workdir)}
        if env_vars:
            runtime_env["env_vars"] = env_vars
        try:
            return self.client.submit_job(
                entrypoint=entrypoint, submission_id=job_id, metadata=metadata, runtime_env=runtime_env
            )
        except RayUnavailable:
            raise
        except Exception as e:
            raise RayUnavailable(f"Ray refused the job: {e}") from None

    def state(self, submission_id: str) -> tuple[str | None, str | None]:
        """(service state, Ray's message); state None when Ray does not know the job."""
        try:
            info = self.client.get_job_info(submission_id)
        except RayUnavailable:
            raise
        except Exception as e:
            text = str(e)
            if "404" in text or "does not exist" in text or "not found" in text.lower():
                return None, None
            raise RayUnavailable(f"cannot query Ray at {self.address}: {e}") from None
        return RAY_TO_STATE.get(str(info.status.value if hasattr(info.status, "value") else info.status)), info.message

    def stop(self, submission_id: str) -> None:
        try:
            self.client.stop_job(submission_id)
        except Exception as e:
            raise RayUnavailable(f"cannot stop job {submission_id}: {e}") from None

    def logs(self, submission_id: str) -> str:
        try:
            return self.client.get_job_logs(submission_id)
        except Exception as e:
            raise RayUnavailable(f"cannot read logs of {submission_id}: {e}") from None

    async def tail(self, submission_id: str) -> AsyncIterator[str]:
        async for chunk in self.client.tail_job_logs(submission_id):
            yield chunk
