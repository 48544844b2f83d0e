"""The curate job at 1x, 4x and 16x on a local multi-node Ray cluster: does anything grow with the corpus?

Generates N documents of real text (sentences from `../shared/data`, with planted exact and near copies
at known rates) as JSONL files, starts a head and 2 worker nodes (`ray start`, one CPU each, their own
temp dirs, ended by pid), runs the curate job (language ID, heuristic filters, exact + MinHash dedup)
from a driver process of its own, and samples every process's memory while it runs. Per size it prints
per phase seconds and documents/s, seconds to the first written record, driver peak RSS, the largest
single process's RSS, edges per clustering task, and the 16x/1x ratios. Then it kills one worker
node's raylet in the middle of the dedup phase and checks the job still ends with output identical to
the undisturbed run (or fails clearly and resumes to identical output).

    python bench/scale.py --json OUT.json [--sizes 1,4,16] [--base-docs 62500] [--nodes 2] [--big-file-gb 1]
                          [--no-kill]

It also reads one JSONL file of --big-file-gb GB (a light job: parse + exact dedup) and reports how busy
the cluster's CPUs were, which shows the file was split into read tasks.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.local_cluster import LocalCluster, command_line, descendants, heap_bytes, rss_bytes  # noqa: E402

DATA = REPO.parent / "shared" / "data"
EXACT_SHARE = 0.04  # planted exact copies of an earlier document
NEAR_SHARE = 0.04  # planted near copies: an earlier document with 2% of its words replaced
DOCS_PER_FILE = 15_625  # 4 files at 1x = 62,500 documents
_SENT = re.compile(r"(?<=[.!?。])\s+")


def sentence_pools(data: Path) -> list[tuple[str, list[str]]]:
    """(language, sentences) of real text: Reuters and web pages (en, de, ...), UDHR articles of the
    Qwen2 languages, Tatoeba sentences."""
    from curation.spec import QWEN29

    pools: dict[str, list[str]] = {}

    def add(lang: str, text: str) -> None:
        for s in _SENT.split(text.replace("\n", " ")):
            s = " ".join(s.split())
            if 20 <= len(s) <= 400:
                pools.setdefault(lang, []).append(s)

    for name, field in (("news_reuters21578", "text"), ("web_trafilatura_eval", "main_text")):
        with gzip.open(data / f"{name}.jsonl.gz", "rt") as f:
            for line in f:
                r = json.loads(line)
                if r["lang"] in QWEN29:
                    add(r["lang"], r.get(field) or "")
    for name in ("lid_udhr", "lid_tatoeba_laser"):
        with gzip.open(data / f"{name}.jsonl.gz", "rt") as f:
            for line in f:
                r = json.loads(line)
                if r["lang"] in QWEN29 and (name != "lid_udhr" or r.get("is_primary_variant")):
                    add(r["lang"], r["text"])
    return sorted((k, v) for k, v in pools.items() if len(v) >= 30)


def generate(folder: Path, n: int, data: Path, seed: int = 0, per_file: int = DOCS_PER_FILE) -> dict[str, int]:
    """n documents in JSONL files of DOCS_PER_FILE; 70% English, the rest spread over the other
    languages; EXACT_SHARE / NEAR_SHARE of them planted copies of an earlier document. Deterministic."""
    rng = random.Random(seed)
    pools = sentence_pools(data)
    en = next(p for lang, p in pools if lang == "en")
    others = [p for lang, p in pools if lang != "en"]
    folder.mkdir(parents=True, exist_ok=True)
    recent: list[str] = []  # documents copies are drawn from (a window, so memory stays flat)
    planted = {"exact": 0, "near": 0}
    out = None
    for i in range(n):
        if i % per_file == 0:
            if out:
                out.close()
            out = open(folder / f"part-{i // per_file:05d}.jsonl", "w")  # noqa: SIM115 (one file at a time)
        u = rng.random()
        if recent and u < EXACT_SHARE:
            text = rng.choice(recent)
            planted["exact"] += 1
        elif recent and u < EXACT_SHARE + NEAR_SHARE:
            words = rng.choice(recent).split(" ")
            for _ in range(max(1, len(words) // 50)):
                words[rng.randrange(len(words))] = rng.choice(("alpha", "beta", "gamma", "delta", "omega"))
            text = " ".join(words)
            planted["near"] += 1
        else:
            pool = en if rng.random() < 0.7 else rng.choice(others)
            text = " ".join(rng.choice(pool) for _ in range(rng.randint(6, 16)))
        recent.append(text)
        if len(recent) > 2000:
            recent.pop(rng.randrange(len(recent)))
        out.write(json.dumps({"id": f"d{i}", "text": text}, ensure_ascii=False) + "\n")
    if out:
        out.close()
    return planted


def job_spec(inputs: Path, output: Path, light: bool = False) -> dict:
    """The scale job: language ID, the heuristic filters, exact + MinHash dedup; `light` (for the one-big-file
    run) only normalizes and dedups exact copies, so reading and parsing dominate."""
    stages = {
        "langid": {},
        "filters": {"gopher_quality": {}, "gopher_repetition": {}, "c4": {}, "fineweb": {}},
        "dedup": {"exact": {}, "minhash": {"ngram": 5, "bands": 14, "rows": 8}},
    }
    if light:
        stages = {"dedup": {"exact": {}}}
    return {
        "name": "scale",
        "output": str(output),
        "inputs": [{"path": str(inputs), "format": "jsonl", "source": "scale", "domain": "web"}],
        "languages": "qwen29",
        "stages": stages,
        "execution": {"engine": "ray"},
    }


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Sampler(threading.Thread):
    """Every 0.5 s: RSS of the driver and of every cluster process; the time the first annotated part
    appears under the output; the job's phase from OUT/progress.json (and a callback on phase change)."""

    def __init__(self, driver: subprocess.Popen, cluster: LocalCluster, output: Path, on_phase=None):
        super().__init__(daemon=True)
        self.driver, self.cluster, self.output, self.on_phase = driver, cluster, output, on_phase
        self.t0 = time.monotonic()
        self.driver_peak = 0
        self.driver_by_phase: dict[str, int] = {}
        self.largest = (0, "")
        self.largest_heap = (0, "")
        self.by_task: dict[str, int] = {}  # peak RSS per process title (a Ray worker's title names its task)
        self.heap_by_task: dict[str, int] = {}
        self.total_peak = 0
        self.first_write: float | None = None
        self.phase = None
        self.stop = threading.Event()
        self.cpu0 = {p: cpu_seconds([p]) for p in cluster.node_pids()}
        self.cpu: dict[int, float] = dict(self.cpu0)

    def cpu_used(self) -> float:
        return sum(self.cpu.values()) - sum(self.cpu0.values())

    def run(self) -> None:
        annotated = self.output / "_work" / "annotated"
        while not self.stop.is_set():
            pids = descendants(self.driver.pid)
            d = sum(rss_bytes(p) for p in pids)  # the driver and any helper it forks
            self.driver_peak = max(self.driver_peak, d)
            key = self.phase or "start"
            self.driver_by_phase[key] = max(self.driver_by_phase.get(key, 0), d)
            total = d
            for p in self.cluster.node_pids():
                r = rss_bytes(p)
                total += r
                title = command_line(p)[:80]
                if r > self.largest[0]:
                    self.largest = (r, title)
                h = heap_bytes(p)
                if h > self.largest_heap[0]:
                    self.largest_heap = (h, title)
                if title.startswith("ray::"):
                    self.by_task[title] = max(self.by_task.get(title, 0), r)
                    self.heap_by_task[title] = max(self.heap_by_task.get(title, 0), h)
            self.total_peak = max(self.total_peak, total)
            for p in self.cluster.node_pids():  # cumulative CPU of every process seen (workers come and go)
                self.cpu[p] = cpu_seconds([p])
            if self.first_write is None and annotated.exists() and any(annotated.rglob("*.parquet")):
                self.first_write = time.monotonic() - self.t0
            try:
                phase = json.loads((self.output / "progress.json").read_text())["phase"]
            except (OSError, ValueError, KeyError):
                phase = self.phase
            if phase != self.phase:
                self.phase = phase
                if self.on_phase:
                    self.on_phase(phase)
            self.stop.wait(0.5)


