"""Building blocks of an env shared by the config factory and the suites: the bare task
(:func:`make_base_env`) and one disruption wrapper from its spec (:func:`wrap_disruption`).

:func:`rlrobust.envs.factory.make_env` (a config naming a suite) and
:meth:`rlrobust.envs.suites.Suite.make_env` (a suite building its env) both use them, so the
factory can read the suites without the suites importing the factory.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from rlrobust.core.errors import ConfigError, choices
from rlrobust.envs.mujoco_params import silence_mujoco_warnings

# Disruptions of what the agent observes or is paid, and time-varying physics: kind ->
# (module of rlrobust.envs, wrapper class); a spec's other keys are the wrapper's keyword arguments.
DISRUPTIONS = {
    "observation_noise": ("observation_disruption", "ObservationNoise"),
    "observation_attack": ("observation_disruption", "ObservationAttack"),
    "reward": ("reward_disruption", "RewardDisruption"),
    "drift": ("drift", "ParameterDrift"),
}


def plain(obj: Any) -> Any:
    """Hydra's DictConfig/ListConfig (or any mapping/sequence) → plain dicts and lists."""
    if isinstance(obj, Mapping) or hasattr(obj, "items"):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple) or (
        hasattr(obj, "__iter__") and hasattr(obj, "__len__") and not isinstance(obj, str)
    ):
        return [plain(v) for v in obj]
    return obj


def make_base_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` with MuJoCo's warnings silenced and the ``rlrobust/*``
    tabular ids registered."""
    silence_mujoco_warnings()
    if env_id.startswith("rlrobust/"):
        import rlrobust.envs.tabular  # noqa: F401  (registers the rlrobust/* gymnasium ids)
    return gym.make(env_id, **kwargs)


def _disruption_class(kind: str) -> Any:
    # Imported on use: the disruption modules pull in torch and the policy adapters.
    from rlrobust.envs import drift, observation_disruption, reward_disruption

    modules = {
        "observation_disruption": observation_disruption,
        "reward_disruption": reward_disruption,
        "drift": drift,
    }
    module, name = DISRUPTIONS[kind]
    return getattr(modules[module], name)


def wrap_disruption(env: gym.Env, kind: str, spec: Mapping[str, Any]) -> gym.Env:
    """``kind``'s wrapper (a key of :data:`DISRUPTIONS`) around ``env`` with the spec's keys as
    its keyword arguments.

    Raises:
        ConfigError: a key the wrapper does not take, listing the valid ones.
    """
    cls = _disruption_class(kind)
    valid = [p for p in inspect.signature(cls).parameters if p != "env"]
    unknown = set(spec) - set(valid)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {choices(unknown)} for perturbation kind {kind!r}; valid: {choices(valid)}"
        )
    return cls(env, **spec)
