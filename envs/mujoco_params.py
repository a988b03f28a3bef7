"""Named physical parameters of MuJoCo and classic-control tasks, read from the live model.

Every perturbable quantity has a name and a nominal value taken from the compiled model (or
the classic-control env's attributes) when the handler is built, never from a table, because
published defaults disagree between RRLS, the IWOCS paper and Gymnasium's v5 XML files.

MuJoCo tasks (any ``MujocoEnv``; tested on HalfCheetah, Hopper, Walker2d, Ant,
InvertedPendulum and HumanoidStandup v5):

* ``<body>_mass`` for every named body with mass: sets ``body_mass`` and scales that body's
  ``body_inertia`` by the same factor (uniform density, so the body keeps its shape), then
  recomputes the derived constants (``body_subtreemass``, ``dof_invweight0``, ``actuator_acc0``,
  ...) with ``mujoco.mj_setConst``.
* ``friction``: the floor's sliding friction. Every geom's sliding friction is scaled by
  ``value / nominal``, because MuJoCo combines a contact pair by the element-wise *maximum*: the
  Hopper's foot carries 2.0 against a floor of 1.0, so writing the floor alone (as RRLS does)
  leaves most of a [0.1, 3.0] range inert. Declared only where a geom named ``floor`` exists.
* ``gravity``: magnitude of ``opt.gravity`` (direction kept).
* ``actuator_strength``: multiplier (nominal 1.0) of every actuator's gain (``gainprm[0]``) and
  bias (``biasprm[0:3]``), so motors and position servos both scale their force.
* ``joint_damping``: multiplier (nominal 1.0) of ``dof_damping``.

Classic control: CartPole (``gravity``, ``masscart``, ``masspole``, ``length`` — half the
pole's length, as in Gymnasium — and ``force_mag``; ``total_mass`` and ``polemass_length`` are
recomputed) and Pendulum (``m``, ``l``, ``g``, ``max_torque``; the action space keeps its
bounds, so ``max_torque`` may only shrink — a smaller limit clips harder inside ``step``).

A handler (:class:`PhysicalParameters`) always writes *absolute* states: ``apply(values)``
first restores every touched field from the nominal snapshot, then applies ``values``; names
left out are nominal. So nothing leaks between episodes, grid points or per-step changes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobust.core.errors import PerturbationError, choices


@dataclass(frozen=True)
class ParameterInfo:
    """One perturbable parameter.

    Attributes:
        name: the public name (``"torso_mass"``).
        nominal: value in the unperturbed model.
        positive: True if the value must be > 0 (masses, lengths), else it must be >= 0.
        description: what the parameter changes.
        maximum: largest value that still has an effect (Pendulum's ``max_torque`` above its
            nominal value is inert because the action space stays at the nominal limit).
    """

    name: str
    nominal: float
    positive: bool
    description: str
    maximum: float = math.inf

    def check(self, value: float, env_label: str) -> float:
        """``value`` as a float if it is valid for this parameter, else PerturbationError."""
        value = float(value)
        ok = value > 0 if self.positive else value >= 0
        if not (ok and math.isfinite(value) and value <= self.maximum):
            bound = "> 0" if self.positive else ">= 0"
            if self.maximum < math.inf:
                bound += f" and <= {self.maximum:g}"
            raise PerturbationError(
                f"{self.name}={value!r} is not valid for {env_label}: it must be finite and {bound} "
                f"(nominal {self.nominal:g}; {self.description})"
            )
        return value


def silence_mujoco_warnings() -> None:
    """MuJoCo 4 warns (and writes MUJOCO_LOG.TXT) for every Gymnasium v5 env made; mute it."""
    try:
        import mujoco

        mujoco.set_mju_user_warning(lambda msg: None)
    except Exception:  # pragma: no cover - mujoco is a hard dependency
        pass


class PhysicalParameters:
    """Reads and writes the named physical parameters of one (unwrapped) environment.

    Subclasses fill ``self.infos`` and implement ``_restore`` and ``_write``.
    """

    def __init__(self, env: gym.Env) -> None:
        self.env = env
        self.label = env.spec.id if env.spec is not None else type(env).__name__
        self.infos: dict[str, ParameterInfo] = {}
        self._values: dict[str, float] = {}  # the non-default part of the current state

    # -- public -------------------------------------------------------------------------------

    def nominal(self) -> dict[str, float]:
        """Every parameter's nominal value."""
        return {name: info.nominal for name, info in self.infos.items()}

    def get(self) -> dict[str, float]:
        """Every parameter's current value."""
        return {**self.nominal(), **self._values}

    def validate(
        self,
        values: Mapping[str, Any],
        bounds: Mapping[str, tuple[float, float]] | None = None,
    ) -> dict[str, float]:
        """Check names, physical validity and (optionally) a box; return plain floats.

        Raises:
            PerturbationError: naming the bad entry and listing valid names or the box.
        """
        out: dict[str, float] = {}
        for name, value in values.items():
            if name not in self.infos:
                raise PerturbationError(self._unknown_message(name))
            out[name] = self.infos[name].check(value, self.label)
            if bounds is not None and name in bounds:
                lo, hi = bounds[name]
                if not lo <= out[name] <= hi:
                    raise PerturbationError(
                        f"{name}={out[name]!r} is outside its box [{lo:g}, {hi:g}] for {self.label}"
                    )
        return out

    def check_bounds(self, bounds: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
        """Validate a box ``{name: (low, high)}``; returns it with float pairs."""
        out: dict[str, tuple[float, float]] = {}
        for name, pair in bounds.items():
            try:
                lo, hi = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise PerturbationError(
                    f"bound of {name!r} must be a pair [low, high], got {pair!r}"
                ) from None
            self.validate({name: lo})  # unknown names and unphysical ends raise here
            self.validate({name: hi})
            if lo > hi:
                raise PerturbationError(f"bound of {name!r} has low {lo:g} > high {hi:g}")
            out[name] = (lo, hi)
        return out

    def apply(self, values: Mapping[str, float]) -> None:
        """Restore the nominal model, then set ``values`` (already validated); others nominal."""
        new = {k: float(v) for k, v in values.items() if float(v) != self.infos[k].nominal}
        self._restore()
        self._values = new
        self._write(new)

    def restore(self) -> None:
        """Back to the nominal model."""
        self.apply({})

    # -- internals ----------------------------------------------------------------------------

    def _unknown_message(self, name: str) -> str:
        msg = f"unknown parameter {name!r} for {self.label}; valid: {choices(self.infos)}"
        if not isinstance(self, MujocoParameters) and (name.endswith("_mass") or name in _MUJOCO_ONLY):
            msg += f" ({name!r} is a MuJoCo parameter and {self.label} is not a MuJoCo env)"
        return msg

    def _restore(self) -> None:
        raise NotImplementedError

    def _write(self, values: Mapping[str, float]) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Gymnasium's MuJoCo envs pickle (and deepcopy) as constructor arguments (EzPickle), so
        # the env comes back at its nominal model: write the current values into it again.
        self.__dict__.update(state)
        self._write(self._values)


_MUJOCO_ONLY = ("friction", "actuator_strength", "joint_damping")


class MujocoParameters(PhysicalParameters):
    """Named parameters of a Gymnasium ``MujocoEnv`` (see the module docstring)."""

    # Model fields a parameter may touch; restored from the nominal snapshot before each write.
    _FIELDS = (
        "body_mass",
        "body_inertia",
        "geom_friction",
        "actuator_gainprm",
        "actuator_biasprm",
        "dof_damping",
    )

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        import mujoco

        model = env.model  # type: ignore[attr-defined]
        self._nominal_fields = {f: getattr(model, f).copy() for f in self._FIELDS}
        self._nominal_gravity = model.opt.gravity.copy()
        self._mass_bodies: dict[str, int] = {}
        self._scratch: Any = None  # an MjData for mj_setConst, so the env's own data is untouched
        self._masses_dirty = False

        for body_id in range(model.nbody):
            body = model.body(body_id).name
            if body and model.body_mass[body_id] > 0:
                name = f"{body}_mass"
                self._mass_bodies[name] = body_id
                self.infos[name] = ParameterInfo(
                    name,
                    float(model.body_mass[body_id]),
                    True,
                    f"mass of body {body!r} (inertia scaled alike)",
                )
        floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        self._floor = int(floor)
        if floor >= 0:
            self.infos["friction"] = ParameterInfo(
                "friction",
                float(model.geom_friction[floor, 0]),
                False,
                "floor sliding friction; every geom's sliding friction scales by value/nominal",
            )
        self.infos["gravity"] = ParameterInfo(
            "gravity", float(np.linalg.norm(self._nominal_gravity)), False, "magnitude of gravity"
        )
        if model.nu > 0:
            self.infos["actuator_strength"] = ParameterInfo(
                "actuator_strength", 1.0, False, "multiplier of every actuator's gain and bias"
            )
        if model.nv > 0 and np.any(model.dof_damping > 0):
            self.infos["joint_damping"] = ParameterInfo(
                "joint_damping", 1.0, False, "multiplier of every joint's damping"
            )

    def _restore(self) -> None:
        if not self._values:
            return  # already nominal: nothing to copy (keeps a nominal reset free)
        model = self.env.model  # type: ignore[attr-defined]
        for field, nominal in self._nominal_fields.items():
            np.copyto(getattr(model, field), nominal)
        model.opt.gravity[:] = self._nominal_gravity
        # Derived constants are recomputed once, at the end of _write.
        self._masses_dirty = any(name in self._mass_bodies for name in self._values)

    def _write(self, values: Mapping[str, float]) -> None:
        model = self.env.model  # type: ignore[attr-defined]
        for name, value in values.items():
            if name in self._mass_bodies:
                body = self._mass_bodies[name]
                scale = value / self._nominal_fields["body_mass"][body]
                model.body_mass[body] = value
                model.body_inertia[body] = self._nominal_fields["body_inertia"][body] * scale
                self._masses_dirty = True
            elif name == "friction":
                scale = value / self.infos["friction"].nominal
                model.geom_friction[:, 0] = self._nominal_fields["geom_friction"][:, 0] * scale
            elif name == "gravity":
                model.opt.gravity[:] = self._nominal_gravity * (value / self.infos["gravity"].nominal)
            elif name == "actuator_strength":
                model.actuator_gainprm[:, 0] = self._nominal_fields["actuator_gainprm"][:, 0] * value
                model.actuator_biasprm[:, :3] = self._nominal_fields["actuator_biasprm"][:, :3] * value
            elif name == "joint_damping":
                model.dof_damping[:] = self._nominal_fields["dof_damping"] * value
        if self._masses_dirty:  # masses changed now or were restored just before
            self._set_const()
            self._masses_dirty = False

    def _set_const(self) -> None:
        import mujoco

        model = self.env.model  # type: ignore[attr-defined]
        if self._scratch is None:
            self._scratch = mujoco.MjData(model)
        mujoco.mj_setConst(model, self._scratch)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_scratch"] = None  # tied to the old model; rebuilt on demand
        state["_masses_dirty"] = False
        return state


class ClassicControlParameters(PhysicalParameters):
    """Named attributes of Gymnasium's CartPole and Pendulum."""

    _ATTRIBUTES: dict[str, dict[str, str]] = {
        "CartPoleEnv": {
            "gravity": "gravitational acceleration",
            "masscart": "cart mass",
            "masspole": "pole mass",
            "length": "half the pole's length",
            "force_mag": "force of a push",
        },
        "PendulumEnv": {
            "m": "pendulum mass",
            "l": "pendulum length",
            "g": "gravitational acceleration",
            "max_torque": "torque limit applied inside step; the action space keeps the nominal limit",
        },
    }
    _POSITIVE = {"masscart", "masspole", "length", "m", "l"}

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        for attr, description in self._ATTRIBUTES[type(env).__name__].items():
            nominal = float(getattr(env, attr))
            maximum = nominal if attr == "max_torque" else math.inf  # larger limits never bind
            self.infos[attr] = ParameterInfo(attr, nominal, attr in self._POSITIVE, description, maximum)

    def _restore(self) -> None:
        self._write({})

    def _write(self, values: Mapping[str, float]) -> None:
        env = self.env
        for name, info in self.infos.items():
            setattr(env, name, values.get(name, info.nominal))
        if type(env).__name__ == "CartPoleEnv":  # derived quantities CartPole caches in __init__
            env.total_mass = env.masspole + env.masscart  # type: ignore[attr-defined]
            env.polemass_length = env.masspole * env.length  # type: ignore[attr-defined]


_SUPPORTED = "any Gymnasium MuJoCo env (HalfCheetah, Hopper, Walker2d, Ant, InvertedPendulum, HumanoidStandup, ...), CartPole, Pendulum"


def _is_mujoco(env: gym.Env) -> bool:
    try:
        from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
    except Exception:  # pragma: no cover - mujoco missing
        return False
    return isinstance(env, MujocoEnv)


def physical_parameters(env: gym.Env) -> PhysicalParameters:
    """The parameter handler for ``env`` (wrappers are looked through).

    Raises:
        PerturbationError: if the task has no named physical parameters.
    """
    base = env.unwrapped
    factory: Callable[[gym.Env], PhysicalParameters]
    if _is_mujoco(base):
        factory = MujocoParameters
    elif type(base).__name__ in ClassicControlParameters._ATTRIBUTES:
        factory = ClassicControlParameters
    else:
        label = base.spec.id if base.spec is not None else type(base).__name__
        raise PerturbationError(f"{label} has no named physical parameters; supported: {_SUPPORTED}")
    return factory(base)


@functools.cache
def _nominal(env_id: str) -> tuple[tuple[str, float], ...]:
    silence_mujoco_warnings()
    env = gym.make(env_id)
    try:
        return tuple(physical_parameters(env).nominal().items())
    finally:
        env.close()


def perturbable_parameters(env_id: str) -> dict[str, float]:
    """Each perturbable parameter of ``env_id`` with its nominal value (builds one env, cached).

    Example:
        >>> perturbable_parameters("CartPole-v1")["masspole"]
        0.1
    """
    return dict(_nominal(env_id))
