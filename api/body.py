"""Request bodies (job specs as JSON or YAML) parsed with limits that hold after YAML alias expansion.

A few hundred bytes of YAML can name a node that expands to billions (`a: &a [x,x,...]`, `b: &b [*a,*a,...]`):
the node graph is composed first (aliases stay shared nodes), its expanded size and depth are counted on
the graph, and only a spec within the limits is constructed. Deep nesting, which the parsers recurse on,
is refused too.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

MAX_NODES = 100_000  # scalars, sequences and mappings after alias expansion
MAX_DEPTH = 64


class BodyError(ValueError):
    """A body that is not a spec within the limits; the message says which."""


def _measure(root: yaml.Node, max_nodes: int, max_depth: int) -> None:
    """Expanded node count and depth of a composed graph, each shared node counted once per use (memoized)."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            kids = _children(node)
            sizes[key] = 1 + sum(sizes[id(k)] for k in kids)
            depths[key] = 1 + max((depths[id(k)] for k in kids), default=0)
            if sizes[key] > max_nodes:
                raise BodyError(f"the spec expands to over {max_nodes:,} nodes (YAML aliases included)")
            if depths[key] > max_depth:
                raise BodyError(f"the spec is nested deeper than {max_depth} levels")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise BodyError("the spec refers to itself (a recursive YAML alias)")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in sizes)
        if len(on_path) > max_depth:
            raise BodyError(f"the spec is nested deeper than {max_depth} levels")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _json_depth_ok(data: Any, max_nodes: int, max_depth: int) -> None:
    stack, count = [(data, 1)], 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if depth > max_depth:
            raise BodyError(f"the spec is nested deeper than {max_depth} levels")
        if count > max_nodes:
            raise BodyError(f"the spec has over {max_nodes:,} nodes")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def parse_body(raw: bytes, yaml_body: bool, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """The spec of a request body; BodyError when it is not valid or not within the limits."""
    if not yaml_body:
        try:
            data = json.loads(raw or b"null")
        except RecursionError:
            raise BodyError(f"the spec is nested deeper than {max_depth} levels") from None
        except ValueError as e:
            raise BodyError(f"not valid JSON: {str(e)[:200]}") from None
        _json_depth_ok(data, max_nodes, max_depth)
        return data
    loader = yaml.SafeLoader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, max_nodes, max_depth)
        return loader.construct_document(node)
    except RecursionError:
        raise BodyError(f"the spec is nested deeper than {max_depth} levels") from None
    except yaml.YAMLError as e:
        raise BodyError(f"not valid YAML: {str(e)[:200]}") from None
    finally:
        loader.dispose()
