"""The executor interface every job kind runs through: where work runs, without saying how.

`curation.execution` has the two implementations, `LocalExecutor` (this process) and `RayExecutor` (a Ray
cluster; the only Ray code besides the service's job backend), and `executor_for(job, address)` picks one
from the job's `execution.engine`. A job kind's code (curate, mix, ablate, synthesize) is written against
this protocol only, so it runs the same on both and never imports Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol, Sequence

if TYPE_CHECKING:
    from curation.exchange import Runner
    from curation.io.batches import ReadLimits
    from curation.io.files import InputFile


class AnyJob(Protocol):
    """What an executor needs of a job spec, whatever its kind."""

    output: str
    execution: Any  # a kind's ExecutionSpec: engine, and its own knobs


class WorkerLost(RuntimeError):
    """A pooled worker died while it ran a call (out of memory, a lost node); the call's work is lost."""


class WorkerPool(Protocol):
    """Long-lived workers that each hold an expensive object (a model): `call` runs a method on an idle one."""

    size: int

    def call(self, method: str, *args: Any) -> Any:
        """`worker.method(*args)` on the next idle worker (blocks until one is idle); WorkerLost if it died."""

    def close(self) -> None: ...


class Executor(Protocol):
    name: str  # "local" or "ray"

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: Any) -> None: ...

    @property
    def cpus(self) -> int:
        """CPUs of the cluster (1 in process)."""

    @property
    def gpus(self) -> int:
        """GPUs of the cluster (0 in process: a local job uses what its own process sees)."""

    def map(
        self,
        fn: Callable,
        arg_lists: Iterable[tuple],
        *,
        report: Callable[[int, int], None] | None = None,
        every: float = 10.0,
        num_cpus: float = 0.5,
    ) -> list[Any]:
        """fn(*args) for each args, results in order; `report(done, total)` at most every `every` seconds."""

    def share(self, value: Any) -> Any:
        """A value many `map` calls take (on Ray, one copy in the object store)."""

    def runner(self) -> Runner:
        """Where the steps of a distributed phase run (`curation.exchange.Steps`)."""

    def worker_pool(self, cls: type, args: tuple, n: int, *, gpus_each: float = 0, cpus_each: float = 1) -> WorkerPool:
        """`n` workers, each `cls(*args)` built once."""

    # curate jobs: the streaming stage pipeline and the dedup phase
    def annotate(self, files: Sequence[InputFile], limits: ReadLimits) -> Iterator[dict[str, Any]]:
        """Read, run the job's stages and persist every batch of `files`; yields each written part's stats."""

    def dedup(self, ordinals: Sequence[int], partitions: int, groups: int, **kw: Any) -> dict[str, Any]:
        """The distributed dedup phase over the annotated files `ordinals`; its counters."""
