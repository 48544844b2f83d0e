"""Where work runs: in this process (`LocalExecutor`) or on a Ray cluster (`RayExecutor`), the two
implementations of `curation.executor.Executor` that every job kind uses (`executor_for(job)`).

Both run the same pure functions (`curation.stages`, `curation.dedup.shuffle`, `curation.outputs`);
this module is the only one that knows about Ray. On Ray the per-document stages are a Ray Data
streaming pipeline with backpressure: read tasks, then one operator per group of consecutive stages that
share a pool (`Stage.resources`: an autoscaling actor pool where a stage holds a model, set up once per
actor; tasks otherwise), then write tasks. The distributed steps (dedup, mixtures) are Ray tasks that
hand data on through files (`curation.exchange`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.dedup import shuffle
from curation.dedup.distributed import run_dedup
from curation.exchange import LocalRunner
from curation.executor import AnyJob, Executor, WorkerLost, WorkerPool
from curation.io.formats import ReadSummary, read_file
from curation.io.readers import RAW_SCHEMA, ReadLimits
from curation.io.sources import InputFile
from curation.outputs import Layout, batch_stats, write_annotated_part
from curation.spec import CurateJob
from curation.stages import registry as stage_registry
from curation.stages.base import Stage


def read_batches(f: InputFile, limits: ReadLimits) -> Iterator[pa.Table]:
    """The file's RAW batches with bookkeeping columns: `_batch` (the batch's first document number,
    which names its part file), `_file`, and on the last batch `_file_rows` (the file's record total,
    -1 before) and `_blank_lines`, which is how the driver knows a file is complete. An empty file
    yields one marker row (`_empty`) that is counted as zero records and never written."""
    summary = ReadSummary()
    total = 0
    prev = None
    for t in read_file(f, limits, summary):
        if prev is not None:
            yield _with_file_meta(prev, -1, 0, f.ordinal)
        total += len(t)
        prev = t
    if prev is None:
        marker = {name: [None] for name in RAW_SCHEMA.names}
        marker.update(_doc=[(f.ordinal << 32) | 0xFFFFFFFE], error=["(empty file)"])
        yield _with_file_meta(
            pa.Table.from_pydict(marker, schema=RAW_SCHEMA), 0, summary.blank_lines, f.ordinal, empty=True
        )
    else:
        yield _with_file_meta(prev, total, summary.blank_lines, f.ordinal)


def _with_file_meta(t: pa.Table, file_rows: int, blank: int, ordinal: int, empty: bool = False) -> pa.Table:
    n = len(t)
    first = t["_doc"][0].as_py()
    in_bytes = np.zeros(n, dtype=np.int64)  # the batch's text bytes as read (stages rewrite text later)
    in_bytes[0] = pc.sum(pc.binary_length(t["text"].cast(pa.large_binary()))).as_py() or 0
    t = t.append_column("_in_bytes", pa.array(in_bytes))
    for name, value, type_ in (
        ("_batch", first, pa.int64()),
        ("_file", ordinal, pa.int64()),
        ("_file_rows", file_rows, pa.int64()),
        ("_blank_lines", blank, pa.int64()),
        ("_empty", empty, pa.bool_()),
    ):
        t = t.append_column(name, pa.array([value] * n, type_))
    return t


_BOOKKEEPING = ("_batch", "_file", "_file_rows", "_blank_lines", "_empty", "_in_bytes")


def write_batches(t: pa.Table, layout: Layout) -> list[dict[str, Any]]:
    """Persist processed rows, one part file per reader batch, and describe each for the driver.

    Ray Data hands a writer blocks of about `execution.block_bytes`: several reader batches glued
    together, or slices of one. Parts are per batch within a block and named by their first document,
    so they sort in input order; the final files do not depend on where blocks were cut."""
    rows = []
    batches = t["_batch"].to_numpy()
    for b in np.unique(batches):
        g = t.filter(pa.array(batches == b))
        # Named after its first document, not the batch: a batch sliced into several blocks gives
        # several parts that sort in input order instead of overwriting one another.
        first = int(g["_doc"][0].as_py())
        row = {
            "ordinal": int(g["_file"][0].as_py()),
            "file_rows": int(pc.max(g["_file_rows"]).as_py()),
            "blank_lines": int(pc.max(g["_blank_lines"]).as_py()),
        }
        g = g.filter(pc.invert(g["_empty"]))
        t0 = time.perf_counter()
        stats = batch_stats(g)
        keep = [c for c in g.column_names if not c.startswith("_t_") and c not in _BOOKKEEPING]
        write_annotated_part(layout, g.select(keep), part=first)
        stats["timings"]["write_annotated"] = stats["timings"].get("write_annotated", 0.0) + time.perf_counter() - t0
        row.update(rows=len(g), stats=stats)
        rows.append(row)
    return rows


def map_keys(layout: Layout, ordinals: Sequence[int], partitions: int) -> list[np.ndarray]:
    """Dedup mapper: keyed records of the surviving documents of some input files, partitioned."""
    return shuffle.partition(shuffle.annotated_key_records(layout, ordinals), partitions)


def _group(ordinals: Sequence[int], groups: int) -> list[list[int]]:
    groups = max(1, min(groups, len(ordinals)))
    return [list(ordinals[i::groups]) for i in range(groups)]


def _curate(job: AnyJob) -> CurateJob:
    if not isinstance(job, CurateJob):
        raise TypeError(f"the stage pipeline runs curate jobs, not {type(job).__name__}")
    return job


def executor_for(job: AnyJob, address: str | None = None) -> Executor:
    """The executor of a job of any kind: its `execution.engine` (local, or Ray at `address`)."""
    if job.execution.engine == "local":
        return LocalExecutor(job)
    return RayExecutor(job, address)


class LocalExecutor:
    """Runs everything in this process: no Ray start-up cost, for small inputs and tests."""

    name = "local"

    def __init__(self, job: AnyJob):
        self.job = job
        self.layout = Layout(job.output)

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    @property
    def cpus(self) -> int:
        return 1

    def annotate(self, files: Sequence[InputFile], limits: ReadLimits) -> Iterator[dict[str, Any]]:
        stages = _build_stages(_curate(self.job))
        for f in files:
            for t in read_batches(f, limits):
                yield from write_batches(stage_registry.run(t, stages), self.layout)

    def runner(self) -> LocalRunner:
        """Where the steps of a distributed phase run (`curation.exchange.Steps`): here, one by one."""
        return LocalRunner()

    def dedup(self, ordinals: Sequence[int], partitions: int, groups: int, **kw: Any) -> dict[str, Any]:
        return run_dedup(LocalRunner(), self.layout, _group(ordinals, groups), partitions, map_keys=map_keys, **kw)

    def share(self, value: Any) -> Any:
        """A value many `map` calls take: itself here (on Ray, one copy in the object store)."""
        return value

    @property
    def gpus(self) -> int:
        return 0

    def worker_pool(self, cls: type, args: tuple, n: int, *, gpus_each: float = 0, cpus_each: float = 1) -> WorkerPool:
        """One worker in this process, whatever `n` asks for (a local job holds one copy of a model)."""
        return _LocalWorkers(cls(*args))

    def map(
        self,
        fn: Callable,
        arg_lists: Iterable[tuple],
        *,
        report: Callable[[int, int], None] | None = None,
        every: float = 10.0,
        num_cpus: float = 0.5,
    ) -> list[Any]:
        """fn(*args) for each args, in order; `report(done, total)` at most every `every` seconds."""
        arg_lists = list(arg_lists)
        out, last = [], time.monotonic()
        for args in arg_lists:
            out.append(fn(*args))
            if report is not None and time.monotonic() - last >= every:
                last = time.monotonic()
                report(len(out), len(arg_lists))
        return out


class RayExecutor:
    """Runs the job on a Ray cluster: the one at `address`, or a local one started (and stopped) here."""

    name = "ray"

    def __init__(self, job: AnyJob, address: str | None = None):
        self.job = job
        self.layout = Layout(job.output)
        self.address = address
        self._started = False
        self._temp_dir: str | None = None

    def __enter__(self) -> "RayExecutor":
        import ray

        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS")
            extra = {}
            if not address:
                # "local" starts a fresh cluster rather than attaching to a stale one found on disk, and
                # a temp dir of its own keeps it from becoming the "latest cluster" that Ray's "auto"
                # resolves to for other clusters' jobs on this machine.
                self._temp_dir = tempfile.mkdtemp(prefix="curation-ray-", dir="/tmp")
                extra = {"include_dashboard": False, "_temp_dir": self._temp_dir}
            ray.init(address=address or "local", log_to_driver=False, logging_level="ERROR", **extra)
            self._started = True
        import logging

        from ray.data import DataContext

        logging.getLogger("ray.data").setLevel(logging.ERROR)  # our progress lines replace its INFO logs
        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.verbose_stats_logs = False
        # Ray Data buffers what a generator UDF yields until it reaches the target block size (128 MiB
        # by default): the per-file read task handed over each file as one block, and the actor pools
        # then ran whole files per call, so nothing was written for minutes and a read task held a file.
        block = getattr(self.job.execution, "block_bytes", None)  # curate jobs; mix and ablate keep Ray's
        if block:
            ctx.target_max_block_size = block
        return self

    def __exit__(self, *exc: Any) -> None:
        import ray

        if self._started:
            ray.shutdown()
            if self._temp_dir:
                shutil.rmtree(self._temp_dir, ignore_errors=True)

    @property
    def cpus(self) -> int:
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def annotate(self, files: Sequence[InputFile], limits: ReadLimits) -> Iterator[dict[str, Any]]:
        import ray

        if not files:
            return
        job, layout = _curate(self.job), self.layout
        ex = job.execution
        groups = stage_registry.pools(stage_registry.plan(job))
        by_ordinal = {f.ordinal: f for f in files}
        cpu = ex.actor_cpus
        n_pools = sum(any(s.resources.model for s in g) for g in groups) or 1
        # Actors must leave CPUs for the read and write tasks, or the pipeline deadlocks on small
        # clusters: the pools start with at most three quarters of the cluster, and as they grow Ray
        # Data's resource manager keeps a share for the other operators.
        start = max(1, int(self.cpus * 0.75 / (n_pools * cpu)))

        def pool() -> Any:
            # A fixed pool when asked for; else Ray Data's autoscaling pool: it starts at what fits now and
            # adds actors while there is work queued and a node with free CPUs (one that joins mid-job too).
            if ex.actors:
                return ray.data.ActorPoolStrategy(size=ex.actors)
            top = ex.max_actors
            return ray.data.ActorPoolStrategy(min_size=1, max_size=top, initial_size=min(start, top or start))

        def read(batch: dict) -> Iterator[pa.Table]:
            for o in batch["ordinal"]:
                f = by_ordinal[int(o)]
                for t in read_batches(f, limits):
                    yield t

        ds = ray.data.from_items([{"ordinal": f.ordinal} for f in files], override_num_blocks=len(files))
        ds = ds.map_batches(read, batch_size=1, batch_format="numpy", num_cpus=0.25)
        # One operator per pool: the stages of a pool share its workers, so no worker holds every model
        # and each pool scales with its own queue.
        for group in groups:
            names = [s.name for s in group]
            cpus = max((s.resources.cpus or cpu) for s in group)
            gpus = max(s.resources.gpus for s in group)
            extra = {"num_gpus": gpus} if gpus else {}
            if any(s.resources.model for s in group):
                ds = ds.map_batches(
                    _named_udf(names),
                    fn_constructor_args=(job, names),
                    batch_size=None,
                    batch_format="pyarrow",
                    compute=pool(),
                    num_cpus=cpus,
                    **extra,
                )
            else:
                ds = ds.map_batches(
                    _stage_fn(job, names), batch_size=None, batch_format="pyarrow", num_cpus=cpus, **extra
                )

        def write(t: pa.Table) -> pa.Table:
            return pa.table({"row": [json.dumps(r) for r in write_batches(t, layout)]})

        ds = ds.map_batches(write, batch_size=None, batch_format="pyarrow", num_cpus=0.25)
        for out in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for s in out["row"].to_pylist():
                yield json.loads(s)

    def dedup(self, ordinals: Sequence[int], partitions: int, groups: int, **kw: Any) -> dict[str, Any]:
        """The dedup task graph (`curation.dedup.distributed`) as Ray tasks: every intermediate result stays
        in the object store, decisions go to files, and only counters come back here."""
        return run_dedup(self.runner(), self.layout, _group(ordinals, groups), partitions, map_keys=map_keys, **kw)

    def runner(self) -> "_RayRunner":
        """Where the steps of a distributed phase run (`curation.exchange.Steps`): Ray tasks."""
        return _RayRunner()

    def share(self, value: Any) -> Any:
        """A value many `map` calls take, put in the object store once (tasks receive the value)."""
        import ray

        return ray.put(value)

    def map(
        self,
        fn: Callable,
        arg_lists: Iterable[tuple],
        *,
        report: Callable[[int, int], None] | None = None,
        every: float = 10.0,
        num_cpus: float = 0.5,
    ) -> list[Any]:
        """fn(*args) for each args as Ray tasks, results in order; `report(done, total)` at most every
        `every` seconds while they run."""
        import ray

        remote = ray.remote(num_cpus=num_cpus)(_releasing(fn))
        refs = [remote.remote(*args) for args in arg_lists]
        if report is not None:
            pending = list(refs)
            while pending:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=every)
                if pending:
                    report(len(refs) - len(pending), len(refs))
        return ray.get(refs)

    @property
    def gpus(self) -> int:
        import ray

        return int(ray.cluster_resources().get("GPU", 0))

    def worker_pool(self, cls: type, args: tuple, n: int, *, gpus_each: float = 0, cpus_each: float = 1) -> WorkerPool:
        """`n` Ray actors, each `cls(*args)` built once (restarted once if its process dies)."""
        import ray

        actor = ray.remote(num_gpus=gpus_each, num_cpus=cpus_each, max_restarts=1)(cls)
        return _RayWorkers([actor.remote(*args) for _ in range(n)])


class _RayWorkers:
    """`WorkerPool` on Ray actors: each call runs on an idle actor, one call per actor at a time (a GPU holds
    one batch and the next waits in the caller, not in the actor's queue)."""

    def __init__(self, actors: list[Any]):
        import queue

        self.actors, self.size = actors, len(actors)
        self.idle: Any = queue.Queue()
        for a in actors:
            self.idle.put(a)

    def call(self, method: str, *args: Any) -> Any:
        import ray

        actor = self.idle.get()
        try:
            return ray.get(getattr(actor, method).remote(*args))
        except ray.exceptions.RayError as e:  # the actor died (out of memory, a lost node)
            raise WorkerLost(str(e)[:300]) from None
        finally:
            self.idle.put(actor)

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)


