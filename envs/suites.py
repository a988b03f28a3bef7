"""Perturbation suites: a task plus a box over its named physical parameters, or over the
strength of a disruption (observation noise, observation attack, parameter drift).

The MuJoCo boxes are RRLS's 1d/2d/3d uncertainty sets (M2TD3, Tanabe et al. 2022; RRLS
``XxxParamsBound``), with parameter names from
:mod:`rlrobust.envs.mujoco_params`. Two deliberate differences from RRLS:

* Grids include **both** bounds of every dimension (``np.linspace``); RRLS's
  ``np.arange(lo, hi, (hi - lo) / 10)`` never evaluates the upper bound.
* ``friction`` scales every geom's sliding friction with the floor's (see ``mujoco_params``),
  so the whole range acts on the robot's contacts; RRLS writes the Hopper/Walker floor only.

Kept as published even where the nominal model lies outside the box: Hopper's torso mass
3.67 is above [0.1, 3.0] and its thigh mass 4.06 above [0.1, 4.0] (``hopper-2d``/``-3d``).

``cartpole-2d`` and ``pendulum-1d`` are small classic-control suites for fast tests and the
demo.

Disruption suites (``disruption`` set) vary one setting of a wrapper, from 0 (the undisturbed
task) upwards: the noise ``scale`` of :class:`~rlrobust.envs.observation_disruption.ObservationNoise`
(``*-obs-noise``), the radius ``eps`` of an
:class:`~rlrobust.envs.observation_disruption.ObservationAttack` on the evaluated policy
(``*-attack``; the evaluator hands the policy to the env), or the ``rate`` of a
:class:`~rlrobust.envs.drift.ParameterDrift` (``*-drift``). Their absolute noise scales and
radii are in observation units.

Nothing here builds an environment at import time; :meth:`Suite.make_env` builds one.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobust.core.errors import PerturbationError, choices
from rlrobust.core.seeding import numpy_generator


@dataclass(frozen=True)
class Suite:
    """A task and a box over its physical parameters.

    Attributes:
        id: registry id (``"hopper-2d"``).
        env_id: Gymnasium id of the task (``"Hopper-v5"``).
        bounds: ``{parameter: (low, high)}`` in dimension order.
        points_per_dim: default grid resolution (10 as in RRLS).
        source: where the box comes from.
        disruption: None for a box over physical parameters; else the :func:`make_env` spec of
            the disruption (``{"kind": "observation_noise", ...}``) whose settings ``bounds`` varies.
        description: one line on what the suite varies (:func:`describe_suites`).
    """

    id: str
    env_id: str
    bounds: Mapping[str, tuple[float, float]]
    points_per_dim: int = 10
    source: str = ""
    disruption: Mapping[str, Any] | None = None
    description: str = ""
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.bounds))

    @property
    def dims(self) -> int:
        """Number of perturbed parameters."""
        return len(self.names)

    @property
    def kind(self) -> str:
        """``"parameters"`` (a physical box) or the disruption's kind (``"observation_noise"``, ...)."""
        return "parameters" if self.disruption is None else str(self.disruption["kind"])

    @property
    def needs_policy(self) -> bool:
        """True when the env must know the evaluated policy (an observation attack)."""
        return self.kind == "observation_attack"

    def summary(self) -> str:
        """One line: the id, the task and what varies over which range."""
        ranges = " x ".join(f"{n} [{lo:g}, {hi:g}]" for n, (lo, hi) in self.bounds.items())
        what = self.description or ("physical parameters " + ranges)
        return f"{self.id}: {self.env_id}, {what}" + ("" if self.description == "" else f"; {ranges}")

    def grid(self, points_per_dim: int | None = None) -> list[dict[str, float]]:
        """Every point of the regular grid, both bounds included, first dimension slowest."""
        n = self.points_per_dim if points_per_dim is None else int(points_per_dim)
        if n < 2:
            raise PerturbationError(f"points_per_dim must be >= 2 so both bounds are evaluated, got {n}")
        axes = [np.linspace(lo, hi, n) for lo, hi in self.bounds.values()]
        return [dict(zip(self.names, map(float, point))) for point in itertools.product(*axes)]

    def sample(self, n: int, seed: int = 0) -> list[dict[str, float]]:
        """``n`` points drawn uniformly from the box with a generator seeded by ``seed``."""
        rng = numpy_generator(seed)
        lows = np.array([lo for lo, _ in self.bounds.values()])
        highs = np.array([hi for _, hi in self.bounds.values()])
        draws = rng.uniform(lows, highs, size=(int(n), self.dims))
        return [dict(zip(self.names, map(float, row))) for row in draws]

    def check_env(self, env_id: str) -> None:
        """Raise :class:`PerturbationError` unless ``env_id`` names this suite's task (any version)."""

        def task(name: str) -> str:
            return name.split("/")[-1].split("-v")[0]

        if task(self.env_id) != task(str(env_id)):
            raise PerturbationError(
                f"suite {self.id!r} is for {self.env_id}, not {env_id}; suites for "
                f"{env_id}: {choices(s for s in _SUITES if task(_SUITES[s].env_id) == task(env_id)) or 'none'}"
            )

    def make_env(self, *, policy: Any = None, **kwargs: Any) -> gym.Env:
        """The task wrapped in a :class:`ParameterPerturbation` restricted to this box, or in
        this suite's disruption (attacking ``policy`` for an observation-attack suite).
        ``kwargs`` go to ``gym.make``."""
        from rlrobust.envs.build import DISRUPTIONS, make_base_env, plain, wrap_disruption
        from rlrobust.envs.perturbation import ParameterPerturbation

        spec: dict[str, Any] = {} if self.disruption is None else plain(self.disruption)
        kind = spec.pop("kind", None)
        spec.pop("name", None)  # a free-form label, as in the perturbation configs
        if self.disruption is not None and kind not in DISRUPTIONS:
            raise PerturbationError(
                f"suite {self.id!r}: disruption kind {kind!r} is not one of {choices(DISRUPTIONS)}"
            )
        env = make_base_env(self.env_id, **kwargs)
        try:
            if self.disruption is None:
                return ParameterPerturbation(env, bounds=dict(self.bounds))
            env = wrap_disruption(env, str(kind), spec)
        except Exception:
            env.close()
            raise
        if self.needs_policy:
            if policy is None:
                env.close()
                raise PerturbationError(f"suite {self.id!r} attacks the evaluated policy: pass policy=...")
            env.set_policy(policy)  # type: ignore[attr-defined]
        return env

    def set_point(self, env: gym.Env, point: Mapping[str, float]) -> None:
        """Put an env from :meth:`make_env` at one point of the grid (physical parameters are
        first restored to nominal; a disruption's setting is replaced)."""
        if self.disruption is None:
            env.set_params(**point)  # type: ignore[attr-defined]
        else:
            env.set_disruption(**point)  # type: ignore[attr-defined]


