"""Progress lines while a job runs (records/s per phase and stage) and the closing summary table."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """Throttled one-line progress reports on stderr (every `every` seconds at most)."""

    def __init__(self, enabled: bool = True, every: float = 2.0, stream: TextIO | None = None):
        self.enabled, self.every = enabled, every
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()
        self.last = 0.0

    def say(self, msg: str) -> None:
        if self.enabled:
            print(f"[curate {time.monotonic() - self.t0:7.1f}s] {msg}", file=self.stream, flush=True)

    def tick(self, msg_fn, force: bool = False) -> None:
        now = time.monotonic()
        if self.enabled and (force or now - self.last >= self.every):
            self.last = now
            self.say(msg_fn())


def rate(n: float, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s" if seconds > 0 else "-"


def summary_table(stats: dict[str, Any]) -> str:
    """The funnel as a fixed-width table: records in and out of each stage, time and throughput."""
    rows = [("stage", "in", "out", "dropped", "seconds", "records/s")]
    for s in stats["by_stage"]:
        rows.append(
            (
                s["stage"],
                f"{s['in']:,}",
                f"{s['out']:,}",
                f"{s['in'] - s['out']:,}",
                f"{s['seconds']:.2f}",
                rate(s["in"], s["seconds"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    tail = (
        f"input {stats['input_records']:,} = kept {stats['kept']:,} + rejected {stats['rejected']:,} "
        f"+ quarantined {stats['quarantined']:,}"
    )
    top = sorted(stats["by_reason"].items(), key=lambda kv: -kv[1])[:8]
    reasons = ", ".join(f"{k} {v:,}" for k, v in top)
    return "\n".join(lines + ["", tail] + ([f"top drop reasons: {reasons}"] if reasons else []))