class _LocalWorkers:
    """`WorkerPool` in this process: one instance, one call at a time."""

    def __init__(self, obj: Any):
        import threading

        self.obj, self.size, self._lock = obj, 1, threading.Lock()

    def call(self, method: str, *args: Any) -> Any:
        with self._lock:
            return getattr(self.obj, method)(*args)

    def close(self) -> None:
        pass


class _RayRunner:
    """`curation.exchange.Runner` on Ray tasks (retried on a lost node; what they hand on is in files)."""

    def __init__(self, num_cpus: float = 0.5):
        self.num_cpus = num_cpus
        self._remotes: dict[tuple[Callable, int], Any] = {}

    def submit(self, fn: Callable, args: Sequence[Any], num_returns: int = 1) -> list[Any]:
        import ray

        key = (fn, num_returns)
        if key not in self._remotes:
            body = _releasing(fn if num_returns > 1 else _first_of(fn))
            self._remotes[key] = ray.remote(num_cpus=self.num_cpus, num_returns=num_returns, max_retries=3)(body)
        out = self._remotes[key].remote(*args)
        return list(out) if num_returns > 1 else [out]

    def get(self, handles: list[Any]) -> list[Any]:
        import ray

        return ray.get(list(handles))

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        """The handles still running after at most `timeout` seconds."""
        import ray

        _, pending = ray.wait(list(handles), num_returns=len(handles), timeout=timeout)
        return pending


