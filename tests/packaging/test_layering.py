"""Import layering (docs/architecture.md): core → robust/data/envs/interop → evaluation/agents →
the public API → scripts and benchmarks, with no import circle anywhere.

Imports are read with ``ast`` from the source, so an import inside a function or under
``if TYPE_CHECKING:`` counts as much as one at the top of a module. ``agents/``, ``envs/`` and
``conf/`` are read as ``rlrobust.agents``, ``rlrobust.envs`` and ``rlrobust.conf`` (the
``package-dir`` mapping of pyproject.toml). Importing a module of one's own layer or a lower one
is allowed; importing a higher layer, or any circle, fails naming the modules and the lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# folder -> the import name it ships as
PACKAGE_DIRS = {
    "rlrobust": "rlrobust",
    "agents": "rlrobust.agents",
    "envs": "rlrobust.envs",
    "conf": "rlrobust.conf",
}

# (layer, rank, module prefixes). A prefix covers the module and its submodules; "rlrobust" alone
# is the package's __init__ (the public API). The longest matching prefix decides.
LAYERS: list[tuple[str, int, tuple[str, ...]]] = [
    ("core", 0, ("rlrobust.core", "rlrobust._version")),
    (
        "robust/data/envs/interop",
        1,
        ("rlrobust.robust", "rlrobust.data", "rlrobust.envs", "rlrobust.interop"),
    ),
    ("evaluation/agents", 2, ("rlrobust.evaluation", "rlrobust.agents")),
    # The composition root: config -> env, agent, dataset, training and evaluation. runner.py lives
    # in core/ but wires every layer, so it sits above them all and nothing below imports it.
    ("api", 3, ("rlrobust", "rlrobust.cli", "rlrobust.conf", "rlrobust.core.runner")),
]

# Imports allowed against the layering, (importer, imported) -> the reason. Empty, and it should stay so.
KNOWN: dict[tuple[str, str], str] = {}


def module_files(root: Path, package_dirs: Mapping[str, str]) -> dict[str, tuple[Path, bool]]:
    """``{module name: (file, is_package)}`` for every ``.py`` file under the mapped folders."""
    modules: dict[str, tuple[Path, bool]] = {}
    for folder, name in package_dirs.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            modules[".".join([name, *parts])] = (path, is_package)
    return modules


def imports_of(module: str, path: Path, is_package: bool, known: Iterable[str]) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import of a module in ``known`` anywhere in the file."""
    known = set(known)
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def resolve(name: str) -> str | None:
        while name and name not in known:  # "a.b.c" with c a function: the module a.b
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # "from a import b" imports a, and the module a.b when b is one
            targets = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
        for target in targets:
            resolved = resolve(target)
            if resolved is not None and resolved != module:
                found.append((resolved, node.lineno))
    return sorted(set(found))


def import_graph(
    root: Path = ROOT, package_dirs: Mapping[str, str] = PACKAGE_DIRS
) -> tuple[dict[str, list[tuple[str, int]]], dict[str, Path]]:
    """``({module: [(imported module, line), ...]}, {module: file})``."""
    modules = module_files(root, package_dirs)
    graph = {m: imports_of(m, p, pkg, modules) for m, (p, pkg) in modules.items()}
    return graph, {m: p for m, (p, _) in modules.items()}


def layer_of(module: str, layers: list[tuple[str, int, tuple[str, ...]]] = LAYERS) -> tuple[str, int] | None:
    best: tuple[int, str, int] | None = None
    for name, rank, prefixes in layers:
        for prefix in prefixes:
            hit = module == prefix or (prefix != "rlrobust" and module.startswith(prefix + "."))
            if hit and (best is None or len(prefix) > best[0]):
                best = (len(prefix), name, rank)
    return None if best is None else (best[1], best[2])


