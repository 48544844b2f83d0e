"""A small client for the REST API: `curate submit | status | logs | cancel`.

The server comes from `--server` or CURATION_SERVER (default http://127.0.0.1:8000), the token from
CURATION_API_TOKEN; nothing secret is taken from the command line (it would show in `ps`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import requests

DEFAULT_SERVER = "http://127.0.0.1:8000"


class ClientError(RuntimeError):
    pass


class Client:
    def __init__(self, server: str | None = None, token: str | None = None, timeout: float = 30):
        self.server = (server or os.environ.get("CURATION_SERVER") or DEFAULT_SERVER).rstrip("/")
        token = token or os.environ.get("CURATION_API_TOKEN")
        if not token:
            raise ClientError("no API token: set CURATION_API_TOKEN")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def _call(self, method: str, path: str, **kw) -> requests.Response:
        try:
            r = self.session.request(method, self.server + path, timeout=kw.pop("timeout", self.timeout), **kw)
        except requests.RequestException as e:
            raise ClientError(f"cannot reach {self.server}: {e}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail")
            except ValueError:
                detail = r.text[:500]
            if isinstance(detail, list):
                detail = "\n".join(f"  {'.'.join(map(str, d.get('loc', [])[1:]))}: {d.get('msg')}" for d in detail)
            raise ClientError(f"{r.status_code}: {detail}")
        return r

    def submit(self, spec_path: str) -> dict:
        body = Path(spec_path).read_bytes()
        return self._call("POST", "/v1/jobs", data=body, headers={"Content-Type": "application/yaml"}).json()

    def status(self, job_id: str) -> dict:
        return self._call("GET", f"/v1/jobs/{job_id}").json()

    def cancel(self, job_id: str) -> dict:
        return self._call("POST", f"/v1/jobs/{job_id}/cancel").json()

    def logs(self, job_id: str, follow: bool = False):
        if follow:
            r = self._call("GET", f"/v1/jobs/{job_id}/logs", params={"follow": "true"}, stream=True, timeout=None)
            yield from r.iter_content(chunk_size=None, decode_unicode=True)
            return
        offset = 0
        while True:
            page = self._call("GET", f"/v1/jobs/{job_id}/logs", params={"offset": offset, "limit": 5000}).json()
            if page["lines"]:
                yield "\n".join(page["lines"]) + "\n"
            if page["next_offset"] >= page["total"] or not page["lines"]:
                return
            offset = page["next_offset"]


def run_client(command: str, arg: str, server: str | None, follow: bool = False) -> int:
    try:
        c = Client(server)
        if command == "submit":
            job = c.submit(arg)
            print(f"{job['id']}  {job['state']}")
        elif command == "status":
            print(json.dumps(c.status(arg), indent=2))
        elif command == "cancel":
            job = c.cancel(arg)
            print(f"{job['id']}  {job['state']}  {job.get('message') or ''}".rstrip())
        elif command == "logs":
            for chunk in c.logs(arg, follow):
                sys.stdout.write(chunk)
                sys.stdout.flush()
    except (ClientError, OSError) as e:
        print(f"curate {command}: error: {e}", file=sys.stderr)
        return 2
    return 0
