"""Connected components of the duplicate-candidate graph, vectorised with numpy.

Min-label propagation with pointer jumping: every node starts as its own label, each round pushes
the smaller label across every edge and then jumps labels to their labels' labels. The smallest
node of a component becomes its label, which is also the document we keep (the first in input
order). Rounds are O(log(diameter)) in practice; each is a few numpy passes over the edges.
"""

from __future__ import annotations

import numpy as np


def connected_components(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, roots): every node that appears in an edge, sorted, and the smallest node of its component."""
    if len(u) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    nodes, inverse = np.unique(np.concatenate([u, v]).astype(np.int64), return_inverse=True)
    iu, iv = inverse[: len(u)], inverse[len(u) :]
    label = np.arange(len(nodes), dtype=np.int64)
    while True:
        m = np.minimum(label[iu], label[iv])
        new = label.copy()
        np.minimum.at(new, iu, m)
        np.minimum.at(new, iv, m)
        while True:  # pointer jumping until every label is a fixed point
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            break
        label = new
    return nodes, nodes[label]
