"""`curate serve`: the API under uvicorn (loopback by default)."""

from __future__ import annotations

import logging

from api.settings import settings_from_env


def serve(host: str, port: int, database: str | None, ray_address: str | None, tokens_file: str | None,
          roots: list[str] | None, data_dir: str | None) -> int:
    import uvicorn

    from api.app import create_app
    from api.settings import load_tokens

    overrides = {"database_url": database, "ray_address": ray_address, "data_dir": data_dir,
                 "tokens": load_tokens(tokens_file) if tokens_file else None, "roots": roots or None}
    settings = settings_from_env(**overrides)
    if not settings.tokens:
        print("curate serve: error: no API tokens configured (create one with `curate token NAME`, then pass "
              "--tokens FILE or set CURATION_API_TOKENS_FILE)")
        return 2
    if not settings.roots:
        print("curate serve: error: no allowed roots for job inputs and outputs (--root PATH, repeatable, or "
              "CURATION_API_ROOTS)")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Request lines carry no secrets (tokens travel in headers, which uvicorn does not log).
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
    return 0
