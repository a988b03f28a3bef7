"""Batched simulation: many worlds of one MuJoCo task, each with its own physical parameters,
stepped in one call (``rlrobust.envs.batched``).

* :mod:`~rlrobust.envs.batched.tasks` — Gymnasium's v5 observations, rewards, terminations and
  reset noise as batched torch functions (Hopper, HalfCheetah, Walker2d, InvertedPendulum).
* :mod:`~rlrobust.envs.batched.worlds` — per-world model fields, written by the CPU parameter
  handler, so a world's model equals the CPU wrapper's field by field.
* :mod:`~rlrobust.envs.batched.warp_env` — :class:`WarpVectorEnv`, the MuJoCo Warp backend
  (needs the ``warp`` extra: ``pip install 'rlrobust[warp]'``).

Names are imported lazily: importing this package imports neither torch nor MuJoCo Warp.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "TASKS": "tasks",
    "BatchedTask": "tasks",
    "WorldParameters": "worlds",
    "WarpVectorEnv": "warp_env",
    "import_warp": "warp_env",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
