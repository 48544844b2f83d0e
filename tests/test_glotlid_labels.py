"""A language-ID model in GlotLID's label format (ISO 639-3 + script: `__label__zsm_Latn`) end to end: a model
the test trains in that format, a job that names it, its labels mapped to the job's codes (zsm -> ms,
cmn -> zh, ...), the script kept in `lang_script`, and a per-model thresholds file applied."""

from __future__ import annotations

import json
import random

import pyarrow.dataset as pads
import pytest
import yaml

from curation.job import run_job
from curation.progress import Progress
from curation.spec import parse_spec
from filters.languages import ISO639_3_TO_JOB, QWEN29, split_label

SENTENCES = {
    "eng_Latn": ["the weather is nice today and we walk to the park", "my brother reads a book every evening",
                 "this house has a large garden with old trees", "we will travel to the coast next summer"],
    "deu_Latn": ["das wetter ist heute schön und wir gehen in den park", "mein bruder liest jeden abend ein buch",
                 "dieses haus hat einen großen garten mit alten bäumen", "wir fahren nächsten sommer an die küste"],
    "zsm_Latn": ["cuaca hari ini sangat baik kerana matahari bersinar", "abang saya membaca buku setiap malam sahaja",
                 "rumah ini mempunyai taman yang besar daripada biasa", "kami akan bercuti ke pantai pada musim cuti"],
    "ind_Latn": ["cuaca hari ini bagus karena matahari bersinar terang", "kakak saya membaca buku setiap malam saja",
                 "rumah ini punya kebun yang besar dari biasanya", "kami akan berlibur ke pantai pada musim libur"],
    "cmn_Hani": ["今天天气很好我们去公园散步", "我哥哥每天晚上读一本书", "这座房子有一个种着老树的大花园", "明年夏天我们要去海边旅行"],
}  # fmt: skip


def test_label_mapping_covers_every_qwen_language():
    mapped = set(ISO639_3_TO_JOB.values())
    assert mapped == set(QWEN29)
    assert split_label("zsm_Latn") == ("ms", "Latn") and split_label("arz_Arab") == ("arz", "Arab")
    assert split_label("en") == ("en", None)  # lid.176 labels pass through


@pytest.fixture(scope="module")
def glotlid_style_model(tmp_path_factory):
    import fasttext

    folder = tmp_path_factory.mktemp("glot")
    rng = random.Random(0)
    lines = [f"__label__{lab} {s}" for lab, ss in SENTENCES.items() for s in ss for _ in range(30)]
    rng.shuffle(lines)
    (folder / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = fasttext.train_supervised(
        str(folder / "train.txt"), epoch=25, lr=0.5, minn=2, maxn=4, dim=16, verbose=0, seed=1, thread=1
    )
    path = folder / "glot.bin"
    model.save_model(str(path))
    return path


def test_a_glotlid_format_model_runs_in_a_job(glotlid_style_model, tmp_path):
    src = tmp_path / "in.jsonl"
    docs = [(lab, s) for lab, ss in SENTENCES.items() for s in ss]
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": s}) + "\n" for i, (_, s) in enumerate(docs)))
    thresholds = tmp_path / "glot-thresholds.yaml"
    thresholds.write_text(yaml.safe_dump({"de": 2.0}))  # no score reaches it: every German document drops
    job = parse_spec({
        "output": str(tmp_path / "out"),
        "languages": ["en", "de", "ms", "id", "zh"],
        "inputs": [{"path": str(src), "format": "jsonl", "source": "s"}],
        "stages": {"langid": {"model": str(glotlid_style_model), "thresholds_file": str(thresholds),
                              "min_script_share": None}},
        "execution": {"engine": "local"},
    })  # fmt: skip
    assert ("stages.langid.thresholds_file", str(thresholds)) in job.declared_reads()
    stats = run_job(job, progress=Progress(enabled=False))
    assert stats["input_records"] == len(docs) == stats["kept"] + stats["rejected"]
    assert stats["by_reason"] == {"langid:low_score": 4}
    kept = pads.dataset(tmp_path / "out" / "curated", format="parquet").to_table().to_pylist()
    got = {r["id"]: (r["lang"], r["lang_script"]) for r in kept}
    want = {f"d{i}": split_label(lab) for i, (lab, _) in enumerate(docs) if not lab.startswith("deu")}
    assert got == want  # en/ms/id with Latn, zh with Hani: mapped from eng_Latn, zsm_Latn, ind_Latn, cmn_Hani
    rejected = pads.dataset(tmp_path / "out" / "rejected", format="parquet").to_table().to_pylist()
    assert {(r["lang"], r["lang_script"], r["drop_reason"]) for r in rejected} == {("de", "Latn", "langid:low_score")}


def test_a_missing_thresholds_file_is_a_spec_error(glotlid_style_model, tmp_path):
    from curation.spec import SpecError

    with pytest.raises(SpecError) as e:
        parse_spec(
            {
                "output": str(tmp_path / "o"),
                "inputs": [{"path": "x", "format": "jsonl", "source": "s"}],
                "stages": {"langid": {"model": str(glotlid_style_model), "thresholds_file": str(tmp_path / "no")}},
            }
        )
    assert "stages.langid.thresholds_file: thresholds file not found" in str(e.value)
