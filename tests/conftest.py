"""Shared test setup: one torch thread (CI has 2 cores), silenced MuJoCo warnings, temp dirs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Test helpers (fakes.py) import as top-level modules; the repo root itself never goes on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

try:  # MuJoCo 4 warns (and writes MUJOCO_LOG.TXT) for every gymnasium v5 env made.
    import mujoco

    mujoco.set_mju_user_warning(lambda msg: None)
except Exception:  # pragma: no cover - mujoco is a hard dependency, but keep tests importable
    pass


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/regression/golden/*.json (D3); review the diff before committing",
    )


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Run every test in its own temp dir so stray files (logs, runs) never land in the repo."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    yield
