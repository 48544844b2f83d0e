"""The dedup phase as a graph of tasks: key shuffle -> verified edges -> connected components ->
per-component keepers -> one decision file per input file (the steps are in `curation.dedup.cluster`).

Only the runner knows where the tasks run (`LocalRunner` here, Ray tasks in `curation.execution`); what
comes back to the driver is a handful of counters per task. Between steps, data goes through files
under `_work/exchange/`, one per task and output family (`curation.exchange`), and each step runs
to its end before the next starts: a count of things that grows with the tasks, not with their square.
"""

from __future__ import annotations

import tempfile
from typing import Any, Callable

from curation import exchange
from curation.dedup import cluster, shuffle
from curation.exchange import LocalRunner, Runner, Steps


def _reduce(group_of: dict[int, int], groups: int, *parts: Any) -> list[Any]:
    edges = shuffle.reduce_edges(list(parts))
    return cluster.route_edges(edges, group_of, groups) + [int(len(edges[0]))]


def _components(partitions: int, n_pair_parts: int, n_edge_parts: int, *parts: Any) -> list[Any]:
    """Labels of one node partition (its pairs after the last round), then `cluster.by_component`."""
    lab = cluster.labels(*parts[:n_pair_parts])[0]
    return cluster.by_component(partitions, n_edge_parts, lab, *parts[n_pair_parts:])


EDGES_PER_PARTITION = 4_000_000  # candidate edges per clustering partition (about 100 MB with their pairs)


def run_dedup(
    runner: Runner,
    layout: Any,
    groups: list[list[int]],
    partitions: int,
    *,
    threshold: float,
    score_col: str | None,
    map_keys: Callable,
    progress: Callable[[str], None] = lambda m: None,
    cluster_partitions: int | None = None,
    edges_per_partition: int = EDGES_PER_PARTITION,
) -> dict[str, Any]:
    """Dedup the annotated parts of the files in `groups` (lists of input ordinals: the unit of the
    per-file steps); decisions land in `_work/dedup/`. Returns counters for stats and progress."""
    P, G = partitions, len(groups)
    group_of = cluster.group_index(groups)
    layout.remove_dir(layout.path("_work", "dedup"))
    root = layout.path("_work", "exchange")
    layout.remove_dir(root)
    steps = Steps(runner, layout, root, progress=lambda m: progress(f"dedup {m}"))
    try:
        return _run(
            steps,
            layout,
            groups,
            P,
            G,
            group_of,
            threshold,
            score_col,
            map_keys,
            progress,
            cluster_partitions,
            edges_per_partition,
        )
    finally:
        layout.remove_dir(root)