def _releasing(fn: Callable) -> Callable:
    """fn, then the memory the allocators keep cached handed back to the OS (Arrow's pool, and the C heap
    that numpy's arrays came from): a worker process runs many tasks in turn, a dedup reducer then a write
    task, and would otherwise carry the largest one's footprint into every later one."""

    def run(*args: Any) -> Any:
        try:
            return fn(*args)
        finally:
            pa.default_memory_pool().release_unused()
            _malloc_trim()

    run.__name__ = run.__qualname__ = getattr(fn, "__name__", "task")
    return run


def _malloc_trim() -> None:
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc only; elsewhere the OS keeps what it keeps
    except (OSError, AttributeError):
        pass


def _first_of(fn: Callable) -> Callable:
    def one(*args: Any) -> Any:
        return fn(*args)[0]

    one.__name__ = one.__qualname__ = fn.__name__
    return one


def _build_stages(job: CurateJob, names: list[str] | None = None) -> list[Stage]:
    """The job's stages set up in this worker, after checking the files they read against the job's path
    policy (the service's roots travel with the job to every worker)."""
    from curation.io.policy import require_declared_reads

    require_declared_reads(job, skip_inputs=True)
    return stage_registry.build(job, names)


def _operator_name(names: list[str]) -> str:
    """What the Ray dashboard calls a pool's operator: MapBatches(Stages[langid+filters])."""
    return f"Stages[{'+'.join(names)}]"


