"""rlrobust: distributional and robust reinforcement-learning agents on one PyTorch core.

Public API (stable): :func:`list_agents`, :func:`make_agent`, :func:`train`, :func:`evaluate`,
the error classes, and the subpackages ``rlrobust.core``, ``rlrobust.robust``, ``rlrobust.data``,
``rlrobust.envs``, ``rlrobust.agents``.
"""

from __future__ import annotations

from typing import Any

from rlrobust._version import __version__
from rlrobust.core.errors import (
    CheckpointError,
    ConfigError,
    MissingDependencyError,
    NonFiniteError,
    PerturbationError,
    RlrobustError,
    RunDirLockedError,
    SpaceError,
    UnknownAgentError,
)
from rlrobust.core.registry import list_agents, make_agent

__all__ = [
    "CheckpointError",
    "ConfigError",
    "MissingDependencyError",
    "NonFiniteError",
    "PerturbationError",
    "RlrobustError",
    "RunDirLockedError",
    "SpaceError",
    "UnknownAgentError",
    "__version__",
    "evaluate",
    "list_agents",
    "make_agent",
    "train",
]


def train(*args: Any, **kwargs: Any) -> Any:
    """Train an agent; see :func:`rlrobust.core.runner.train`."""
    from rlrobust.core.runner import train as _train

    return _train(*args, **kwargs)


def evaluate(*args: Any, **kwargs: Any) -> Any:
    """Evaluate a policy on a perturbation suite; see :func:`rlrobust.evaluation.suite.evaluate`."""
    from rlrobust.evaluation.suite import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
