"""docs/job-spec.md is the page the spec models generate: a key added, renamed or re-described in a model
without regenerating the page fails here, so the reference cannot drift from what the parser accepts."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from curation.spec_reference import reference

PAGE = Path(__file__).resolve().parents[1] / "docs" / "job-spec.md"
GROUPS = ("corpus_curation.stages", "corpus_curation.filters", "corpus_curation.readers", "corpus_curation.scorers")


def test_the_committed_reference_is_current():
    if any(entry_points(group=g) for g in GROUPS):
        pytest.skip("plugins are installed here: the page would list them")
    assert PAGE.read_text(encoding="utf-8") == reference(), (
        "docs/job-spec.md is stale: python -m curation.spec_reference > docs/job-spec.md"
    )


def test_the_reference_holds_every_key_with_its_default_and_description():
    from curation.spec import CurateJob
    from curation.stages.dedup import MinHashSpec

    page = reference()
    row = next(line for line in page.splitlines() if line.startswith("| `stages.dedup.minhash.bands` |"))
    assert f"`{MinHashSpec.model_fields['bands'].default}`" in row
    assert MinHashSpec.model_fields["bands"].description in row
    for name in CurateJob.model_fields:
        assert f"| `{name}` |" in page
    # filters: every option of every registered filter, with the comment that describes it
    assert (
        "| `stages.filters.gopher_quality.min_doc_words` | int \\| None | `50` | drop documents with fewer words"
        in page
    )
    # the registries: formats and scorers
    assert "| `warc` |" in page and "| `fasttext` | yes |" in page
