"""Settings of the service: from `curate serve` options, else environment variables, else defaults."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field


class TokenEntry(BaseModel):
    """One API user. Only the token's sha256 is stored; the token itself is shown once, at creation."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    admin: bool = False


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database_url: str = Field(
        default_factory=lambda: os.environ.get("CURATION_DATABASE_URL", "sqlite:///curation-api.db")
    )
    ray_address: str | None = Field(default_factory=lambda: os.environ.get("CURATION_RAY_ADDRESS"))
    tokens: list[TokenEntry] = Field(default_factory=list)
    roots: list[str] = Field(default_factory=list, description="input and output paths must be inside one of these")
    data_dir: Path = Field(default_factory=lambda: Path(os.environ.get("CURATION_API_DATA", "curation-api-data")))
    tokens_file: Path | None = Field(None, description="re-read when it changes: a removed token stops working")
    max_body_bytes: int = 1_000_000
    max_spec_nodes: int = Field(100_000, description="nodes of a spec after YAML alias expansion")
    max_spec_depth: int = 64
    body_timeout_s: float = Field(30.0, description="a request body must arrive within this (else 408)")
    header_timeout_s: float = Field(10.0, description="a request's headers must arrive within this")
    reconcile_seconds: float = 2.0
    job_python: str = "python"  # what the Ray job's entrypoint runs: `python -m curation.run job.yaml`
    generator_urls: list[str] = Field(default_factory=list, description="URL prefixes synthesis generators may use")
    generator_key_envs: list[str] = Field(default_factory=list, description="variables `api_key_env` may name")
    allow_uri_options: bool = Field(False, description="let specs give object-store URI options (?endpoint_...)")
    max_active_jobs_per_user: int = Field(16, ge=1, description="PENDING + RUNNING jobs a user may have (429)")
    max_log_streams_per_user: int = Field(4, ge=1, description="concurrent `logs?follow=true` streams (429)")
    max_log_streams: int = Field(64, ge=1, description="concurrent log streams of all users together")
    storage_timeout_s: float = Field(5.0, gt=0, description="reading a job's output (stats, artifacts)")
    storage_threads: int = Field(16, ge=1, description="concurrent reads of job outputs (a quarter per storage)")
    metrics_public: bool = Field(
        False, description="serve /metrics without a token (every job's metrics; for a scraper on a private network)"
    )

    def token_lookup(self) -> dict[str, TokenEntry]:
        return {t.sha256: t for t in self.tokens}


class TokenStore:
    """The API users, re-read from the tokens file whenever it changes (checked at most once a second), so
    removing a token revokes it without a restart. A file that fails to load keeps the last good set."""

    def __init__(self, settings: ApiSettings):
        self.path = settings.tokens_file
        self.tokens = settings.token_lookup()
        self._stamp = self._stat()
        self._checked = time.monotonic()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path) if self.path else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size) if st else None

    def get(self, sha256: str) -> TokenEntry | None:
        if self.path is not None and time.monotonic() - self._checked >= 1.0:
            self._checked = time.monotonic()
            stamp = self._stat()
            if stamp != self._stamp:
                try:
                    self.tokens = {t.sha256: t for t in load_tokens(self.path)}
                    self._stamp = stamp
                except (OSError, ValueError, yaml.YAMLError):
                    logging.getLogger("curation.api").exception("tokens file %s not reloaded", self.path)
        return self.tokens.get(sha256)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "cur_" + secrets.token_urlsafe(32)


def load_tokens(path: str | Path) -> list[TokenEntry]:
    """Read a tokens file: `tokens: [{name, sha256, admin}]` (see `curate token`)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    entries = [TokenEntry.model_validate(t) for t in data.get("tokens", [])]
    names = [t.name for t in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"tokens file {path}: duplicate names")
    return entries


def settings_from_env(**overrides) -> ApiSettings:
    """Defaults, then CURATION_* environment variables, then explicit overrides (CLI options)."""
    values: dict = {}
    if os.environ.get("CURATION_API_TOKENS_FILE"):
        values["tokens_file"] = Path(os.environ["CURATION_API_TOKENS_FILE"])
        values["tokens"] = load_tokens(values["tokens_file"])
    if os.environ.get("CURATION_API_ROOTS"):
        values["roots"] = [r for r in os.environ["CURATION_API_ROOTS"].split(",") if r]
    for var, key in (
        ("CURATION_API_MAX_BODY_BYTES", "max_body_bytes"),
        ("CURATION_API_BODY_TIMEOUT_S", "body_timeout_s"),
        ("CURATION_API_HEADER_TIMEOUT_S", "header_timeout_s"),
        ("CURATION_API_MAX_ACTIVE_JOBS", "max_active_jobs_per_user"),
        ("CURATION_API_STORAGE_TIMEOUT_S", "storage_timeout_s"),
    ):
        if os.environ.get(var):
            values[key] = float(os.environ[var]) if key.endswith("_s") else int(os.environ[var])
    for var, key in (
        ("CURATION_API_GENERATOR_URLS", "generator_urls"),
        ("CURATION_API_GENERATOR_KEY_ENVS", "generator_key_envs"),
    ):
        if os.environ.get(var):
            values[key] = [v for v in os.environ[var].split(",") if v]
    if os.environ.get("CURATION_API_PUBLIC_METRICS"):
        values["metrics_public"] = os.environ["CURATION_API_PUBLIC_METRICS"].lower() in ("1", "true", "yes")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ApiSettings(**values)


def service_state_problem(settings: ApiSettings) -> str | None:
    """Why the service's own state (specs it submits, its database) may not live where jobs write: a job
    with its output there could rewrite another job's spec or the job store."""
    from curation.io.policy import PathPolicy

    policy = PathPolicy(tuple(settings.roots))
    places = [("--data-dir", str(Path(settings.data_dir).resolve()))]
    if settings.database_url.startswith("sqlite:///"):
        places.append(("--database", str(Path(settings.database_url.split("///", 1)[1]).resolve())))
    for what, place in places:
        if policy.problem(place) is None:
            return f"{what} {place} lies inside an allowed root: jobs could write over the service's state"
    return None
