"""`curate serve`: the API under uvicorn (loopback by default)."""

from __future__ import annotations

import asyncio
import logging

from api.settings import service_state_problem, settings_from_env


def _header_timeout_protocol(timeout: float):
    """uvicorn's h11 protocol with a deadline for each request's headers: uvicorn has no header timeout of its
    own, so a client that trickles a header a byte at a time (slowloris) would hold its connection forever."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._header_timer = asyncio.get_event_loop().call_later(timeout, self._headers_late)

        def _headers_late(self) -> None:
            # Nothing in flight (no request whose headers arrived): the headers were not sent in time.
            if self.cycle is None or self.cycle.response_complete:
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.close()

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before and self.cycle is not None:
                self._header_timer.cancel()  # a request's headers are in

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._header_timer.cancel()
            self._arm()  # the next request on this keep-alive connection gets its own deadline

        def connection_lost(self, exc) -> None:
            self._header_timer.cancel()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


def serve(
    host: str,
    port: int,
    database: str | None,
    ray_address: str | None,
    tokens_file: str | None,
    roots: list[str] | None,
    data_dir: str | None,
    **policy,
) -> int:
    import uvicorn

    from api.app import create_app
    from api.settings import load_tokens

    overrides = {
        "database_url": database,
        "ray_address": ray_address,
        "data_dir": data_dir,
        "tokens": load_tokens(tokens_file) if tokens_file else None,
        "tokens_file": tokens_file,
        "roots": roots or None,
        "generator_urls": policy.get("generator_urls"),
        "generator_key_envs": policy.get("generator_key_envs"),
        "allow_uri_options": policy.get("allow_uri_options"),
        "max_active_jobs_per_user": policy.get("max_active_jobs"),
        "metrics_public": policy.get("metrics_public"),
    }
    settings = settings_from_env(**overrides)
    if not settings.tokens:
        print(
            "curate serve: error: no API tokens configured (create one with `curate token NAME`, then pass "
            "--tokens FILE or set CURATION_API_TOKENS_FILE)"
        )
        return 2
    if not settings.roots:
        print(
            "curate serve: error: no allowed roots for job inputs and outputs (--root PATH, repeatable, or "
            "CURATION_API_ROOTS)"
        )
        return 2
    if (problem := service_state_problem(settings)) is not None:
        print(f"curate serve: error: {problem}; keep them outside every --root")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Request lines carry no secrets (tokens travel in headers, which uvicorn does not log).
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        http=_header_timeout_protocol(settings.header_timeout_s),
        h11_max_incomplete_event_size=64 * 1024,
    )
    return 0