_RRLS = "RRLS XxxParamsBound (M2TD3 sets)"


def _rrls(task: str, env_id: str, dims: list[tuple[str, float, float]]) -> dict[str, Suite]:
    """The 1d, 2d, ... suites of one task: each adds one dimension to the previous."""
    return {
        f"{task}-{d}d": Suite(f"{task}-{d}d", env_id, {n: (lo, hi) for n, lo, hi in dims[:d]}, source=_RRLS)
        for d in range(1, len(dims) + 1)
    }


_SUITES: dict[str, Suite] = {
    **_rrls(
        "ant",
        "Ant-v5",
        [("torso_mass", 0.1, 3.0), ("front_left_leg_mass", 0.01, 3.0), ("front_right_leg_mass", 0.01, 3.0)],
    ),
    **_rrls(
        "hopper", "Hopper-v5", [("friction", 0.1, 3.0), ("torso_mass", 0.1, 3.0), ("thigh_mass", 0.1, 4.0)]
    ),
    **_rrls(
        "walker2d",
        "Walker2d-v5",
        [("friction", 0.1, 4.0), ("torso_mass", 0.1, 5.0), ("thigh_mass", 0.1, 6.0)],
    ),
    **_rrls(
        "humanoidstandup",
        "HumanoidStandup-v5",
        [("torso_mass", 0.1, 16.0), ("right_foot_mass", 0.1, 8.0), ("left_thigh_mass", 0.1, 5.0)],
    ),
    **_rrls("invertedpendulum", "InvertedPendulum-v5", [("pole_mass", 1.0, 31.0), ("cart_mass", 1.0, 11.0)]),
    # HalfCheetah's 1d friction box is narrower than its 2d/3d one in RRLS.
    "halfcheetah-1d": Suite("halfcheetah-1d", "HalfCheetah-v5", {"friction": (0.1, 3.0)}, source=_RRLS),
    "halfcheetah-2d": Suite(
        "halfcheetah-2d", "HalfCheetah-v5", {"friction": (0.1, 4.0), "torso_mass": (0.1, 7.0)}, source=_RRLS
    ),
    "halfcheetah-3d": Suite(
        "halfcheetah-3d",
        "HalfCheetah-v5",
        {"friction": (0.1, 4.0), "torso_mass": (0.1, 7.0), "bthigh_mass": (0.1, 3.0)},
        source=_RRLS,
    ),
    # Classic control, for fast tests and the demo (nominal: masspole 0.1, length 0.5; m 1.0).
    "cartpole-2d": Suite(
        "cartpole-2d",
        "CartPole-v1",
        {"masspole": (0.05, 1.0), "length": (0.25, 1.5)},
        source="rlrobust (demo)",
        description="pole mass x pole half-length (nominal 0.1 x 0.5)",
    ),
    "pendulum-1d": Suite(
        "pendulum-1d",
        "Pendulum-v1",
        {"m": (0.5, 2.0)},
        source="rlrobust (demo)",
        description="pendulum mass (nominal 1.0)",
    ),
}


