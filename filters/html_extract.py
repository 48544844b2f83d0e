"""HTML to main text, with a maintained extractor (chosen by measurement, bench/README.md):

- `trafilatura` (default): on the 990 pages of ../shared/data with gold snippets it keeps 94.0% of the
  required snippets and leaves out 90.5% of the forbidden ones (menus, footers, cookie banners), at about
  67 pages/s per core (`python bench/extract.py`). FineWeb's choice.
- `resiliparse`: 94.4% / 69.7% at about 800 pages/s: twelve times the speed, three times the boilerplate.
"""

from __future__ import annotations

from typing import Callable

Extractor = Callable[[str], str]


def _trafilatura() -> Extractor:
    import logging

    import trafilatura

    logging.getLogger("trafilatura").setLevel(logging.ERROR)  # it logs every page it finds empty
    return lambda html: trafilatura.extract(html, include_comments=False) or ""


def _resiliparse() -> Extractor:
    from resiliparse.extract.html2text import extract_plain_text

    return lambda html: extract_plain_text(html, main_content=True) or ""


EXTRACTORS: dict[str, Callable[[], Extractor]] = {"trafilatura": _trafilatura, "resiliparse": _resiliparse}


def load_extractor(name: str) -> Extractor:
    try:
        return EXTRACTORS[name]()
    except ImportError as exc:
        raise ImportError(f"extractor {name!r} is not installed: pip install 'corpus-curation[warc]' ({exc})") from exc


def is_html(content_type: str | None) -> bool:
    ct = (content_type or "").split(";")[0].strip().lower()
    return ct in ("text/html", "application/xhtml+xml", "") or ct.endswith("+html")


def snippet_shares(texts: dict[str, str], gold: dict[str, dict]) -> tuple[float, float, int, int]:
    """(share of required snippets present, share of forbidden snippets absent, required, forbidden) of
    extracted `texts` by page id, against gold records with `gt_with` / `gt_without` lists."""
    req = ok = forb = absent = 0
    for pid, text in texts.items():
        for s in gold[pid].get("gt_with") or []:
            req += 1
            ok += s in text
        for s in gold[pid].get("gt_without") or []:
            forb += 1
            absent += s not in text
    return ok / max(req, 1), absent / max(forb, 1), req, forb
