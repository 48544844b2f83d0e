"""The web console: one static page (api/console.html, vanilla JavaScript, no build step and nothing fetched
from elsewhere) that calls the REST API with the bearer token the user logs in with (kept in the tab's
session storage). Its views: jobs, a job's live funnel and progress, samples per drop reason, a document
browser, a document's lineage, and a diff of two runs."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def page() -> str:
    return resources.files("api").joinpath("console.html").read_text(encoding="utf-8")
