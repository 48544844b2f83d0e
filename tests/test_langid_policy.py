"""The language policy of the langid stage on a mixed batch: documents outside the job's languages are
dropped, kept or relabelled `other` as `other_languages` says (the threshold and the script check still
use the model's label), code keeps no language, and a score below its language's minimum is dropped."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curation.spec import parse_spec
from curation.stages import build
from curation.stages import run as run_stages

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank today.",
    "Der schnelle braune Fuchs springt heute über den faulen Hund am Flussufer.",
    "Le renard brun rapide saute par-dessus le chien paresseux près de la rivière.",
    "def main():\n    return 0\n",
    "Привет как дела у тебя сегодня все хорошо спасибо большое друг мой дорогой",
    "The weather is nice and the sun is shining over the hills this morning.",
]
DOMAINS = ["web", "web", "web", "code", "web", "web"]


def run(languages, **langid):
    job = parse_spec(
        {
            "output": "/tmp/unused",
            "inputs": [{"path": "/tmp/unused", "source": "t", "format": "jsonl"}],
            "languages": languages,
            "execution": {"engine": "local"},
            "stages": {"langid": langid},
        }
    )
    t = pa.table(
        {
            "text": pa.array(TEXTS, pa.large_string()),
            "error": pa.nulls(len(TEXTS), pa.string()),
            "drop_reason": pa.nulls(len(TEXTS), pa.string()),
            "domain": pa.array(DOMAINS, pa.string()),
        }
    )
    out = run_stages(t, build(job, ["langid"]))
    return out["lang"].to_pylist(), out["drop_reason"].to_pylist(), out["lang_score"].to_pylist()


@pytest.mark.parametrize("policy", ["drop", "keep", "other"])
def test_documents_outside_the_languages(policy):
    langs, reasons, scores = run(["en", "de"], other_languages=policy)
    assert langs[3] == "code" and scores[3] is None and reasons[3] is None
    assert reasons[0] is None and reasons[1] is None and reasons[5] is None
    if policy == "drop":
        assert reasons[2] == reasons[4] == "langid:not_target_language"
        assert langs[2] == "fr" and langs[4] == "ru"
    elif policy == "keep":
        assert reasons[2] is None and reasons[4] is None and (langs[2], langs[4]) == ("fr", "ru")
    else:
        assert reasons[2] is None and reasons[4] is None and langs[2] == langs[4] == "other"


def test_thresholds_apply_per_label_and_the_script_check_uses_the_label():
    langs, reasons, _ = run("all", min_score_by_lang={"de": 1.01})
    assert reasons[1] == "langid:low_score" and reasons[0] is None and reasons[2] is None
    # `other` documents still get the script check of the label the model gave: Russian text is Cyrillic
    langs, reasons, _ = run(["en"], other_languages="other", min_script_share=1.0)
    assert langs[4] == "other" and reasons[4] is None
