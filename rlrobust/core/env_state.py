"""Capture and restore an environment's full state, so a resumed run continues its episodes.

A checkpoint taken in the middle of episodes must hold everything the next steps depend on:
the simulator state, the RNGs, the time-limit counters and the state of every wrapper. This
module walks a gymnasium wrapper chain from the outside in and captures each layer:

* **The protocol**: any wrapper or env may define ``capture_state() -> state`` (picklable) and
  ``restore_state(state)``; the perturbation wrappers of :mod:`rlrobust.envs.perturbation` and
  :class:`~rlrobust.envs.tabular.TabularMDP` do. Such a layer is used as it is.
* **Known gymnasium wrappers**: ``TimeLimit`` (elapsed steps), ``OrderEnforcing`` and
  ``PassiveEnvChecker`` (their flags and cached data) and the stateless action/observation
  wrappers: their instance attributes other than structure (inner env, spaces).
* **Known base envs**: MuJoCo envs (a full copy of ``MjData``: positions, velocities,
  actuator state, time, warm start and every derived quantity, so even rewards computed from
  positions cached by the previous step come out bit for bit) and classic control
  (``state`` and its companions); every base env's ``np_random``.

Any other layer makes the env *not capturable*: :func:`capture_problem` says which layer, and
the trainer then restarts that env's episodes on resume (and says so once in its log) instead
of guessing. The model parameters a perturbation wrapper sets are part of *its* state and are
written back into the model by its ``restore_state``.

:class:`StateAccess` exposes the whole chain's state as one attribute of the outermost layer,
so a vector env (sync or async) reaches every sub-env's through ``get_attr``/``set_attr``.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol, TypeGuard, cast

import gymnasium as gym
import numpy as np

from rlrobust.core.errors import CheckpointError

# gymnasium wrappers whose whole state is their own instance attributes (counters, flags, the
# env checker's cached data), captured as such; stateless transforms are listed for the same walk.
_KNOWN_WRAPPERS = frozenset(
    {
        "TimeLimit",
        "OrderEnforcing",
        "PassiveEnvChecker",
        "ClipAction",
        "RescaleAction",
        "FlattenObservation",
        "DtypeObservation",
        "RescaleObservation",
        "TransformObservation",
        "TransformAction",
        "TransformReward",
    }
)
# Wrapper attributes that are structure (the inner env, spaces, constructor args), not state.
_STRUCTURE = frozenset(
    {
        "_saved_kwargs",
        "env",
        "_action_space",
        "_observation_space",
        "_metadata",
        "_cached_spec",
        "_reward_range",
        "func",
        "action_func",
        "observation_func",
    }
)
# Attributes of classic-control envs that hold the episode's state (those present are captured).
_CLASSIC_FIELDS = ("state", "steps_beyond_terminated", "last_u")


def rng_state(rng: np.random.Generator | None) -> dict[str, Any] | None:
    """A NumPy generator's state (None for None)."""
    return None if rng is None else copy.deepcopy(dict(rng.bit_generator.state))


def rng_from_state(state: dict[str, Any] | None) -> np.random.Generator | None:
    """A generator in ``state`` (as from :func:`rng_state`; None for None)."""
    if state is None:
        return None
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _layers(env: gym.Env) -> list[Any]:
    layers, layer = [], env
    while isinstance(layer, gym.Wrapper):
        layers.append(layer)
        layer = layer.env
    return [*layers, layer]


def _is_mujoco(env: Any) -> bool:
    return hasattr(env, "model") and hasattr(env, "data") and type(env.data).__name__ == "MjData"


def _is_classic_control(env: Any) -> bool:
    return type(env).__module__.startswith("gymnasium.envs.classic_control")


class StatefulLayer(Protocol):
    """An env or wrapper that captures and restores its own state (the protocol above)."""

    def capture_state(self) -> Any:
        """The layer's state, picklable."""

    def restore_state(self, state: Any) -> None:
        """Put the layer back into a state returned by :meth:`capture_state`."""


def _own_protocol(layer: Any) -> TypeGuard[StatefulLayer]:
    return callable(getattr(layer, "capture_state", None)) and callable(getattr(layer, "restore_state", None))


def capture_problem(env: gym.Env) -> str | None:
    """Why ``env``'s state cannot be captured (naming the layer), or None when it can."""
    for layer in _layers(env):
        if _own_protocol(layer):
            continue
        name = type(layer).__name__
        if isinstance(layer, gym.Wrapper):
            if name not in _KNOWN_WRAPPERS:
                return (
                    f"wrapper {name} ({type(layer).__module__}) has no capture_state/restore_state "
                    "and is not a gymnasium wrapper known to rlrobust"
                )
        elif not (_is_mujoco(layer) or _is_classic_control(layer)):
            return (
                f"env {name} ({type(layer).__module__}) has no capture_state/restore_state and is not a "
                "MuJoCo or classic-control env"
            )
    return None