def _disruption_suites() -> dict[str, Suite]:
    obs_noise = "Gaussian observation noise of std `scale` on every dimension"
    attack = "PGD attack (10 steps) on the evaluated policy within an l-inf ball of radius `eps`"
    drift = "linear drift within each episode at `rate` (end reached at step 1/rate)"
    source = "rlrobust (Robust-Gymnasium-style disruption)"
    suites = [
        Suite(
            "cartpole-obs-noise",
            "CartPole-v1",
            {"scale": (0.0, 0.5)},
            6,
            source,
            {"kind": "observation_noise", "distribution": "gaussian"},
            obs_noise,
        ),
        Suite(
            "hopper-obs-noise",
            "Hopper-v5",
            {"scale": (0.0, 0.2)},
            6,
            source,
            {"kind": "observation_noise", "distribution": "gaussian"},
            obs_noise,
        ),
        Suite(
            "invertedpendulum-obs-noise",
            "InvertedPendulum-v5",
            {"scale": (0.0, 0.5)},
            6,
            source,
            {"kind": "observation_noise", "distribution": "gaussian"},
            obs_noise,
        ),
        Suite(
            "cartpole-attack",
            "CartPole-v1",
            {"eps": (0.0, 0.2)},
            5,
            source,
            {"kind": "observation_attack", "method": "pgd", "steps": 10},
            attack,
        ),
        Suite(
            "hopper-attack",
            "Hopper-v5",
            {"eps": (0.0, 0.1)},
            5,
            source,
            {"kind": "observation_attack", "method": "pgd", "steps": 10},
            attack,
        ),
        Suite(
            "cartpole-drift",
            "CartPole-v1",
            {"rate": (0.0, 0.02)},
            5,
            source,
            {"kind": "drift", "schedule": "linear", "bounds": {"masspole": (0.1, 1.0), "length": (0.5, 1.5)}},
            drift + " of pole mass 0.1 -> 1.0 and pole half-length 0.5 -> 1.5",
        ),
        Suite(
            "hopper-drift",
            "Hopper-v5",
            {"rate": (0.0, 0.01)},
            5,
            source,
            {"kind": "drift", "schedule": "linear", "bounds": {"friction": (1.0, 0.1)}},
            drift + " of floor friction 1.0 -> 0.1",
        ),
    ]
    return {s.id: s for s in suites}


_SUITES.update(_disruption_suites())


def list_suites() -> list[str]:
    """Registered suite ids, sorted (:func:`describe_suites` says what each varies)."""
    return sorted(_SUITES)


def describe_suites() -> str:
    """Every registered suite on one line: id, task, what varies over which range."""
    return "\n".join(_SUITES[i].summary() for i in list_suites())


def get_suite(suite_id: str | Suite) -> Suite:
    """The suite registered as ``suite_id`` (a :class:`Suite` is returned as is).

    Raises:
        PerturbationError: listing the valid ids.
    """
    if isinstance(suite_id, Suite):
        return suite_id
    if suite_id not in _SUITES:
        raise PerturbationError(f"unknown suite {suite_id!r}; valid: {choices(_SUITES)}")
    return _SUITES[suite_id]
