"""Settings of the service: from `curate serve` options, else environment variables, else defaults."""

from __future__ import annotations

import hashlib
import os
import secrets
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

    database_url: str = Field(default_factory=lambda: os.environ.get("CURATION_DATABASE_URL",
                                                                     "sqlite:///curation-api.db"))
    ray_address: str | None = Field(default_factory=lambda: os.environ.get("CURATION_RAY_ADDRESS"))
    tokens: list[TokenEntry] = Field(default_factory=list)
    roots: list[str] = Field(default_factory=list, description="input and output paths must be inside one of these")
    data_dir: Path = Field(default_factory=lambda: Path(os.environ.get("CURATION_API_DATA", "curation-api-data")))
    max_body_bytes: int = 1_000_000
    reconcile_seconds: float = 2.0
    job_python: str = "python"  # what the Ray job's entrypoint runs: `python -m curation.run job.yaml`

    def token_lookup(self) -> dict[str, TokenEntry]:
        return {t.sha256: t for t in self.tokens}


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
        values["tokens"] = load_tokens(os.environ["CURATION_API_TOKENS_FILE"])
    if os.environ.get("CURATION_API_ROOTS"):
        values["roots"] = [r for r in os.environ["CURATION_API_ROOTS"].split(",") if r]
    if os.environ.get("CURATION_API_MAX_BODY_BYTES"):
        values["max_body_bytes"] = int(os.environ["CURATION_API_MAX_BODY_BYTES"])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ApiSettings(**values)
