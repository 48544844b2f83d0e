"""The job metrics text the service serves (api/job_metrics.py), from progress files as the jobs write them:
a curate job's live funnel and drops, a mix job's tokens per bucket, durations and counts from the store."""

from __future__ import annotations

import datetime as dt
import types

from prometheus_client.parser import text_string_to_metric_families

from api.job_metrics import render


def _samples(text: bytes) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text.decode())
        for s in fam.samples
    }


def _row(job_id: str, kind: str, state: str = "RUNNING", seconds: float | None = None):
    start = dt.datetime(2026, 12, 1, 12, 0, 0)
    end = start + dt.timedelta(seconds=seconds) if seconds is not None else None
    return types.SimpleNamespace(
        id=job_id, name=f"n-{job_id}", owner="alice", kind=kind, state=state, started_at=start, finished_at=end
    )


def test_running_jobs_finished_durations_and_counts():
    curate = {
        "phase": "annotate",
        "records": 1000,
        "quarantined": 3,
        "input_bytes": 123456,
        "files_done": 2,
        "funnel": [{"stage": "langid", "in": 997, "out": 900}, {"stage": "c4", "in": 900, "out": 850}],
        "by_reason": {"langid:low_score": 97, "c4:too_few_sentences": 50},
        "stage_seconds": {"langid": 1.5},
    }
    mix = {"phase": "mixture", "pool_tokens": {"web/en": 1000, "web/de": 10}, "allocated_tokens": {"web/en": 400}}
    finished = [
        _row("a", "curate", "SUCCEEDED", 10),
        _row("b", "curate", "SUCCEEDED", 30),
        _row("c", "mix", "FAILED", 5),
    ]
    s = _samples(
        render(
            [(_row("cj-1", "curate"), curate), (_row("cj-2", "mix"), mix), (_row("cj-3", "curate"), None)],
            finished,
            {("curate", "SUCCEEDED"): 2, ("mix", "FAILED"): 1},
        )
    )
    job = (("job", "cj-1"), ("kind", "curate"), ("name", "n-cj-1"), ("owner", "alice"))

    def get(name, job_labels=job, **labels):
        return s.get((name, tuple(sorted((*job_labels, *labels.items())))))

    assert get("curation_job_stage_records", stage="langid", side="in") == 997
    assert get("curation_job_stage_records", stage="c4", side="out") == 850
    assert get("curation_job_dropped_records", stage="c4", reason="c4:too_few_sentences") == 50
    assert get("curation_job_records_read") == 1000 and get("curation_job_quarantined_records") == 3
    assert get("curation_job_input_bytes") == 123456 and get("curation_job_stage_seconds", stage="langid") == 1.5
    assert get("curation_job_phase", phase="annotate") == 1
    mix_job = (("job", "cj-2"), ("kind", "mix"), ("name", "n-cj-2"), ("owner", "alice"))
    assert get("curation_mix_bucket_tokens", mix_job, bucket="web/de", tokens="pool") == 10
    assert get("curation_mix_bucket_tokens", mix_job, bucket="web/en", tokens="allocated") == 400
    assert not any(dict(k[1]).get("job") == "cj-3" for k in s)  # no progress yet: nothing made up
    assert s[("curation_job_duration_seconds_count", (("kind", "curate"), ("state", "SUCCEEDED")))] == 2
    assert s[("curation_job_duration_seconds_sum", (("kind", "curate"), ("state", "SUCCEEDED")))] == 40
    assert s[("curation_jobs_by_kind", (("kind", "mix"), ("state", "FAILED")))] == 1
