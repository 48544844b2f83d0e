"""Shared fixtures: the real-text data folder and one Ray session for the whole suite.

`ray.init()` costs seconds and about a gigabyte, so every test that needs Ray shares one local
cluster, started here and shut down (by ray.shutdown, never `ray stop`) at the end.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    yield ray
    ray.shutdown()