def _run(
    steps: Steps,
    layout: Any,
    groups: list[list[int]],
    P: int,
    G: int,
    group_of: dict[int, int],
    threshold: float,
    score_col: str | None,
    map_keys: Callable,
    progress: Callable[[str], None],
    cluster_partitions: int | None,
    edges_per_partition: int,
) -> dict[str, Any]:
    # 1. Keys of each file group, partitioned; star (and chain) edges per key partition, by file group.
    (keys,), _ = steps.run("keys", map_keys, [(layout, g, P) for g in groups], [P])
    (edges,), counts = steps.run("reduce", _reduce, [(group_of, G, box) for box in exchange.inboxes(keys, G, P)], [G])
    steps.drop("keys")
    # Edges are far fewer than keys (a few per duplicate): the clustering steps get partitions of their own,
    # sized by the edges.
    candidate_edges = sum(c[0] for c in counts)
    C = cluster_partitions or max(1, min(P, -(-candidate_edges // edges_per_partition)))
    # 2. Verify on the full signatures: attach u's side, then compare at v's side.
    (to_v, nodes_u), _ = steps.run(
        "attach_u",
        cluster.attach_u,
        [(layout, g, score_col, group_of, G, C, box) for g, box in zip(groups, exchange.inboxes(edges, P, G))],
        [G, C],
    )
    (verified, nodes_v), checks = steps.run(
        "attach_v",
        cluster.attach_v,
        [(layout, g, score_col, threshold, C, box) for g, box in zip(groups, exchange.inboxes(to_v, G, G))],
        [C, C],
    )
    verified_away = sum(c[0]["rejected_edges"] for c in checks)
    progress(
        f"dedup: {candidate_edges:,} candidate edges from {P} shuffle partitions; "
        f"{verified_away:,} band edges below the similarity threshold {threshold:.2f} dropped; "
        f"clustering in {C} partition(s)"
    )
    decisions, info = cluster_and_resolve(
        steps, C, group_of, G, [(verified, G)], [(nodes_u, G), (nodes_v, G)], progress
    )
    summaries = info.pop("summaries")
    # 5. One decision file per input file.
    steps.run(
        "write",
        cluster.write_decisions,
        [(layout, g, box) for g, box in zip(groups, exchange.inboxes(decisions, C, G))],
        [],
    )
    max_pairs, rounds = info["edges_max_per_task"], info["rounds"]
    return {
        "candidate_edges": candidate_edges,
        "rejected_edges": verified_away,
        "edges": sum(s["edges"] for s in summaries),
        "candidate_documents": sum(s["documents"] for s in summaries),
        "duplicates": sum(s["duplicates"] for s in summaries),
        "clusters": sum(s["clusters"] for s in summaries),
        "rounds": rounds,
        "partitions": P,
        "cluster_partitions": C,
        "file_groups": G,
        "edges_max_per_task": max([max_pairs] + [s["edges"] for s in summaries]),
    }


def cluster_and_resolve(
    steps: Steps,
    P: int,
    group_of: dict[int, int],
    G: int,
    edge_families: list[tuple[str, int]],
    node_families: list[tuple[str, int]],
    progress: Callable[[str], None] = lambda m: None,
) -> tuple[str, dict[str, Any]]:
    """Steps 2-4 on verified edges and node records, given as families (folder, producers) routed by node
    partition: connected components by large-star / small-star rounds until the edge set stops changing,
    then edges and nodes by component, then keepers. Returns the folder of the decision frames (one
    batch per file group, from each of the P component partitions) and the rounds, largest task and the
    partitions' summaries."""

    def inbox(families: list[tuple[str, int]], p: int) -> list[exchange.Inbox]:
        return [exchange.Inbox(folder, n, p) for folder, n in families]

    (pairs,), _ = steps.run("orient", cluster.orient, [(P, *inbox(edge_families, p)) for p in range(P)], [P])
    previous = None
    rounds = max_pairs = 0
    last = "orient"
    while True:
        rounds += 1
        if rounds > cluster.MAX_ROUNDS:
            raise RuntimeError(f"dedup: connected components did not converge in {cluster.MAX_ROUNDS} rounds")
        fingerprint: tuple = ()
        for large in (True, False):
            name = f"star{rounds}{'L' if large else 'S'}"
            (out,), info = steps.run(
                name, cluster.star_step, [(large, P, exchange.Inbox(pairs, P, p)) for p in range(P)], [P]
            )
            steps.drop(last)
            last, pairs = name, out
            max_pairs = max([max_pairs] + [i[0][0] for i in info])
            if large:
                fingerprint = tuple(i[0][1] for i in info)
        if fingerprint == previous:
            break
        previous = fingerprint
    progress(f"dedup: components converged in {rounds} round(s), at most {max_pairs:,} edge pairs per task")
    n_edges = sum(n for _, n in edge_families)
    (comp_edges, comp_nodes), _ = steps.run(
        "components",
        _components,
        [
            (P, P, n_edges, exchange.Inbox(pairs, P, p), *inbox(edge_families, p), *inbox(node_families, p))
            for p in range(P)
        ],
        [P, P],
    )
    steps.drop(last)
    (decisions,), summaries = steps.run(
        "resolve",
        cluster.resolve_components,
        [(group_of, G, P, exchange.Inbox(comp_edges, P, q), exchange.Inbox(comp_nodes, P, q)) for q in range(P)],
        [G],
    )
    return decisions, {"rounds": rounds, "edges_max_per_task": max_pairs, "summaries": [s[0] for s in summaries]}


def cluster_local(
    u: Any, v: Any, kind: Any, sim: Any = None, score: dict[int, float] | None = None, partitions: int = 1
) -> cluster.Frame:
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
    nodes = {
        "doc": docs,
        "id": np.array([str(d) for d in docs], dtype=object),
        "score": np.array([score.get(int(d), np.nan) for d in docs], dtype=np.float64),
    }
    group_of = {int(o): 0 for o in np.unique(docs >> 32)}
    with tempfile.TemporaryDirectory(prefix="dedup-") as tmp:
        from curation.outputs import Layout

        layout = Layout(tmp)
        steps = Steps(LocalRunner(), layout, layout.path("exchange"))
        exchange.write_family(
            layout,
            exchange.family_file(layout.path("given", "edges"), 0),
            cluster.split(edges, cluster.node_partition(u, P), P),
        )
        exchange.write_family(
            layout,
            exchange.family_file(layout.path("given", "nodes"), 0),
            cluster.split(nodes, cluster.node_partition(docs, P), P),
        )
        decisions, _ = cluster_and_resolve(
            steps, P, group_of, 1, [(layout.path("given", "edges"), 1)], [(layout.path("given", "nodes"), 1)]
        )
        out = cluster.concat(
            exchange.read_inbox(layout, exchange.Inbox(decisions, P, 0)), {"doc": np.zeros(0, np.int64)}
        )
    order = np.argsort(out["doc"])
    return {k: val[order] for k, val in out.items()}
