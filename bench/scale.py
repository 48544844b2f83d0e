"""The curate job at 1x, 4x and 16x on a local multi-node Ray cluster: does anything grow with the corpus?

Generates N documents of real text (sentences from `../shared/data`, with planted exact and near copies
at known rates) as JSONL files, starts a head and 2 worker nodes (`ray start`, one CPU each, their own
temp dirs, ended by pid), runs the curate job (language ID, heuristic filters, exact + MinHash dedup)
from a driver process of its own, and samples every process's memory while it runs. Per size it prints
per phase seconds and documents/s, seconds to the first written record, driver peak RSS, the largest
single process's RSS, edges per clustering task, and the 16x/1x ratios. Then it kills one worker
node's raylet in the middle of the dedup phase and checks the job still ends with output identical to
the undisturbed run (or fails clearly and resumes to identical output).

    python bench/scale.py [--base 62500] [--sizes 1,4,16] [--json OUT.json] [--no-kill]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
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

from bench.local_cluster import LocalCluster, command_line, descendants, rss_bytes  # noqa: E402

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


def generate(folder: Path, n: int, data: Path, seed: int = 0) -> dict[str, int]:
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
        if i % DOCS_PER_FILE == 0:
            if out:
                out.close()
            out = open(folder / f"part-{i // DOCS_PER_FILE:05d}.jsonl", "w")
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


def job_spec(inputs: Path, output: Path) -> dict:
    return {"name": "scale", "output": str(output),
            "inputs": [{"path": str(inputs), "format": "jsonl", "source": "scale", "domain": "web"}],
            "languages": "qwen29",
            "stages": {"langid": {}, "filters": {"gopher_quality": {}, "gopher_repetition": {}, "c4": {},
                                                 "fineweb": {}},
                       "dedup": {"exact": {}, "minhash": {"ngram": 5, "bands": 14, "rows": 8}}},
            "execution": {"engine": "ray"}}


class Sampler(threading.Thread):
    """Every 0.5 s: RSS of the driver and of every cluster process; the time the first annotated part
    appears under the output; the job's phase from OUT/progress.json (and a callback on phase change)."""

    def __init__(self, driver: subprocess.Popen, cluster: LocalCluster, output: Path, on_phase=None):
        super().__init__(daemon=True)
        self.driver, self.cluster, self.output, self.on_phase = driver, cluster, output, on_phase
        self.t0 = time.monotonic()
        self.driver_peak = 0
        self.largest = (0, "")
        self.total_peak = 0
        self.first_write: float | None = None
        self.phase = None
        self.stop = threading.Event()

    def run(self) -> None:
        annotated = self.output / "_work" / "annotated"
        while not self.stop.is_set():
            pids = descendants(self.driver.pid)
            d = sum(rss_bytes(p) for p in pids)  # the driver and any helper it forks
            self.driver_peak = max(self.driver_peak, d)
            total = d
            for p in self.cluster.node_pids():
                r = rss_bytes(p)
                total += r
                if r > self.largest[0]:
                    self.largest = (r, command_line(p)[:80])
            self.total_peak = max(self.total_peak, total)
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


