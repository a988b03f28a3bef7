"""Environments and perturbation wrappers (``rlrobust.envs``).

Names are imported lazily so that ``import rlrobust.envs`` builds no environment and imports
no MuJoCo until something is used.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule of rlrobust.envs that defines it
_EXPORTS: dict[str, str] = {
    # perturbation.py: robust-MDP adversaries as wrappers
    "ParameterPerturbation": "perturbation",
    "DynamicParameterAdversary": "perturbation",
    "ExternalForceAdversary": "perturbation",
    "NoisyActionAdversary": "perturbation",
    "ProbabilisticActionAdversary": "perturbation",
    "make_env": "factory",
    "UniformSampler": "perturbation",
    "SequenceSampler": "perturbation",
    # mujoco_params.py: named physical parameters
    "perturbable_parameters": "mujoco_params",
    # suites.py: parameter boxes
    "Suite": "suites",
    "get_suite": "suites",
    "list_suites": "suites",
    "describe_suites": "suites",
    # observation_disruption.py, reward_disruption.py, drift.py: disruptions beyond physics
    "ObservationNoise": "observation_disruption",
    "ObservationAttack": "observation_disruption",
    "observation_spread": "observation_disruption",
    "differentiable_policy": "observation_disruption",
    "RewardDisruption": "reward_disruption",
    "ParameterDrift": "drift",
    # tabular.py: tabular and linear MDPs
    "TabularMDP": "tabular",
    "BatchedTabularMDP": "tabular",
    "garnet": "tabular",
    "river_swim": "tabular",
    "GenerativeModel": "tabular",
    "LinearMDP": "tabular",
    "linear_mdp": "tabular",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