class _StageMetrics:
    """Ray metrics (`ray.util.metrics`, exported by every node's metrics agent to Prometheus, shown in the Ray
    dashboard) of the stages a worker runs: records in and out, and drops by stage and reason; the same
    counts as the job's funnel, seen from the cluster."""

    def __init__(self, job: CurateJob, names: list[str]):
        from ray.util.metrics import Counter

        self.tags = {"job": job.name, "stages": "+".join(names)}
        self.broken = False
        self.records = Counter(
            "curation_stage_records", "records into and out of a pool of stages", tag_keys=("job", "stages", "side")
        )
        self.dropped = Counter(
            "curation_stage_dropped", "records a stage dropped, by reason", tag_keys=("job", "stage", "reason")
        )

    def observe(self, before: pa.Table, after: pa.Table) -> None:
        """Best effort: a metrics failure is logged once and never fails a batch."""
        if self.broken:
            return
        try:
            self._observe(before, after)
        except Exception as e:  # noqa: BLE001 - metrics must not take the job down
            self.broken = True
            logging.getLogger(__name__).warning("stage metrics off in this worker: %s: %s", type(e).__name__, e)

    def _observe(self, before: pa.Table, after: pa.Table) -> None:
        from curation.stages.base import alive_mask

        was, now = alive_mask(before), alive_mask(after)
        for side, n in (("in", int(was.sum())), ("out", int(now.sum()))):
            if n:  # Ray counters take only positive increments
                self.records.inc(n, {**self.tags, "side": side})
        gone = was & ~now
        if gone.any():
            reasons = pc.value_counts(pc.filter(after["drop_reason"], pa.array(gone)))
            for item in reasons.to_pylist():
                if item["values"] is not None:
                    reason = item["values"]
                    tags = {"job": self.tags["job"], "stage": stage_registry.funnel_row(reason), "reason": reason}
                    self.dropped.inc(item["counts"], tags)


