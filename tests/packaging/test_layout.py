"""Packaging guards: one import namespace, clean wheel, error hierarchy,
no global RNG in library code."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import rlrobust
import rlrobust.core.errors as errors

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("rlrobust", "agents", "envs", "conf", "scripts", "benchmarks", "tests")
LIBRARY_DIRS = ("rlrobust", "agents", "envs")


def python_files(dirs):
    for d in dirs:
        yield from (ROOT / d).rglob("*.py")


def test_j4_no_top_level_agents_or_envs_imports():
    hits = []
    for path in python_files(SOURCE_DIRS):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            hits += [
                f"{path.relative_to(ROOT)}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0] in ("agents", "envs")
            ]
    assert not hits, hits
    # a physical rlrobust/agents or rlrobust/envs folder would shadow the package-dir mapping
    assert not (ROOT / "rlrobust" / "agents").exists() and not (ROOT / "rlrobust" / "envs").exists()


def test_mapped_packages_import_inside_the_namespace():
    import rlrobust.agents
    import rlrobust.conf
    import rlrobust.envs

    assert Path(rlrobust.agents.__file__).parent == ROOT / "agents"
    assert Path(rlrobust.envs.__file__).parent == ROOT / "envs"
    assert Path(rlrobust.conf.__file__).parent == ROOT / "conf"


def test_j3_every_library_error_subclasses_the_base():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    assert classes and all(issubclass(c, errors.RlrobustError) for c in classes)
    assert issubclass(rlrobust.UnknownAgentError, ValueError)


GLOBAL_RNG = {("np", "random"), ("numpy", "random"), ("random",), ("torch",)}
TORCH_GLOBAL = {
    "manual_seed",
    "seed",
    "rand",
    "randn",
    "randint",
    "randperm",
    "normal",
    "bernoulli",
    "multinomial",
}
NUMPY_ALLOWED = {"default_rng", "Generator", "SeedSequence", "PCG64", "RandomState"}


def test_d4_no_global_rng_calls_in_library_code():
    """np.random.<fn>(), random.<fn>() and torch.<rand fn>() without a generator are banned outside
    rlrobust/core/seeding.py (and AgentBase.seeded_init, which seeds inside fork_rng)."""
    hits = []
    for path in python_files(LIBRARY_DIRS):
        rel = path.relative_to(ROOT)
        if rel.as_posix() in ("rlrobust/core/seeding.py",):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            f = node.func
            chain = []
            obj = f.value
            while isinstance(obj, ast.Attribute):
                chain.insert(0, obj.attr)
                obj = obj.value
            if isinstance(obj, ast.Name):
                chain.insert(0, obj.id)
            if tuple(chain) in (("np", "random"), ("numpy", "random")) and f.attr not in NUMPY_ALLOWED:
                hits.append(f"{rel}:{node.lineno} np.random.{f.attr}")
            elif tuple(chain) == ("random",) and f.attr != "Random":
                hits.append(f"{rel}:{node.lineno} random.{f.attr}")
            elif tuple(chain) == ("torch",) and f.attr in TORCH_GLOBAL:
                has_generator = any(k.arg == "generator" for k in node.keywords)
                if f.attr == "manual_seed" and rel.as_posix() == "rlrobust/core/agent_base.py":
                    continue
                if not has_generator:
                    hits.append(f"{rel}:{node.lineno} torch.{f.attr} without generator=")
    assert not hits, hits


@pytest.mark.slow
def test_j5_wheel_holds_only_the_namespace_with_configs(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("rlrobust-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    payload = [n for n in names if ".dist-info/" not in n]
    assert payload and all(n.startswith("rlrobust/") for n in payload), [
        n for n in payload if not n.startswith("rlrobust/")
    ]
    assert "rlrobust/py.typed" in names
    yamls = {p.relative_to(ROOT).as_posix() for p in (ROOT / "conf").rglob("*.yaml")}
    assert {f"rlrobust/{y}" for y in yamls} <= set(names)
    assert "rlrobust/agents/iqn.py" in names and "rlrobust/envs/__init__.py" in names