def circles(
    graph: Mapping[str, list[tuple[str, int]]], ignore: Iterable[tuple[str, str]] = ()
) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    ignore = set(ignore)
    edges = {m: sorted({t for t, _ in targets if (m, t) not in ignore}) for m, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def describe_circle(
    component: list[str],
    graph: Mapping[str, list[tuple[str, int]]],
    files: Mapping[str, Path],
    root: Path = ROOT,
) -> str:
    members = set(component)
    lines = [f"import circle between {', '.join(component)}:"]
    for m in component:
        for target, line in graph[m]:
            if target in members:
                lines.append(f"  {files[m].relative_to(root)}:{line}: {m} imports {target}")
    return "\n".join(lines)


def layering_violations(
    graph: Mapping[str, list[tuple[str, int]]],
    files: Mapping[str, Path],
    root: Path = ROOT,
    layers: list[tuple[str, int, tuple[str, ...]]] = LAYERS,
    ignore: Iterable[tuple[str, str]] = (),
) -> list[str]:
    ignore = set(ignore)
    found = []
    for module, targets in sorted(graph.items()):
        mine = layer_of(module, layers)
        for target, line in targets:
            theirs = layer_of(target, layers)
            if mine is None or theirs is None or (module, target) in ignore:
                continue
            if theirs[1] > mine[1]:
                found.append(
                    f"{files[module].relative_to(root)}:{line}: {module} ({mine[0]}) imports "
                    f"{target} ({theirs[0]}), a higher layer"
                )
    return found


def test_every_module_has_a_layer():
    graph, files = import_graph()
    unplaced = [f"{m} ({files[m].relative_to(ROOT)})" for m in sorted(graph) if layer_of(m) is None]
    assert not unplaced, f"modules outside every layer of LAYERS (add them): {unplaced}"


def test_no_import_circles():
    graph, files = import_graph()
    found = circles(graph, ignore=KNOWN)
    assert not found, "\n".join(describe_circle(c, graph, files) for c in found)


def test_no_import_against_the_layering():
    graph, files = import_graph()
    found = layering_violations(graph, files, ignore=KNOWN)
    assert not found, "imports against the layering of docs/architecture.md:\n" + "\n".join(found)


def test_known_exceptions_are_still_needed():
    graph, _ = import_graph()
    stale = [pair for pair in KNOWN if pair[1] not in {t for t, _ in graph.get(pair[0], [])}]
    assert not stale, f"these imports are gone: remove them from KNOWN: {stale}"


def test_the_library_never_imports_scripts_or_benchmarks():
    graph, files = import_graph()
    hits = []
    for module, (path, _) in module_files(ROOT, PACKAGE_DIRS).items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            )
            hits += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {module} imports {n}"
                for n in names
                if n.split(".")[0] in ("scripts", "benchmarks")
            ]
    assert not hits, hits


def _tree(tmp_path: Path, files: dict[str, str]) -> tuple[dict[str, list[tuple[str, int]]], dict[str, Path]]:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return import_graph(tmp_path, {"rlrobust": "rlrobust", "envs": "rlrobust.envs"})


def test_the_checks_catch_a_function_level_circle_and_an_upward_import(tmp_path):
    graph, files = _tree(
        tmp_path,
        {
            "rlrobust/__init__.py": "",
            "rlrobust/core/__init__.py": "",
            "rlrobust/core/a.py": "from rlrobust.core import b\n",
            "rlrobust/core/b.py": "def f():\n    from rlrobust.core.a import x\n    from ..evaluation import suite\n",
            "rlrobust/evaluation/__init__.py": "",
            "rlrobust/evaluation/suite.py": "from rlrobust.envs.suites import get_suite\n",
            "envs/__init__.py": "",
            "envs/suites.py": "from . import perturbation\n",
            "envs/perturbation.py": "import rlrobust.core.a\n",
        },
    )
    assert graph["rlrobust.core.b"] == [
        ("rlrobust.core.a", 2),
        ("rlrobust.evaluation", 3),
        ("rlrobust.evaluation.suite", 3),
    ]
    assert graph["rlrobust.envs.suites"] == [("rlrobust.envs", 1), ("rlrobust.envs.perturbation", 1)]
    found = circles(graph)
    assert found == [
        [
            "rlrobust.core.a",
            "rlrobust.core.b",
            "rlrobust.envs.perturbation",
            "rlrobust.envs.suites",
            "rlrobust.evaluation.suite",
        ]
    ]
    assert "rlrobust/core/b.py:2: rlrobust.core.b imports rlrobust.core.a" in describe_circle(
        found[0], graph, files, tmp_path
    )
    violations = layering_violations(graph, files, tmp_path)
    assert violations == [
        "rlrobust/core/b.py:3: rlrobust.core.b (core) imports rlrobust.evaluation (evaluation/agents), a higher layer",
        "rlrobust/core/b.py:3: rlrobust.core.b (core) imports rlrobust.evaluation.suite (evaluation/agents), "
        "a higher layer",
    ]
