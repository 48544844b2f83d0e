"""Dataset cards: the `README.md` that makes a curate or mix output a Hugging Face dataset folder.

`datasets.load_dataset(OUT)` reads the card's `configs:` and loads only the files they name (curated
documents by default; `name="rejected"` and `name="quarantine"` for the rest; a mixture's shards, and
`name="long_context"`), so the work folder (`_work/`) and files still being written (hidden
`.inprogress-` names, which `datasets` and `pyarrow.dataset` skip) are never read. The card is written
when a job starts, so a folder is loadable while its job runs, and again with the counts at the end.
"""

from __future__ import annotations

from typing import Any

import yaml

from curation import __version__


def _card(configs: list[dict[str, Any]], title: str, body: str) -> bytes:
    head = yaml.safe_dump({"configs": configs}, sort_keys=False).strip()
    return f"---\n{head}\n---\n\n# {title}\n\n{body}\n".encode()


def _config(name: str, pattern: str, default: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"config_name": name}
    if default:
        out["default"] = True
    out["data_files"] = [{"split": "train", "path": pattern}]
    return out


def curate_card(name: str, stats: dict[str, Any] | None = None) -> bytes:
    configs = [
        _config("curated", "curated/**/*.parquet", default=True),
        _config("rejected", "rejected/**/*.parquet"),
        _config("quarantine", "quarantine/**/*.parquet"),
    ]
    if stats is None:
        counts = "The job is running: the curated files listed so far are complete; more will follow."
    else:
        counts = (
            f"{stats['input_records']:,} input records: {stats['kept']:,} kept, {stats['rejected']:,} "
            f"rejected (with `drop_reason`), {stats['quarantined']:,} quarantined (with `error`); "
            "details in `stats.json` and `report.html`."
        )
    body = (
        f"Written by corpus-curation {__version__} (job `{name}`).\n\n{counts}\n\n"
        "```python\nimport datasets\nkept = datasets.load_dataset(OUT)                    # curated documents\n"
        'dropped = datasets.load_dataset(OUT, name="rejected")  # every drop, with its reason\n```\n\n'
        "Curated files are partitioned by language (`curated/lang=xx/`)."
    )
    return _card(configs, name, body)


def mix_card(name: str, manifest: dict[str, Any] | None = None, long_context: bool = False) -> bytes:
    configs = [_config("mixture", "shards/*.parquet", default=True)]
    if long_context:
        configs.append(_config("long_context", "long_context/shards/*.parquet"))
    if manifest is None:
        counts = "The job is running: shards listed so far are complete."
    else:
        counts = (
            f"{manifest['achieved_tokens']:,} Qwen tokens (target {manifest['target_tokens']:,}) in "
            f"{manifest['rows']:,} rows and {len(manifest['shards'])} shards, mixed and shuffled "
            f"(seed {manifest['seed']}); buckets, weights and every file's sha256 in `manifest.json`."
        )
    body = (
        f"Written by corpus-curation {__version__} (mixture `{name}`).\n\n{counts}\n\n"
        '```python\nimport datasets\nrows = datasets.load_dataset(OUT, split="train")  # the mixture, in order\n'
        "```\n\nToken files for trainers, when asked for: `megatron/` (`--data-path` prefixes in "
        "`blend/megatron_data_path.txt`) and `numpy/` (raw uint32, end-of-document after each document)."
    )
    return _card(configs, name, body)
