"""Prometheus metrics of the jobs themselves, built at each scrape: per running job and stage (records in and
out, drops by reason, input bytes, stage seconds) from the job's OUT/progress.json, and over all jobs in
the store (by kind and state; durations of finished ones). Only the job's own progress file is read, through
the service's bounded storage pool, so a scrape costs one small read per running job."""

from __future__ import annotations

from typing import Any, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from curation.stages.registry import funnel_row

JOB_LABELS = ["job", "name", "owner", "kind"]


class _Snapshot(Collector):
    def __init__(self, families: list[Any]):
        self.families = families

    def collect(self) -> Iterable[Any]:
        return iter(self.families)


def render(running: list[tuple[Any, dict | None]], finished: list[Any], counts: dict[tuple[str, str], int]) -> bytes:
    """The text of the job metrics: `running` is (job row, its progress.json or None), `finished` the rows of
    ended jobs with both times (for durations), `counts` jobs by (kind, state)."""
    records = GaugeMetricFamily(
        "curation_job_stage_records",
        "records into and out of each stage of a running job (this run's annotated batches so far)",
        labels=[*JOB_LABELS, "stage", "side"],
    )
    dropped = GaugeMetricFamily(
        "curation_job_dropped_records",
        "records a running job dropped so far, by reason",
        labels=[*JOB_LABELS, "stage", "reason"],
    )
    read = GaugeMetricFamily("curation_job_records_read", "records a running job has read so far", labels=JOB_LABELS)
    quarantined = GaugeMetricFamily(
        "curation_job_quarantined_records", "records a running job quarantined so far", labels=JOB_LABELS
    )
    in_bytes = GaugeMetricFamily(
        "curation_job_input_bytes", "input bytes a running job has read so far", labels=JOB_LABELS
    )
    seconds = GaugeMetricFamily(
        "curation_job_stage_seconds",
        "compute seconds of each stage of a running job, summed over workers",
        labels=[*JOB_LABELS, "stage"],
    )
    files = GaugeMetricFamily("curation_job_files_done", "input files a running job has finished", labels=JOB_LABELS)
    phase = GaugeMetricFamily(
        "curation_job_phase", "1 for the phase a running job is in", labels=[*JOB_LABELS, "phase"]
    )
    mix_tokens = GaugeMetricFamily(
        "curation_mix_bucket_tokens",
        "a running mix job's tokens per bucket: in the pool, and allocated to the mixture",
        labels=[*JOB_LABELS, "bucket", "tokens"],
    )
    for row, prog in running:
        base = [row.id, row.name, row.owner, row.kind or "curate"]
        if not prog:
            continue
        phase.add_metric([*base, str(prog.get("phase", "unknown"))], 1)
        for key, fam in (
            ("records", read),
            ("quarantined", quarantined),
            ("input_bytes", in_bytes),
            ("files_done", files),
        ):
            if isinstance(prog.get(key), (int, float)):
                fam.add_metric(base, prog[key])
        for st in prog.get("funnel") or []:
            records.add_metric([*base, st["stage"], "in"], st["in"])
            records.add_metric([*base, st["stage"], "out"], st["out"])
        for reason, n in sorted((prog.get("by_reason") or {}).items()):
            dropped.add_metric([*base, funnel_row(reason), reason], n)
        for stage, sec in sorted((prog.get("stage_seconds") or {}).items()):
            seconds.add_metric([*base, stage], sec)
        for key, what in (("pool_tokens", "pool"), ("allocated_tokens", "allocated")):
            for bucket, n in sorted((prog.get(key) or {}).items()):
                mix_tokens.add_metric([*base, bucket, what], n)
    by_state = GaugeMetricFamily(
        "curation_jobs_by_kind", "jobs in the store by kind and state", labels=["kind", "state"]
    )
    for (kind, state), n in sorted(counts.items()):
        by_state.add_metric([kind, state], n)
    durations = SummaryMetricFamily(
        "curation_job_duration_seconds", "run time (start to end) of finished jobs", labels=["kind", "state"]
    )
    agg: dict[tuple[str, str], list[float]] = {}
    for row in finished:
        agg.setdefault((row.kind or "curate", row.state), []).append((row.finished_at - row.started_at).total_seconds())
    for (kind, state), values in sorted(agg.items()):
        durations.add_metric([kind, state], count_value=len(values), sum_value=sum(values))
    registry = CollectorRegistry(auto_describe=False)
    families = [records, dropped, read, quarantined, in_bytes, seconds, files, phase, mix_tokens, by_state, durations]
    registry.register(_Snapshot(families))
    return generate_latest(registry)
