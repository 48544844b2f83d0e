"""The layering rules the code keeps: no import cycle among the project's modules, and Ray only in the
modules that run things on it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("curation", "filters", "mixtures", "api")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in (REPO / pkg).rglob("*.py"):
            rel = p.relative_to(REPO).with_suffix("")
            out[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports, at module level or inside functions (a lazy import is still an
    edge of the layering); imports under `if TYPE_CHECKING:` are not run and are left out."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for b in node.body
            for n in ast.walk(b)
        }
        package = m.split(".") if path.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            graph[m].update(t for t in map(resolve, targets) if t and t != m)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50 and graph["curation.job"]  # the graph is real, not empty
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_ray_lives_behind_the_executors():
    """Ray is imported in two places: the executors (every job kind runs through them) and the service's
    Ray backend (it submits jobs); a stage, a spec or a job kind's own code never imports it."""
    allowed = {"curation.execution", "api.ray_backend"}
    users = set()
    for m, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "ray" or n.startswith("ray.") for n in names):
                users.add(m)
    assert users, "no module imports ray: the check is broken"
    assert users <= allowed, f"Ray imported outside the executors: {sorted(users - allowed)}"
    assert not any(u.startswith(("curation.stages", "filters")) or u.endswith("spec") for u in users)


def test_ci_runs_exactly_the_readme_test_command():
    """`.ci/run` is the README's test command, lint and type checks included, character for character."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("Install and run the tests", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    ci = [
        ln for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith(("#", "set ", "cd "))
    ]
    assert ci == [block.strip()]
    for step in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert step in block


def test_the_readme_pipeline_lists_the_stages_in_registry_order():
    from curation.stages.registry import BUILTIN

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    line = next(ln for ln in readme.splitlines() if ln.strip().startswith("stages: normalize"))
    assert line.split(":", 1)[1].split() == " -> ".join(c.name for c in BUILTIN).split()


def test_the_executors_know_no_job_kind_but_curate():
    """The executors serve every job kind through one interface (curation/executor.py); they import the
    curate pipeline they stream, never a mixture, ablation or synthesis module."""
    graph = import_graph()
    for m in ("curation.execution", "curation.executor"):
        bad = sorted(t for t in graph[m] if t.startswith(("mixtures", "curation.synthesis", "api")))
        assert not bad, f"{m} imports {bad}"
    users = {m for m, targets in graph.items() if "curation.execution" in targets}
    assert {"curation.job", "mixtures.job", "mixtures.ablate", "curation.synthesis.job"} <= users
