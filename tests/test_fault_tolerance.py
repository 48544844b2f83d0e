"""Jobs survive what clusters do to them: a killed driver resumes to identical output, a killed Ray actor
is replaced without changing the output, a full disk or an unwritable output stops the job with a clear
message and leaves no partial file under a final name."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation.job import JobError, run_job
from curation.progress import Progress
from curation.spec import parse_spec
from tests.conftest import read_jsonl_gz, shared_file

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Reuters as 8 JSONL shards (8 input files, so a job has several files to finish one by one)."""
    docs = read_jsonl_gz(shared_file("news_reuters21578.jsonl.gz"), 8000)
    d = tmp_path_factory.mktemp("shards")
    for k in range(8):
        with (d / f"part-{k}.jsonl").open("w") as f:
            for r in docs[k::8]:
                f.write(json.dumps({"id": r["id"], "text": r["text"]}) + "\n")
    return d


def spec_for(shards: Path, out: Path, engine: str = "local") -> dict:
    return {
        "name": "ft",
        "output": str(out),
        "inputs": [{"path": str(shards), "format": "jsonl", "source": "r"}],
        "stages": {"langid": {}, "filters": {"gopher_quality": {}, "c4": {}}, "dedup": {"exact": {}, "minhash": {}}},
        "execution": {"engine": engine, "batch_size": 50},
    }


def digest(out: Path) -> dict[str, str]:
    """sha256 of every output file under a final name (curated, rejected, quarantine)."""
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for sub in ("curated", "rejected", "quarantine")
        for p in sorted((out / sub).rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def undisturbed(shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("undisturbed") / "out"
    stats = run_job(parse_spec(spec_for(shards, out)), progress=Progress(enabled=False))
    return out, stats


def run_cli(spec: dict, path: Path, preamble: str = "", **kw) -> subprocess.Popen:
    path.write_text(json.dumps(spec))
    code = f"import sys\n{preamble}\nfrom curation.cli import main\nsys.exit(main(['run', {str(path)!r}, '--quiet']))"
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def test_killed_driver_resumes_to_identical_output(shards, undisturbed, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(spec_for(shards, out), tmp_path / "job.json")
    done = out / "_work" / "done"
    deadline = time.monotonic() + 120
    while not (done.exists() and len(list(done.glob("*.json"))) >= 2):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # our own child, by pid
    proc.wait(timeout=30)
    finished = len(list(done.glob("*.json")))
    assert 2 <= finished < 8, finished  # killed part way
    stats = run_job(parse_spec(spec_for(shards, out)), progress=Progress(enabled=False))
    assert stats["input_records"] == undisturbed[1]["input_records"]
    assert digest(out) == digest(undisturbed[0])


@pytest.mark.parametrize("phase", ["dedup", "write"])
def test_full_disk_stops_clearly_without_partial_files_under_final_names(shards, undisturbed, tmp_path, phase):
    out = tmp_path / "out"
    # A file-size limit makes every write past 40 kB fail with EFBIG, as a full disk does (ENOSPC): the small
    # batches of the annotate phase fit; the dedup exchange files (a group's keys) do not, and without dedup
    # the curated files of the write phase (about 60 kB) do not.
    limit = (
        "import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))"
    )
    spec = spec_for(shards, out)
    if phase == "write":
        del spec["stages"]["dedup"]
        reference = tmp_path / "reference"
        run_job(parse_spec(spec_for(shards, reference) | {"stages": spec["stages"]}), progress=Progress(enabled=False))
    else:
        reference = undisturbed[0]
    proc = run_cli(spec, tmp_path / "job.json", limit)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert "I/O error, job stopped" in err and "File too large" in err and "Traceback" not in err
    assert len(list((out / "_work" / "done").glob("*.json"))) == 8  # annotate finished; a later phase failed
    if phase == "write":
        assert list(out.rglob(".inprogress-*"))  # the partial file kept its in-progress name
    else:
        assert not (out / "curated").exists()
        assert not [p for p in (out / "_work").rglob("*.arrow")]  # no exchange file left behind
    for sub in ("curated", "rejected", "quarantine"):
        for p in (out / sub).rglob("*.parquet"):
            if not p.name.startswith((".", "_")):
                pq.read_table(p)  # whole, or it would not carry its final name
    # With room again, the same command finishes the job, identical to an undisturbed run.
    run_job(parse_spec(spec), progress=Progress(enabled=False))
    assert digest(out) == digest(reference)
    assert not [p for p in out.rglob(".inprogress-*")]


@pytest.mark.parametrize("output", ["/proc/curation-test-output", "{tmp}/a-file/out"])
def test_unwritable_output_fails_up_front(shards, tmp_path, output):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(JobError, match="cannot write to output"):
        run_job(parse_spec(spec_for(shards, Path(output.format(tmp=tmp_path)))), progress=Progress(enabled=False))


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process under `root`, from /proc (Linux)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, frontier = {}, [root]
    while frontier:
        p = frontier.pop()
        for child in [c for c, pp in parent.items() if pp == p]:
            try:
                out[child] = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            frontier.append(child)
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray's worker processes through /proc")
def test_killed_stage_actor_is_replaced_and_output_is_identical(shards, undisturbed, tmp_path, ray_session):
    """SIGKILL one of the Ray Data actors running the model stages while it works: Ray restarts it and
    retries its batch, and the job's output is byte-identical to the undisturbed run."""
    out = tmp_path / "out"
    result: dict = {}

    def job() -> None:
        try:
            result["stats"] = run_job(parse_spec(spec_for(shards, out, engine="ray")), progress=Progress(enabled=False))
        except Exception as e:  # reported by the assertions below
            result["error"] = e

    t = threading.Thread(target=job)
    t.start()
    killed = None
    deadline = time.monotonic() + 180
    while t.is_alive() and killed is None and time.monotonic() < deadline:
        work = out / "_work" / "annotated"
        if work.exists() and any(work.rglob("*.parquet")):  # batches are flowing through the actors
            # Ray's workers are descendants of this process (the suite's own Ray session); an actor of the
            # stage pools names itself after its stages: ray::MapWorker(MapBatches(Stages[domain+langid])).
            # (so this test also checks that the operators are named after their stages)
            stage_actors = [
                pid for pid, cmd in descendants(os.getpid()).items() if "MapWorker" in cmd and "Stages[" in cmd
            ]
            if stage_actors:
                killed = stage_actors[0]
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    t.join(timeout=300)
    assert killed is not None, "the job finished before an actor could be killed"
    assert "error" not in result, result.get("error")
    stats = result["stats"]
    assert stats["input_records"] == stats["kept"] + stats["rejected"] + stats["quarantined"]
    assert stats["input_records"] == undisturbed[1]["input_records"]
    assert digest(out) == digest(undisturbed[0])
