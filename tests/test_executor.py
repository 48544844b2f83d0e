"""One executor interface for every job kind: `executor_for` picks local or Ray from the spec, and the worker
pools that hold a model (synthesis with a local model) behave the same on both, a dead Ray worker failing
only its own call (and the generator turning that into failed generations, not a crashed job)."""

from __future__ import annotations

import os
import threading

import pytest

from curation.execution import LocalExecutor, RayExecutor, executor_for
from curation.executor import WorkerLost
from curation.kinds import KINDS
from curation.synthesis.generators import PooledGenerator, Unit


class Holder:
    """A worker holding state built once: its pid and how many calls it served."""

    def __init__(self, tag: str):
        self.tag, self.calls = tag, 0

    def generate(self, units: list) -> list:
        from curation.synthesis.generators import Generation

        self.calls += 1
        if any(u.key == "die" for u in units):
            os._exit(1)  # the process dies mid-call, as on an out-of-memory kill
        return [Generation(u.key, text=f"{self.tag}:{os.getpid()}:{self.calls}") for u in units]


def _units(*keys: str) -> list[Unit]:
    return [Unit(k, [{"role": "user", "content": k}]) for k in keys]


@pytest.mark.parametrize(
    "kind,data",
    [
        ("curate", {"inputs": [{"path": "x.jsonl", "format": "jsonl", "source": "s"}]}),
        ("mix", {"inputs": ["a"], "target_tokens": 10}),
    ],
)
def test_every_kind_gets_its_executor_from_its_spec(kind, data, tmp_path):
    for engine, cls in (("local", LocalExecutor), ("ray", RayExecutor)):
        job = KINDS[kind].parse({"kind": kind, "output": str(tmp_path), **data, "execution": {"engine": engine}})
        assert type(executor_for(job)) is cls


def test_a_local_pool_is_one_worker_built_once(tmp_path):
    job = KINDS["mix"].parse(
        {"kind": "mix", "output": str(tmp_path), "inputs": ["a"], "target_tokens": 1, "execution": {"engine": "local"}}
    )
    with executor_for(job) as ex:
        pool = ex.worker_pool(Holder, ("local",), 4)
        gen = PooledGenerator(pool, batch_size=2)
        assert gen.concurrency == 1
        outs = [gen.generate(_units(f"k{i}"))[0].text for i in range(3)]
        assert [o.split(":")[0] for o in outs] == ["local"] * 3 and [o.split(":")[2] for o in outs] == ["1", "2", "3"]
        assert {o.split(":")[1] for o in outs} == {str(os.getpid())}  # in this process


def test_a_ray_pool_spreads_calls_and_survives_a_dead_worker(ray_session, tmp_path):
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import the tests package
    job = KINDS["mix"].parse(
        {"kind": "mix", "output": str(tmp_path), "inputs": ["a"], "target_tokens": 1, "execution": {"engine": "ray"}}
    )
    with executor_for(job) as ex:
        pool = ex.worker_pool(Holder, ("ray",), 2, cpus_each=0.5)
        gen = PooledGenerator(pool, batch_size=1)
        assert gen.concurrency == 2
        results: list[str] = []
        lock = threading.Lock()

        def work(i: int) -> None:
            g = gen.generate(_units(f"k{i}"))[0]
            assert g.text is not None, g.error
            text = g.text
            with lock:
                results.append(text)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pids = {r.split(":")[1] for r in results}
        assert len(results) == 8 and len(pids) == 2 and str(os.getpid()) not in pids  # two actors, not here
        # A worker that dies fails its own batch, as failed generations; the pool goes on (Ray restarts it).
        dead = gen.generate(_units("die", "other"))
        assert [g.error is not None and g.error.startswith("model worker failed") for g in dead] == [True, True]
        assert gen.stats.errors["worker"] == 1
        with pytest.raises(WorkerLost):
            pool.call("generate", _units("die"))
        assert all(gen.generate(_units(f"after{i}"))[0].text.startswith("ray:") for i in range(4))
        gen.close()