def _capture_base(env: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "np_random": rng_state(getattr(env, "_np_random", None)),
        "np_random_seed": getattr(env, "_np_random_seed", None),
    }
    if _own_protocol(env):
        state["own"] = env.capture_state()
    elif _is_mujoco(env):
        state["mjdata"] = copy.copy(env.data)  # a full, independent MjData (picklable)
    else:
        state["fields"] = {k: copy.deepcopy(getattr(env, k)) for k in _CLASSIC_FIELDS if hasattr(env, k)}
    return state


def _restore_base(env: Any, state: dict[str, Any]) -> None:
    if "own" in state:
        env.restore_state(state["own"])
    elif "mjdata" in state:
        _copy_mjdata(env, state["mjdata"])
    else:
        for key, value in state["fields"].items():
            setattr(env, key, copy.deepcopy(value))
    env._np_random = rng_from_state(state["np_random"])
    env._np_random_seed = state["np_random_seed"]


def _copy_mjdata(env: Any, source: Any) -> None:
    """Write ``source`` into the env's own ``MjData`` (renderers and wrappers hold references to
    it, so it is filled in place rather than replaced)."""
    import mujoco

    mujoco.mj_copyData(env.data, env.model, source)


def capture_env_state(env: gym.Env) -> list[tuple[str, Any]]:
    """The state of every layer of ``env``, outermost first, as ``(class name, state)`` pairs.

    Raises:
        CheckpointError: the env cannot be captured (see :func:`capture_problem`).
    """
    problem = capture_problem(env)
    if problem is not None:
        raise CheckpointError(f"cannot capture the state of {env}: {problem}")
    states: list[tuple[str, Any]] = []
    for layer in _layers(env):
        name = type(layer).__name__
        if isinstance(layer, gym.Wrapper):
            if _own_protocol(layer):
                states.append((name, {"own": layer.capture_state()}))
            else:
                fields = {k: copy.deepcopy(v) for k, v in vars(layer).items() if k not in _STRUCTURE}
                states.append((name, {"fields": fields}))
        else:
            states.append((name, _capture_base(layer)))
    return states


def restore_env_state(env: gym.Env, states: list[tuple[str, Any]]) -> None:
    """Put ``env`` back into a state from :func:`capture_env_state` of an env built the same way.

    The base env is restored first, then the wrappers from the inside out, so a wrapper that
    writes model parameters (a perturbation) does so on top of the restored simulator.

    Raises:
        CheckpointError: the env's layers differ from the captured ones (another env or wrapper
            stack than the checkpoint's).
    """
    layers = _layers(env)
    names = [type(layer).__name__ for layer in layers]
    if names != [name for name, _ in states]:
        raise CheckpointError(
            f"the env's layers {names} differ from the checkpoint's {[n for n, _ in states]}; resume with the "
            "same env and perturbation config"
        )
    for layer, (_, state) in reversed(list(zip(layers, states))):
        if not isinstance(layer, gym.Wrapper):
            _restore_base(layer, state)
        elif "own" in state:
            cast(StatefulLayer, layer).restore_state(state["own"])
        else:
            for key, value in state["fields"].items():
                setattr(layer, key, copy.deepcopy(value))


class StateAccess(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A pass-through outermost layer that exposes the whole chain below it: the attribute
    ``env_state`` reads :func:`capture_env_state` and assigning it runs :func:`restore_env_state`,
    so a vector env (sync or async) reaches each sub-env's state through ``get_attr("env_state")``
    and ``set_attr("env_state", states)``."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)

    def env_state_problem(self) -> str | None:
        """:func:`capture_problem` of the wrapped chain."""
        return capture_problem(self.env)

    @property
    def env_state(self) -> list[tuple[str, Any]]:
        """:func:`capture_env_state` of the wrapped chain (assign to restore)."""
        return capture_env_state(self.env)

    @env_state.setter
    def env_state(self, states: list[tuple[str, Any]]) -> None:
        restore_env_state(self.env, states)


class WithStateAccess:
    """A picklable env factory: ``StateAccess(env_fn())`` (async vector envs pickle factories)."""

    def __init__(self, env_fn: Any) -> None:
        self.env_fn = env_fn

    def __call__(self) -> gym.Env:
        return StateAccess(self.env_fn())
