"""The same job through `ray job submit` against a cluster from `ray start --head` (conftest's
`ray_head`), with token authentication as the README documents it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml

from curation.cli import demo_spec
from tests.conftest import BIN, REPO


def test_ray_job_submit_runs_the_curation_job(ray_head, tmp_path):
    address, env = ray_head
    out = tmp_path / "out"
    spec_path = tmp_path / "job.yaml"
    spec_path.write_text(yaml.safe_dump(demo_spec(str(out))))
    cmd = [
        str(BIN / "ray"),
        "job",
        "submit",
        "--address",
        address,
        "--working-dir",
        str(REPO),
        "--",
        "python",
        "-m",
        "curation.run",
        str(spec_path),
        "--quiet",
    ]
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
    bad = dict(
        env, RAY_AUTH_TOKEN_PATH=str(Path(env["RAY_AUTH_TOKEN_PATH"]).with_name("missing")), RAY_AUTH_TOKEN="0" * 64
    )
    res = subprocess.run(
        [str(BIN / "ray"), "job", "list", "--address", address], env=bad, capture_output=True, text=True, timeout=120
    )
    assert res.returncode != 0