def _stage_fn(job: CurateJob, names: list[str]) -> Callable[[pa.Table], pa.Table]:
    """Stages that hold no model as a plain function for a Ray task pool (set up once per task process)."""
    built: list[Stage] = []
    metrics: list[_StageMetrics] = []

    def fn(t: pa.Table) -> pa.Table:
        if not built:
            built.extend(_build_stages(job, names))
            metrics.append(_StageMetrics(job, names))
        out = stage_registry.run(t, built)
        metrics[0].observe(t, out)
        return out

    fn.__name__ = fn.__qualname__ = _operator_name(names)
    return fn


class _StageUDF:
    """Ray Data actor of one pool: its stages set up once per actor, then called for every batch.

    Ray logs "has constructor arguments in the object store and max_restarts > 0" when Ray Data starts these
    actors: Ray Data itself passes its actor-location tracker (a detached actor) to every map worker's
    constructor (ray-project/ray#57733); the arguments here are a few kB and are inlined. A restarted actor
    still finds the tracker, which is detached and lives as long as the job's Ray Data execution."""

    def __init__(self, job: CurateJob, names: list[str]):
        self.stages = _build_stages(job, names)
        self.metrics = _StageMetrics(job, names)
        self.calls = 0

    def __call__(self, t: pa.Table) -> pa.Table:
        self.calls += 1
        if self.calls % 50 == 0:
            pa.default_memory_pool().release_unused()  # see _releasing: an actor sees every block of a job
        out = stage_registry.run(t, self.stages)
        self.metrics.observe(t, out)
        return out