def digest(out: Path) -> str:
    h = hashlib.sha256()
    for sub in ("curated", "rejected", "quarantine"):
        for p in sorted((out / sub).rglob("*.parquet")):
            if not p.name.startswith("_"):
                h.update(str(p.relative_to(out)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def run_once(cluster: LocalCluster, inputs: Path, output: Path, kill_in_dedup: bool = False,
             resume: bool = False, timeout: float = 3000) -> dict:
    if not resume:
        shutil.rmtree(output, ignore_errors=True)
    spec = output.parent / f"{output.name}.json"
    spec.write_text(json.dumps(job_spec(inputs, output)))
    env = dict(cluster.env, RAY_ADDRESS=cluster.address)
    t0 = time.monotonic()
    driver = subprocess.Popen([sys.executable, "-m", "curation.cli", "run", str(spec)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: list[int] = []

    def on_phase(phase: str) -> None:
        if kill_in_dedup and phase == "dedup" and not killed:
            time.sleep(1.0)  # into the shuffle, not at its first line
            killed.append(cluster.kill_worker_raylet(0))

    sampler = Sampler(driver, cluster, output, on_phase)
    sampler.start()
    try:
        _, err = driver.communicate(timeout=timeout)
    finally:
        sampler.stop.set()
        sampler.join()
    wall = time.monotonic() - t0
    res = {"returncode": driver.returncode, "wall_s": round(wall, 1), "stderr_tail": err[-3000:],
           "first_write_s": None if sampler.first_write is None else round(sampler.first_write, 1),
           "driver_peak_mb": round(sampler.driver_peak / 1e6, 1),
           "largest_process_mb": round(sampler.largest[0] / 1e6, 1), "largest_process": sampler.largest[1],
           "all_processes_peak_mb": round(sampler.total_peak / 1e6, 1), "killed_raylet": killed[0] if killed else None}
    stats_path = output / "stats.json"
    if driver.returncode == 0 and stats_path.exists():
        stats = json.loads(stats_path.read_text())
        res["records"] = stats["input_records"]
        res["phase_s"] = stats.get("phase_seconds", {})
        res["dedup"] = {k: v for k, v in (stats.get("dedup") or {}).items() if k in (
            "candidate_documents", "clusters", "edges", "edges_max_per_task", "tasks")}
        res["by_reason"] = {k: v for k, v in stats["by_reason"].items() if k.endswith("duplicate")}
        res["digest"] = digest(output)
    return res


def table(runs: list[dict]) -> str:
    head = ["size", "docs", "wall s", "annotate s", "dedup s", "write s", "docs/s", "first write s",
            "driver MB", "largest MB", "all MB", "edges", "max edges/task"]
    rows = [head]
    for r in runs:
        ph = r.get("phase_s", {})
        d = r.get("dedup", {})
        rows.append([f"{r['multiple']}x", f"{r['docs']:,}", f"{r['wall_s']:.0f}", f"{ph.get('annotate', 0):.0f}",
                     f"{ph.get('dedup', 0):.1f}", f"{ph.get('write', 0):.1f}", f"{r['docs'] / r['wall_s']:,.0f}",
                     f"{r['first_write_s']}", f"{r['driver_peak_mb']:.0f}", f"{r['largest_process_mb']:.0f}",
                     f"{r['all_processes_peak_mb']:.0f}", f"{d.get('edges', 0):,}", f"{d.get('edges_max_per_task', 0):,}"])
    w = [max(len(x[i]) for x in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w[i]) for i, c in enumerate(x)) for x in rows)


def ratios(runs: list[dict]) -> dict[str, float]:
    """Largest size against the smallest: what the done-when limits are about."""
    a, b = runs[0], runs[-1]
    per_doc = (b["wall_s"] / b["docs"]) / (a["wall_s"] / a["docs"])
    return {"multiple": b["multiple"] / a["multiple"],
            "driver_peak_rss": round(b["driver_peak_mb"] / a["driver_peak_mb"], 3),
            "largest_process_rss": round(b["largest_process_mb"] / a["largest_process_mb"], 3),
            "seconds_per_document": round(per_doc, 3),
            "first_write_s_max": max(r["first_write_s"] or float("inf") for r in runs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=int, default=62_500, help="documents at 1x")
    ap.add_argument("--sizes", default="1,4,16")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--work", type=Path, default=None, help="folder for inputs and outputs (default: a temp dir)")
    ap.add_argument("--no-kill", action="store_true", help="skip the node-kill run")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="curation-scale-"))
    results: dict = {"base": args.base, "runs": []}
    try:
        with LocalCluster(workers=2, cpus_per_node=1) as cluster:
            print(f"cluster: head + 2 workers, 1 CPU each, at {cluster.address}", file=sys.stderr)
            for m in sizes:
                inputs = work / f"in-{m}x"
                t0 = time.monotonic()
                planted = generate(inputs, args.base * m, args.data)
                print(f"{m}x: generated {args.base * m:,} documents in {time.monotonic() - t0:.0f}s "
                      f"(planted {planted})", file=sys.stderr)
                r = run_once(cluster, inputs, work / f"out-{m}x")
                r.update(multiple=m, docs=args.base * m, planted=planted)
                print(json.dumps({k: v for k, v in r.items() if k != "stderr_tail"}), file=sys.stderr)
                if r["returncode"] != 0:
                    print(r["stderr_tail"], file=sys.stderr)
                results["runs"].append(r)
                if m != sizes[0]:  # the smallest stays for the node-kill run
                    shutil.rmtree(work / f"out-{m}x", ignore_errors=True)
                    shutil.rmtree(inputs, ignore_errors=True)
            print("\n" + table(results["runs"]))
            if len(results["runs"]) > 1 and all(r["returncode"] == 0 for r in results["runs"]):
                results["ratios"] = ratios(results["runs"])
                print(f"\n{sizes[-1]}x / {sizes[0]}x: " + ", ".join(f"{k} {v}" for k, v in results["ratios"].items()))
            if not args.no_kill:
                m = sizes[0]
                base = results["runs"][0]
                k = run_once(cluster, work / f"in-{m}x", work / f"out-{m}x-kill", kill_in_dedup=True)
                kill = {"killed_raylet": k["killed_raylet"], "returncode": k["returncode"],
                        "identical": k.get("digest") == base.get("digest"), "resumed": False}
                if k["returncode"] != 0:  # a clear failure is allowed if the same command resumes to identical output
                    kill["failure"] = k["stderr_tail"].strip().splitlines()[-1:]
                    again = run_once(cluster, work / f"in-{m}x", work / f"out-{m}x-kill", resume=True)
                    kill.update(resumed=True, resume_returncode=again["returncode"],
                                identical=again.get("digest") == base.get("digest"))
                results["node_kill"] = kill
                print(f"\nnode kill in the dedup phase ({m}x): {kill}")
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    ok = all(r["returncode"] == 0 for r in results["runs"]) and results.get("node_kill", {}).get("identical", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