def _top_mb(by_title: dict[str, int], n: int = 12) -> dict[str, float]:
    return {k: round(v / 1e6, 1) for k, v in sorted(by_title.items(), key=lambda kv: -kv[1])[:n]}


def digest(out: Path) -> str:
    h = hashlib.sha256()
    for sub in ("curated", "rejected", "quarantine"):
        for p in sorted((out / sub).rglob("*.parquet")):
            if not p.name.startswith((".", "_")):
                h.update(str(p.relative_to(out)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def sampled_driver(
    cluster: LocalCluster, cli_args: list[str], output: Path, timeout: float, on_phase=None
) -> tuple["Sampler", str, float, int]:
    """`curate CLI_ARGS` as a driver process of its own on the cluster, sampled while it runs:
    (sampler, stderr, wall seconds, return code)."""
    env = dict(cluster.env, RAY_ADDRESS=cluster.address)
    t0 = time.monotonic()
    driver = subprocess.Popen(
        [sys.executable, "-m", "curation.cli", *cli_args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = Sampler(driver, cluster, output, on_phase)
    sampler.start()
    try:
        _, err = driver.communicate(timeout=timeout)
    finally:
        sampler.stop.set()
        sampler.join()
    return sampler, err, time.monotonic() - t0, driver.returncode


MIX_TOKENS_PER_DOC = 200  # the mixture's target per pool document (the pool holds about 350 a document)
MIX_SHARD_TOKENS = 3_000_000  # 4 shards at 1x, 67 at 16x


def generate_pool(folder: Path, n: int, data: Path, seed: int = 0, per_file: int = DOCS_PER_FILE) -> None:
    """A mixture pool: n curated-like documents (id, text, source, domain, lang) in Parquet files of
    DOCS_PER_FILE, over 3 sources and the languages of `sentence_pools` (70% English)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    pools = sentence_pools(data)
    en = next(p for lang, p in pools if lang == "en")
    others = [(lang, p) for lang, p in pools if lang != "en"]
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, n, per_file):
        rows: dict[str, list] = {"id": [], "text": [], "source": [], "domain": [], "lang": []}
        for i in range(start, min(n, start + per_file)):
            lang, pool = ("en", en) if rng.random() < 0.7 else rng.choice(others)
            rows["id"].append(f"d{i}")
            rows["text"].append(" ".join(rng.choice(pool) for _ in range(rng.randint(6, 16))))
            rows["source"].append(rng.choice(("web", "news", "books")))
            rows["domain"].append("web")
            rows["lang"].append(lang)
        pq.write_table(pa.table(rows), folder / f"part-{start // per_file:05d}.parquet", compression="zstd")


def run_mix_once(cluster: LocalCluster, inputs: Path, output: Path, docs: int, timeout: float = 3000) -> dict:
    """One `curate mix` from a driver process of its own, sampled while it runs."""
    shutil.rmtree(output, ignore_errors=True)
    spec = output.parent / f"{output.name}.json"
    spec.write_text(
        json.dumps(
            {
                "kind": "mix",
                "name": "scale-mix",
                "inputs": [str(inputs)],
                "output": str(output),
                "target_tokens": docs * MIX_TOKENS_PER_DOC,
                "bucket_by": ["source", "lang"],
                "shard_tokens": MIX_SHARD_TOKENS,
                "formats": ["parquet", "megatron"],
                "execution": {"engine": "ray"},
            }
        )
    )
    sampler, err, wall, returncode = sampled_driver(cluster, ["mix", str(spec)], output, timeout)
    res: dict = {
        "kind": "mix",
        "returncode": returncode,
        "seconds": round(wall, 1),
        "docs": docs,
        "driver_peak_rss_mb": round(sampler.driver_peak / 1e6, 1),
        "largest_process_rss_mb": round(sampler.largest[0] / 1e6, 1),
        "largest_process": sampler.largest[1],
        "largest_process_heap_mb": round(sampler.largest_heap[0] / 1e6, 1),
        "all_processes_peak_rss_mb": round(sampler.total_peak / 1e6, 1),
        "stderr_tail": err[-3000:],
    }
    manifest = output / "manifest.json"
    if returncode == 0 and manifest.exists():
        m = json.loads(manifest.read_text())
        io = m.get("io", {})
        res.update(
            selected_tokens=m["achieved_tokens"],
            target_tokens=m["target_tokens"],
            shards=len(m["shards"]),
            pool_documents=m["pool_documents"],
            phase_s=io.get("phase_seconds", {}),
            shard_read_bytes=io.get("read_bytes"),
            shard_written_bytes=io.get("written_bytes"),
            read_per_written=round(io["read_bytes"] / io["written_bytes"], 3) if io.get("written_bytes") else None,
            us_per_selected_token=round(wall / m["achieved_tokens"] * 1e6, 4),
        )
    return res


def mix_runs(cluster: LocalCluster, work: Path, base: int, sizes: list[int], data: Path, say) -> dict:
    """`curate mix` at each size: the runs, their 16x/1x growth and the issue's limits."""
    runs = []
    for m in sizes:
        inputs = work / f"pool-{m}x"
        t0 = time.monotonic()
        generate_pool(inputs, base * m, data)
        say(f"mix {m}x: generated a pool of {base * m:,} documents in {time.monotonic() - t0:.0f}s")
        r = run_mix_once(cluster, inputs, work / f"mix-{m}x", base * m)
        r["size"] = m
        say(json.dumps({k: v for k, v in r.items() if k != "stderr_tail"}))
        if r["returncode"] != 0:
            say(r["stderr_tail"])
        runs.append(r)
        shutil.rmtree(work / f"mix-{m}x", ignore_errors=True)
        shutil.rmtree(inputs, ignore_errors=True)
    out: dict = {"runs": runs}
    if len(runs) > 1 and all(r["returncode"] == 0 for r in runs):
        a, b = runs[0], runs[-1]
        g = {
            "driver_peak_rss_mb": round(b["driver_peak_rss_mb"] / a["driver_peak_rss_mb"], 3),
            "largest_process_rss_mb": round(b["largest_process_rss_mb"] / a["largest_process_rss_mb"], 3),
            "us_per_selected_token": round(b["us_per_selected_token"] / a["us_per_selected_token"], 3),
            "size": b["size"] / a["size"],
        }
        out["growth"] = g
        out["within_limits"] = (
            g["driver_peak_rss_mb"] < MIX_LIMITS["driver_peak_rss_mb"]
            and g["us_per_selected_token"] < MIX_LIMITS["us_per_selected_token"]
            and all((r["read_per_written"] or 99) < MIX_LIMITS["read_per_written"] for r in runs)
        )
    return out


def mix_table(runs: list[dict]) -> str:
    head = [
        "size",
        "docs",
        "seconds",
        "pool",
        "select",
        "shards",
        "shards n",
        "selected tokens",
        "us/token",
        "driver MB",
        "largest MB",
        "read/written",
    ]
    rows = [head]
    for r in runs:
        ph = r.get("phase_s", {})
        rows.append(
            [
                f"{r['size']}x",
                f"{r['docs']:,}",
                f"{r['seconds']:.0f}",
                f"{ph.get('pool', 0):.0f}",
                f"{ph.get('select', 0):.1f}",
                f"{ph.get('shards', 0):.0f}",
                str(r.get("shards", "-")),
                f"{r.get('selected_tokens', 0):,}",
                f"{r.get('us_per_selected_token', 0):.3f}",
                f"{r['driver_peak_rss_mb']:.0f}",
                f"{r['largest_process_rss_mb']:.0f}",
                f"{r.get('read_per_written')}",
            ]
        )
    w = [max(len(x[i]) for x in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w[i]) for i, c in enumerate(x)) for x in rows)


def run_once(
    cluster: LocalCluster,
    inputs: Path,
    output: Path,
    kill_in_dedup: bool = False,
    resume: bool = False,
    light: bool = False,
    timeout: float = 3000,
) -> dict:
    """One curate job from a driver process of its own, sampled while it runs; the SPEC section 11 figures."""
    if not resume:
        shutil.rmtree(output, ignore_errors=True)
    spec = output.parent / f"{output.name}.json"
    spec.write_text(json.dumps(job_spec(inputs, output, light)))
    killed: list[int] = []

    def on_phase(phase: str) -> None:
        if kill_in_dedup and phase == "dedup" and not killed:
            time.sleep(1.0)  # into the shuffle, not at its first line
            killed.append(cluster.kill_worker_raylet(0))

    sampler, err, wall, returncode = sampled_driver(cluster, ["run", str(spec)], output, timeout, on_phase)
    cpu = sampler.cpu_used()
    res = {
        "kind": "curate",
        "returncode": returncode,
        "seconds": round(wall, 1),
        "first_record_s": None if sampler.first_write is None else round(sampler.first_write, 1),
        "driver_peak_rss_mb": round(sampler.driver_peak / 1e6, 1),
        "driver_peak_rss_mb_by_phase": {k: round(v / 1e6, 1) for k, v in sampler.driver_by_phase.items()},
        "largest_process_rss_mb": round(sampler.largest[0] / 1e6, 1),
        "largest_process": sampler.largest[1],
        "largest_process_heap_mb": round(sampler.largest_heap[0] / 1e6, 1),
        "largest_heap_process": sampler.largest_heap[1],
        "peak_rss_mb_by_task": _top_mb(sampler.by_task),
        "peak_heap_mb_by_task": _top_mb(sampler.heap_by_task),
        "all_processes_peak_rss_mb": round(sampler.total_peak / 1e6, 1),
        "cluster_cpu_seconds": round(cpu, 1),
        "read_bytes": folder_bytes(inputs),
        "killed_raylet": killed[0] if killed else None,
        "stderr_tail": err[-3000:],
    }
    stats_path = output / "stats.json"
    if returncode == 0 and stats_path.exists():
        stats = json.loads(stats_path.read_text())
        res["docs"] = stats["input_records"]
        res["docs_per_s"] = round(stats["input_records"] / wall, 1)
        res["written_bytes"] = folder_bytes(output)
        res["input_files"] = stats["input_files"]
        res["phase_s"] = stats.get("phase_seconds", {})
        res["dedup"] = {
            k: v
            for k, v in (stats.get("dedup") or {}).items()
            if k
            in (
                "candidate_documents",
                "clusters",
                "duplicates",
                "candidate_edges",
                "rejected_edges",
                "edges",
                "edges_max_per_task",
                "rounds",
                "partitions",
                "file_groups",
            )
        }
        res["by_reason"] = {k: v for k, v in stats["by_reason"].items() if k.endswith("duplicate")}
        res["digest"] = digest(output)
    return res


def table(runs: list[dict]) -> str:
    head = [
        "size",
        "docs",
        "seconds",
        "annotate",
        "dedup",
        "write",
        "docs/s",
        "first record s",
        "driver MB",
        "largest MB",
        "largest heap MB",
        "all MB",
        "edges",
        "max edges/task",
    ]
    rows = [head]
    for r in runs:
        ph = r.get("phase_s", {})
        d = r.get("dedup", {})
        rows.append(
            [
                f"{r['size']}x",
                f"{r.get('docs', 0):,}",
                f"{r['seconds']:.0f}",
                f"{ph.get('annotate', 0):.0f}",
                f"{ph.get('dedup', 0):.1f}",
                f"{ph.get('write', 0):.1f}",
                f"{r.get('docs_per_s', 0):,.0f}",
                f"{r['first_record_s']}",
                f"{r['driver_peak_rss_mb']:.0f}",
                f"{r['largest_process_rss_mb']:.0f}",
                f"{r.get('largest_process_heap_mb', 0):.0f}",
                f"{r['all_processes_peak_rss_mb']:.0f}",
                f"{d.get('edges', 0):,}",
                f"{d.get('edges_max_per_task', 0):,}",
            ]
        )
    w = [max(len(x[i]) for x in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w[i]) for i, c in enumerate(x)) for x in rows)


GROWTH_KEYS = (
    "seconds",
    "docs_per_s",
    "first_record_s",
    "driver_peak_rss_mb",
    "largest_process_rss_mb",
    "largest_process_heap_mb",
    "read_bytes",
    "written_bytes",
)


def growth(runs: list[dict]) -> dict[str, float]:
    """The largest size against the smallest, per figure; `seconds_per_doc` is what the time limit is about."""
    a, b = runs[0], runs[-1]
    out = {k: round(b[k] / a[k], 3) for k in GROWTH_KEYS if a.get(k) and b.get(k) is not None}
    out["seconds_per_doc"] = round((b["seconds"] / b["docs"]) / (a["seconds"] / a["docs"]), 3)
    out["size"] = b["size"] / a["size"]
    return out


LIMITS = {"driver_peak_rss_mb": 1.2, "largest_process_rss_mb": 1.5, "seconds_per_doc": 1.3}  # the bar
MIX_LIMITS = {"driver_peak_rss_mb": 1.2, "us_per_selected_token": 1.3, "read_per_written": 3.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-docs", "--base", dest="base", type=int, default=62_500, help="documents at 1x")
    ap.add_argument("--sizes", default="1,4,16")
    ap.add_argument("--nodes", type=int, default=2, help="worker nodes beside the head (1 CPU each)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--work", type=Path, default=None, help="folder for inputs and outputs (default: a temp dir)")
    ap.add_argument("--no-kill", action="store_true", help="skip the node-kill run")
    ap.add_argument("--big-file-gb", type=float, default=1.0, help="the one-big-file run (0: skip)")
    ap.add_argument(
        "--kind",
        choices=["curate", "mix", "all"],
        default="curate",
        help="the curate job (default), curate mix, or both",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip() and int(s) > 0]  # --sizes 0: none
    work = args.work or Path(tempfile.mkdtemp(prefix="curation-scale-"))
    results: dict = {"base_docs": args.base, "nodes": 1 + args.nodes, "cpus_per_node": 1, "runs": []}
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    try:
        with LocalCluster(workers=args.nodes, cpus_per_node=1) as cluster:
            say(f"cluster: head + {args.nodes} workers, 1 CPU each, at {cluster.address}")
            if args.kind in ("mix", "all"):
                results["mix"] = mix_runs(cluster, work, args.base, sizes, args.data, say)
                print(mix_table(results["mix"]["runs"]), flush=True)
                if "growth" in results["mix"]:
                    g = results["mix"]["growth"]
                    print(
                        f"mix {sizes[-1]}x / {sizes[0]}x: "
                        + ", ".join(f"{k} {v}" for k, v in g.items())
                        + f"; limits {MIX_LIMITS}: {'ok' if results['mix']['within_limits'] else 'OVER'}",
                        flush=True,
                    )
            for m in sizes if args.kind in ("curate", "all") else []:
                inputs = work / f"in-{m}x"
                t0 = time.monotonic()
                planted = generate(inputs, args.base * m, args.data)
                say(f"{m}x: generated {args.base * m:,} documents in {time.monotonic() - t0:.0f}s (planted {planted})")
                r = run_once(cluster, inputs, work / f"out-{m}x")
                r.update(size=m, planted=planted)
                say(json.dumps({k: v for k, v in r.items() if k != "stderr_tail"}))
                if r["returncode"] != 0:
                    say(r["stderr_tail"])
                results["runs"].append(r)
                if m != sizes[0]:  # the smallest stays for the node-kill run
                    shutil.rmtree(work / f"out-{m}x", ignore_errors=True)
                    shutil.rmtree(inputs, ignore_errors=True)
            if results["runs"]:
                print(table(results["runs"]), flush=True)
            done = [r for r in results["runs"] if r["returncode"] == 0]  # a failed size is reported, not compared
            if len(done) > 1 and done[0]["size"] == sizes[0] and done[-1]["size"] == sizes[-1]:
                g = growth(done)
                results["growth"] = {"curate": g}
                verdict = {k: ("ok" if g[k] < lim else "OVER") for k, lim in LIMITS.items()}
                results["within_limits"] = all(v == "ok" for v in verdict.values())
                print(f"\n{sizes[-1]}x / {sizes[0]}x: " + ", ".join(f"{k} {v}" for k, v in g.items()))
                print(
                    "limits (16x/1x): "
                    + ", ".join(f"{k} < {lim} {verdict[k]}" for k, lim in LIMITS.items())
                    + f"; first record at most {max(r['first_record_s'] or 1e9 for r in results['runs'])} s (< 30)"
                )
            if args.big_file_gb > 0 and args.kind != "mix":
                results["big_file"] = big_file_run(cluster, work, args.big_file_gb, args.data, 1 + args.nodes)
                print(f"\none {args.big_file_gb:g} GB JSONL file: {results['big_file']['summary']}")
            if not args.no_kill and results["runs"]:
                m = sizes[0]
                base = results["runs"][0]
                k = run_once(cluster, work / f"in-{m}x", work / f"out-{m}x-kill", kill_in_dedup=True)
                kill = {
                    "killed_raylet": k["killed_raylet"],
                    "returncode": k["returncode"],
                    "identical": k.get("digest") == base.get("digest"),
                    "resumed": False,
                }
                if k["returncode"] != 0:  # a clear failure is allowed if the same command resumes to identical output
                    kill["failure"] = k["stderr_tail"].strip().splitlines()[-1:]
                    again = run_once(cluster, work / f"in-{m}x", work / f"out-{m}x-kill", resume=True)
                    kill.update(
                        resumed=True,
                        resume_returncode=again["returncode"],
                        identical=again.get("digest") == base.get("digest"),
                    )
                results["node_kill"] = kill
                print(f"\nnode kill in the dedup phase ({m}x): {kill}")
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    ok = all(r["returncode"] == 0 for r in results["runs"] + results.get("mix", {}).get("runs", [])) and results.get(
        "node_kill", {}
    ).get("identical", True)
    return 0 if ok else 1


def big_file_run(cluster: LocalCluster, work: Path, gigabytes: float, data: Path, cpus: int) -> dict:
    """One JSONL file of `gigabytes`: split into read tasks (execution.split_bytes), does the job keep every
    CPU of the cluster busy? Utilization = the cluster's CPU seconds / (annotate wall x CPUs)."""
    folder = work / "in-big"
    n = int(gigabytes * 1e9 / 1400) + 1  # the generated documents average about 1.4 kB
    generate(folder, n, data, seed=1, per_file=n)
    size = folder_bytes(folder)
    r = run_once(cluster, folder, work / "out-big", light=True)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(work / "out-big", ignore_errors=True)
    annotate = r.get("phase_s", {}).get("annotate") or r["seconds"]
    # The nodes' CPUs may be more than the machine's cores (3 one-CPU nodes on a 2-core machine): busy
    # is measured against what can run at once.
    usable = min(cpus, os.cpu_count() or cpus)
    util = r["cluster_cpu_seconds"] / (r["seconds"] * usable)
    r.update(
        file_bytes=size,
        cpus=cpus,
        usable_cores=usable,
        cpu_utilization=round(util, 3),
        summary=f"{size / 1e9:.2f} GB, {r.get('docs', 0):,} documents in {r.get('input_files')} read tasks, "
        f"{r['seconds']:.0f} s (annotate {annotate:.0f} s); the cluster's processes kept {util:.0%} "
        f"of {usable} usable cores busy over the whole job",
    )
    return r


if __name__ == "__main__":
    sys.exit(main())