def _named_udf(names: list[str]) -> type:
    """_StageUDF under the name of its stages, so Ray Data's operator (and the dashboard) says which they are."""
    return type(_operator_name(names), (_StageUDF,), {"__qualname__": _operator_name(names)})


def _concat(tables: list[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t is not None and len(t)]
    return pa.concat_tables(tables) if tables else pa.table({})


def tables_with_actor(
    executor: Executor,
    udf: type,
    ctor_args: tuple,
    n_items: int,
    actors: int | None = None,
    report: Callable[[list[pa.Table]], None] | None = None,
    every: float = 5.0,
) -> pa.Table:
    """Call `udf(*ctor_args)({"i": [item]})` for items 0..n-1 and concatenate the tables it returns.
    On Ray the udf runs in an actor pool (what it loads in __init__, e.g. a tokenizer, is loaded once
    per actor); locally one instance serves every item. `report(the tables returned so far)` at most every
    `every` seconds while they run."""
    if n_items == 0:
        return pa.table({})
    out: list[pa.Table] = []
    last = time.monotonic()

    def tick() -> None:
        nonlocal last
        if report is not None and time.monotonic() - last >= every:
            last = time.monotonic()
            report(out)

    if isinstance(executor, LocalExecutor):
        inst = udf(*ctor_args)
        for i in range(n_items):
            out.append(inst({"i": np.array([i])}))
            tick()
        return _concat(out)
    import ray

    size = actors or max(1, int(executor.cpus * 0.75 / 0.5))
    ds = ray.data.from_items([{"i": i} for i in range(n_items)], override_num_blocks=n_items)
    ds = ds.map_batches(
        udf,
        fn_constructor_args=ctor_args,
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(size, n_items)),
        num_cpus=0.5,
    )
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        out.append(batch)
        tick()
    return _concat(out)


@contextlib.contextmanager
def shared_cluster(job: AnyJob, address: str | None = None) -> Iterator[None]:
    """For several Ray jobs run one after another in this process (curate plan's sample runs): one local
    cluster for all of them, where each would start and stop its own. Nothing for the local engine, an
    address, or a Ray already initialized."""
    if job.execution.engine != "ray" or address or os.environ.get("RAY_ADDRESS"):
        yield
        return
    import ray

    if ray.is_initialized():
        yield
        return
    temp = tempfile.mkdtemp(prefix="curation-ray-", dir="/tmp")
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="ERROR", _temp_dir=temp)
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
