"""The job spec: defaults are resolved and written back faithfully; every bad spec fails with the
key's path and what was wrong, before any work starts."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from curation.spec import CurateJob, SpecError, load_spec, parse_spec, resolved_yaml

MODEL_FILE = Path(__file__).parents[1] / "filters" / "models" / "domain.ftz"  # any file
BASE = {
    "name": "spec-test",
    "output": "/tmp/never-written",
    "inputs": [{"path": "data/*.jsonl.gz", "format": "jsonl", "source": "reuters"}],
    "stages": {
        "langid": {},
        "filters": {"gopher_quality": {}, "gopher_repetition": {}, "c4": {}, "fineweb": {}},
        "dedup": {"exact": {}, "minhash": {}},
    },
}


def spec(**changes) -> dict:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def spec_error(data) -> str:
    with pytest.raises(SpecError) as exc:
        parse_spec(data)
    return str(exc.value)


def error_lines(msg: str) -> list[str]:
    """The per-key lines of a SpecError message (after the 'invalid job spec:' header)."""
    lines = msg.splitlines()
    assert lines[0] == "invalid job spec:", msg
    return [line.strip() for line in lines[1:]]


# --- valid specs ---------------------------------------------------------------------------------


def test_valid_spec_resolves_defaults():
    job = parse_spec(spec())
    assert isinstance(job, CurateJob)
    assert job.kind == "curate"
    inp = job.inputs[0]
    assert (inp.domain, inp.text_field, inp.id_field) == ("web", "text", "id")
    assert job.languages == "qwen29"
    assert "en" in job.target_languages() and "zh" in job.target_languages()
    mh = job.stages.dedup.minhash
    assert (mh.ngram, mh.bands, mh.rows) == (5, 14, 8)
    assert mh.num_perm == 112
    assert job.stages.dedup.exact is not None
    assert job.stages.langid.min_score == 0.5
    assert job.stages.normalize.max_doc_bytes == 8_000_000
    # the filters' published defaults are filled in, not left as {}
    gq = job.stages.filters.get("gopher_quality")
    assert gq["min_doc_words"] == 50 and gq["max_doc_words"] == 100_000
    assert job.execution.engine == "ray"


def test_stage_left_out_does_not_run():
    job = parse_spec(spec(stages={"filters": {"c4": {}}}))
    assert job.stages.langid is None and job.stages.dedup is None
    assert [name for name, _ in job.stages.filters.enabled()] == ["c4"]


def test_resolved_yaml_round_trips_through_load_spec(tmp_path):
    job = parse_spec(
        spec(
            languages=["en", "de"],
            stages={
                "filters": {"gopher_quality": {"min_doc_words": 20}},
                "dedup": {"minhash": {"bands": 20, "rows": 5}},
            },
        )
    )
    path = tmp_path / "job.yaml"
    path.write_text(resolved_yaml(job), encoding="utf-8")
    again = load_spec(path)
    assert again == job
    assert again.fingerprint() == job.fingerprint()
    # defaults are written out, not just the keys the user gave
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert written["stages"]["dedup"]["minhash"] == {"ngram": 5, "bands": 20, "rows": 5, "seed": 1, "threshold": None}
    assert written["stages"]["filters"]["gopher_quality"]["min_doc_words"] == 20
    assert written["stages"]["filters"]["gopher_quality"]["max_doc_words"] == 100_000
    assert written["inputs"][0]["text_field"] == "text"
    assert written["execution"]["engine"] == "ray"
    # filters left out stay off after the round trip (a `name:` entry with no options enables a filter)
    assert [name for name, _ in again.stages.filters.enabled()] == ["gopher_quality"]
    assert set(written["stages"]["filters"]) == {"gopher_quality"}


def test_fingerprint_survives_resolved_yaml():
    """A re-run compares the spec with OUT/job.yaml by fingerprint; they must agree for every spec."""
    for stages in ({}, {"filters": {"c4": {}}}, {"filters": {"fineweb": None}, "dedup": {"exact": {}}}, BASE["stages"]):
        job = parse_spec(spec(stages=copy.deepcopy(stages)))
        again = parse_spec(yaml.safe_load(resolved_yaml(job)))
        assert again == job, stages
        assert again.fingerprint() == job.fingerprint(), stages


def test_filter_given_without_options_is_enabled():
    job = parse_spec(
        yaml.safe_load("output: o\ninputs: [{path: a, format: jsonl, source: s}]\nstages:\n  filters:\n    c4:\n")
    )
    assert [name for name, _ in job.stages.filters.enabled()] == ["c4"]
    assert job.stages.filters.get("c4")["min_num_sentences"] == 5


def test_output_override():
    job = parse_spec(spec(), output="/somewhere/else")
    assert job.output == "/somewhere/else"


# --- errors name the key path -----------------------------------------------------------------


def test_unknown_top_level_key():
    msg = spec_error(spec(bogus_key=1))
    assert error_lines(msg) == ["bogus_key: unknown key"]


def test_unknown_nested_key_in_filter_options():
    data = spec()
    data["stages"]["filters"]["gopher_quality"] = {"bogus_option": 3}
    lines = error_lines(spec_error(data))
    assert len(lines) == 1
    assert lines[0].startswith("stages.filters.gopher_quality.bogus_option: unknown option"), lines
    assert "min_doc_words" in lines[0]  # says what was expected


def test_unknown_filter_name():
    data = spec()
    data["stages"]["filters"]["gopher_qualty"] = {}
    (line,) = error_lines(spec_error(data))
    assert line.startswith("stages.filters.gopher_qualty: unknown key") and "gopher_quality" in line  # the names


def test_unknown_key_in_minhash():
    data = spec()
    data["stages"]["dedup"]["minhash"] = {"band": 10}
    assert error_lines(spec_error(data)) == ["stages.dedup.minhash.band: unknown key"]


def test_wrong_type():
    data = spec()
    data["stages"]["dedup"]["minhash"] = {"bands": "x"}
    lines = error_lines(spec_error(data))
    assert len(lines) == 1
    assert lines[0].startswith("stages.dedup.minhash.bands: ")
    assert "integer" in lines[0] and "'x'" in lines[0]


def test_wrong_type_in_filter_option():
    data = spec()
    data["stages"]["filters"]["gopher_quality"] = {"min_doc_words": "many"}
    lines = error_lines(spec_error(data))
    assert len(lines) == 1
    assert lines[0].startswith("stages.filters.gopher_quality.min_doc_words: ") and "integer" in lines[0]


def test_out_of_range_value():
    data = spec()
    data["stages"]["dedup"]["minhash"] = {"bands": 0}
    lines = error_lines(spec_error(data))
    assert lines[0].startswith("stages.dedup.minhash.bands: ") and "greater than or equal to 1" in lines[0]


def test_missing_required_key():
    data = spec()
    del data["inputs"][0]["source"]
    assert error_lines(spec_error(data)) == ["inputs.0.source: required key is missing"]


def test_missing_output_and_inputs():
    data = spec()
    del data["output"], data["inputs"]
    lines = error_lines(spec_error(data))
    assert sorted(lines) == ["inputs: required key is missing", "output: required key is missing"]


def test_bad_enum():
    data = spec()
    data["inputs"].append({"path": "b/*.csv", "format": "csv", "source": "other"})
    lines = error_lines(spec_error(data))
    assert len(lines) == 1
    assert lines[0].startswith("inputs.1.format: ")
    assert lines[0] == "inputs.1.format: unknown input format 'csv'; known formats: jsonl, parquet, text, warc"


def test_several_errors_reported_together():
    data = spec(bogus=1)
    del data["inputs"][0]["source"]
    lines = error_lines(spec_error(data))
    assert "bogus: unknown key" in lines and "inputs.0.source: required key is missing" in lines


def test_quality_stage_keys_are_checked():
    from curation.stages import plan

    data = spec()
    data["stages"]["quality"] = {}  # no classifier: nothing to run, and no stage in the plan
    assert "quality" not in [s.name for s in plan(parse_spec(data))]
    data["stages"]["quality"] = {"classifiers": {"web": {"threshold": 0.5}}, "dedup_keep": "web"}
    lines = error_lines(spec_error(data))
    assert lines == ["stages.quality.classifiers.web.threshold: unknown key"]
    data["stages"]["quality"] = {"classifiers": {"web": {"min_score": 0.5}}, "dedup_keep": "web"}
    assert error_lines(spec_error(data)) == ["stages.quality.classifiers.web.model: scorer fasttext needs a model file"]
    data["stages"]["quality"]["classifiers"]["web"] = {
        "scorer": "fasttext",
        "model": str(MODEL_FILE),
        "options": {"k": 1},
    }
    assert error_lines(spec_error(data)) == ["stages.quality.classifiers.web.options.k: unknown key"]
    data["stages"]["quality"]["classifiers"]["web"] = {"scorer": "perplexity", "model": str(MODEL_FILE)}
    assert error_lines(spec_error(data)) == [
        "stages.quality.classifiers.web.scorer: unknown scorer 'perplexity'; known scorers: fasttext"
    ]


@pytest.mark.parametrize("kind", ["mix", "ablate"])
def test_other_kinds_rejected(kind):
    lines = error_lines(spec_error(spec(kind=kind)))
    assert len(lines) == 1
    assert lines[0].startswith("kind: ") and f"`{kind}`" in lines[0]
    assert ("curate mix" if kind == "mix" else "curate ablate") in lines[0]


def test_empty_language_list_rejected():
    lines = error_lines(spec_error(spec(languages=[])))
    assert lines[0].startswith("languages: ") and "all" in lines[0]


def test_top_level_not_a_mapping():
    with pytest.raises(SpecError, match="expected a mapping at the top level, got list"):
        parse_spec([1, 2])


# --- files ---------------------------------------------------------------------------------------


def test_invalid_yaml_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ninputs: [\n  - path: a\n", encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    msg = str(exc.value)
    assert "not valid YAML" in msg and str(path) in msg


def test_missing_spec_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    msg = str(exc.value)
    assert "cannot read job spec" in msg and str(path) in msg


def test_empty_spec_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(SpecError, match="expected a mapping at the top level"):
        load_spec(path)


def test_spec_file_errors_name_the_key(tmp_path):
    path = tmp_path / "job.yaml"
    data = spec()
    data["stages"]["dedup"]["minhash"]["bands"] = "x"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(SpecError, match=r"stages\.dedup\.minhash\.bands: "):
        load_spec(path)
