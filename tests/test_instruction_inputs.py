"""Instruction and chat records as inputs: rendered to text with a template, their own domain."""

from __future__ import annotations

import json

import pyarrow.dataset as pads
import pytest

from curation.io.instruction import InstructionSpec
from curation.job import run_job
from curation.progress import Progress
from curation.spec import SpecError, parse_spec


def test_chats_and_prompt_response_pairs_render_with_the_template():
    spec = InstructionSpec()
    chat = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
    assert spec.render(chat) == ("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n", None)
    pair = {"system": "Be brief.", "prompt": "Capital of France?", "response": "Paris."}
    text, _ = spec.render(pair)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCapital")
    sharegpt = InstructionSpec(
        messages_field="conversations", roles={"human": "user", "gpt": "assistant"}, template="{role}: {content}\n"
    )
    conv = {"conversations": [{"from": "human", "value": "hi {there}"}, {"from": "gpt", "value": "hello"}]}
    assert sharegpt.render(conv) == ("user: hi {there}\nassistant: hello\n", None)
    for template in ("{content.__class__.__mro__}", "{0}", "{role!r}", "{content:>99999}", "{text}"):
        with pytest.raises(ValueError, match="only"):
            InstructionSpec(template=template)
    for bad in ({"messages": []}, {"messages": [{"role": "user"}]}, {"prompt": "only a prompt"}, {"messages": "x"}):
        text, why = spec.render(bad)
        assert text is None and why


def test_an_instruction_input_is_curated_as_its_own_domain(tmp_path):
    src = tmp_path / "chat.jsonl"
    recs = [
        {
            "id": f"c{i}",
            "messages": [
                {"role": "user", "content": f"Question number {i} about the weather in Paris and what to wear today?"},
                {"role": "assistant", "content": f"Take a coat and an umbrella, it will rain this afternoon ({i})."},
            ],
        }
        for i in range(5)
    ]
    recs.append({"id": "bad", "messages": [{"role": "user"}]})
    src.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    out = tmp_path / "out"
    spec = {
        "name": "chat",
        "output": str(out),
        "inputs": [{"path": str(src), "format": "jsonl", "source": "sft", "instruction": {}}],
        "stages": {"langid": {"min_score": 0.0}},
        "execution": {"engine": "local"},
    }
    stats = run_job(parse_spec(spec), progress=Progress(enabled=False))
    assert stats["input_records"] == 6 == stats["kept"] + stats["rejected"] + stats["quarantined"]
    kept = pads.dataset(out / "curated", format="parquet", partitioning="hive").to_table()
    assert set(kept["domain"].to_pylist()) == {"instruction"} and len(kept) == 5
    assert all(t.startswith("<|im_start|>user\nQuestion number") for t in kept["text"].to_pylist())
    q = pads.dataset(out / "quarantine", format="parquet").to_table()
    assert q["id"].to_pylist() == ["bad"] and "instruction record" in q["error"][0].as_py()
    with pytest.raises(SpecError, match="format: jsonl"):
        parse_spec({**spec, "inputs": [{**spec["inputs"][0], "format": "parquet"}]})
