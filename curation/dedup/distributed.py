"""The dedup phase as a graph of tasks: key shuffle -> verified edges -> connected components ->
per-component keepers -> one decision file per input file (the steps are in `curation.dedup.cluster`).

Only the runner knows where the tasks run (`LocalRunner` here, Ray tasks in `curation.execution`); what
comes back to the driver is a handful of counters per task. Objects between steps are one per
(task, partition) pair, as in the key shuffle.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

from curation.dedup import cluster, shuffle


class Runner(Protocol):
    def submit(self, fn: Callable, args: Sequence[Any], num_returns: int = 1) -> list[Any]:
        """Run fn(*args) (somewhere); fn returns a list of `num_returns` values: handles to them."""

    def get(self, handles: list[Any]) -> list[Any]:
        """The values behind handles."""


class LocalRunner:
    """Runs every step at once in this process; handles are the values."""

    def submit(self, fn: Callable, args: Sequence[Any], num_returns: int = 1) -> list[Any]:
        return list(fn(*args))

    def get(self, handles: list[Any]) -> list[Any]:
        return list(handles)


def _reduce(group_of: dict[int, int], groups: int, *parts: Any) -> list[Any]:
    edges = shuffle.reduce_edges(list(parts))
    return cluster.route_edges(edges, group_of, groups) + [int(len(edges[0]))]


EDGES_PER_PARTITION = 4_000_000  # candidate edges per clustering partition (about 100 MB with their pairs)


def run_dedup(runner: Runner, layout: Any, groups: list[list[int]], partitions: int, *, threshold: float,
              score_col: str | None, map_keys: Callable, progress: Callable[[str], None] = lambda m: None,
              cluster_partitions: int | None = None, edges_per_partition: int = EDGES_PER_PARTITION
              ) -> dict[str, Any]:
    """Dedup the annotated parts of the files in `groups` (lists of input ordinals: the unit of the
    per-file steps); decisions land in `_work/dedup/`. Returns counters for stats and progress."""
    P, G = partitions, len(groups)
    group_of = cluster.group_index(groups)
    layout.remove_dir(layout.path("_work", "dedup"))
    # 1. Keys of each file group, partitioned; star (and chain) edges per key partition, by file group.
    mapped = [runner.submit(map_keys, (layout, g, P), num_returns=P) for g in groups]
    reduced = [runner.submit(_reduce, (group_of, G, *[m[p] for m in mapped]), num_returns=G + 1) for p in range(P)]
    # Edges are far fewer than keys (a few per duplicate): the clustering steps get partitions of their own,
    # sized by the edges, which keeps their partition-to-partition objects (C x C per step) few.
    candidate_edges = sum(runner.get([r[G] for r in reduced]))
    C = cluster_partitions or max(1, min(P, -(-candidate_edges // edges_per_partition)))
    # 2. Verify on the full signatures: attach u's side, then compare at v's side.
    att_u = [runner.submit(cluster.attach_u, (layout, g, score_col, group_of, G, C, *[r[i] for r in reduced]),
                           num_returns=G + C) for i, g in enumerate(groups)]
    att_v = [runner.submit(cluster.attach_v, (layout, g, score_col, threshold, C, *[a[i] for a in att_u]),
                           num_returns=2 * C + 1) for i, g in enumerate(groups)]
    checks = runner.get([a[2 * C] for a in att_v])
    verified_away = sum(c["rejected_edges"] for c in checks)
    progress(f"dedup: {candidate_edges:,} candidate edges from {P} shuffle partitions; "
             f"{verified_away:,} band edges below the similarity threshold {threshold:.2f} dropped; "
             f"clustering in {C} partition(s)")
    resolved, info = cluster_and_resolve(runner, C, group_of, G, [a[:C] for a in att_v],
                                         [a[G:G + C] for a in att_u] + [a[C:2 * C] for a in att_v], progress)
    # 5. One decision file per input file.
    written = [runner.submit(cluster.write_decisions, (layout, g, *[r[i] for r in resolved]))
               for i, g in enumerate(groups)]
    summaries = runner.get([r[G] for r in resolved])
    runner.get([w[0] for w in written])
    max_pairs, rounds = info["edges_max_per_task"], info["rounds"]
    return {"candidate_edges": candidate_edges, "rejected_edges": verified_away,
            "edges": sum(s["edges"] for s in summaries), "candidate_documents": sum(s["documents"] for s in summaries),
            "duplicates": sum(s["duplicates"] for s in summaries), "clusters": sum(s["clusters"] for s in summaries),
            "rounds": rounds, "partitions": P, "cluster_partitions": C, "file_groups": G,
            "edges_max_per_task": max([max_pairs] + [s["edges"] for s in summaries])}


def cluster_and_resolve(runner: Runner, P: int, group_of: dict[int, int], G: int, edge_parts: list[list[Any]],
                        node_parts: list[list[Any]], progress: Callable[[str], None] = lambda m: None
                        ) -> tuple[list[list[Any]], dict[str, int]]:
    """Steps 2-4 on verified edges and node records (each producer's P parts, by node partition):
    connected components by large-star / small-star rounds until the edge set stops changing, then
    edges and nodes by component, then keepers. Returns each component partition's handles (G decision
    frames by file group, then its summary) and the rounds / largest task."""
    pairs = [runner.submit(cluster.orient, (P, *[e[p] for e in edge_parts]), num_returns=P) for p in range(P)]
    previous = None
    rounds = max_pairs = 0
    while True:
        rounds += 1
        if rounds > cluster.MAX_ROUNDS:
            raise RuntimeError(f"dedup: connected components did not converge in {cluster.MAX_ROUNDS} rounds")
        fingerprint: tuple = ()
        for large in (True, False):
            step = [runner.submit(cluster.star_step, (large, P, *[q[p] for q in pairs]), num_returns=P + 1)
                    for p in range(P)]
            info = runner.get([s[P] for s in step])
            max_pairs = max([max_pairs] + [i[0] for i in info])
            if large:
                fingerprint = tuple(i[1] for i in info)
            pairs = [s[:P] for s in step]
        if fingerprint == previous:
            break
        previous = fingerprint
    progress(f"dedup: components converged in {rounds} round(s), at most {max_pairs:,} edge pairs per task")
    labels = [runner.submit(cluster.labels, tuple(q[p] for q in pairs)) for p in range(P)]
    comp = [runner.submit(cluster.by_component, (P, len(edge_parts), labels[p][0], *[e[p] for e in edge_parts],
                                                 *[n[p] for n in node_parts]), num_returns=2 * P) for p in range(P)]
    resolved = [runner.submit(cluster.resolve_components,
                              (group_of, G, P, *[c[q] for c in comp], *[c[P + q] for c in comp]),
                              num_returns=G + 1) for q in range(P)]
    return resolved, {"rounds": rounds, "edges_max_per_task": max_pairs}


def cluster_local(u: Any, v: Any, kind: Any, sim: Any = None, score: dict[int, float] | None = None,
                  partitions: int = 1) -> cluster.Frame:
    """Steps 2-4 in this process on given edges (documents named by their numbers): the decisions, sorted
    by document. For tests and benchmarks of the clustering alone."""
    import numpy as np

    u, v = np.asarray(u, np.int64), np.asarray(v, np.int64)
    kind = np.asarray(kind, np.int8)
    sim = np.ones(len(u), np.float32) if sim is None else np.asarray(sim, np.float32)
    P = partitions
    edges = {"u": u, "v": v, "kind": kind, "sim": sim}
    docs = np.unique(np.concatenate([u, v]))
    score = score or {}
    nodes = {"doc": docs, "id": np.array([str(d) for d in docs], dtype=object),
             "score": np.array([score.get(int(d), np.nan) for d in docs], dtype=np.float64)}
    group_of = {int(o): 0 for o in np.unique(docs >> 32)}
    resolved, _ = cluster_and_resolve(LocalRunner(), P, group_of, 1,
                                      [cluster.split(edges, cluster.node_partition(u, P), P)],
                                      [cluster.split(nodes, cluster.node_partition(docs, P), P)])
    out = cluster.concat([r[0] for r in resolved], {"doc": np.zeros(0, np.int64)})
    order = np.argsort(out["doc"])
    return {k: val[order] for k, val in out.items()}
