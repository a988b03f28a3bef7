"""Robust-MDP adversaries as Gymnasium wrappers.

Each wrapper keeps the agent's observation and action spaces unchanged, so SB3 and rlrobust
agents use a wrapped env as they are. Adversaries that act (per-step parameters, forces, action
perturbations) take their decisions from an adversary *policy* ``obs -> action in [-1, 1]^d``
set through ``set_adversary`` (or ``env.set_attr("adversary", ...)`` on a vector env), or from
an action held with ``set_adversary_action`` (the safe-control-gym/RARL setter pattern), or
from ``"random"`` (uniform draws from the wrapper's own generator). No Tuple action spaces.

Robust-MDP models:

* :class:`ParameterPerturbation` — static model: parameters held for an episode, fixed or
  drawn at each reset (domain randomization).
* :class:`DynamicParameterAdversary` — dynamic model: parameters chosen at every step.
* :class:`ExternalForceAdversary` — RARL (Pinto et al. 2017): forces on named bodies.
* :class:`NoisyActionAdversary` — NR-MDP (Tessler et al. 2019): executes
  ``(1 - alpha) * a + alpha * a_adv``.
* :class:`ProbabilisticActionAdversary` — PR-MDP (Tessler et al. 2019): executes ``a_adv``
  with probability ``alpha``, else ``a``.

Every wrapper restores the nominal model (or zero forces) at ``reset`` before applying its new
values, and seeds its own generator from ``reset(seed=...)`` — never a global RNG — so each
vector sub-env (seeded ``seed + i``) has its own reproducible stream. The applied values are
reported in ``info`` (``params``, ``forces``, ``executed_action``, ``adversarial_reward``).

About 500 lines: the five wrappers share the adversary-policy and state-capture mixins and the
samplers defined here, so they stay together; the config factory is in ``envs/factory.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils.seeding import np_random

from rlrobust.core.errors import ConfigError, PerturbationError, SpaceError, choices
from rlrobust.core.seeding import numpy_generator, spawn_seeds
from rlrobust.envs.mujoco_params import PhysicalParameters, physical_parameters

Values = dict[str, float]
Bounds = dict[str, tuple[float, float]]
AdversaryPolicy = Callable[[Any], Any]

# Index into spawn_seeds(seed, len(_STREAM)): each wrapper kind draws from its own stream, so
# stacked wrappers seeded with the same reset seed are not correlated with each other or with
# the env. New streams go at the end: SeedSequence's first words do not depend on the count.
_STREAM = {"params": 0, "dynamic": 1, "force": 2, "action": 3, "observation": 4, "attack": 5, "reward": 6}


def stream_generator(seed: int | None, stream: str) -> np.random.Generator:
    """The generator of one wrapper kind (``stream``, a key of ``_STREAM``) for reset seed ``seed``."""
    if seed is None:  # unseeded first reset: fresh entropy, as Gymnasium does for np_random
        return np_random(None)[0]
    return numpy_generator(spawn_seeds(seed, len(_STREAM))[_STREAM[stream]])


class UniformSampler:
    """Draws each parameter uniformly from its ``[low, high]`` box (domain randomization)."""

    def __init__(self, bounds: Mapping[str, Sequence[float]]) -> None:
        self.bounds: Bounds = {k: (float(v[0]), float(v[1])) for k, v in bounds.items()}

    def __call__(self, rng: np.random.Generator) -> Values:
        return {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in self.bounds.items()}


class SequenceSampler:
    """Draws one of a fixed list of parameter settings (uniformly, from the wrapper's generator).

    Stateless on purpose: Gymnasium may recreate a wrapper from its spec with the same sampler
    object, and vector sub-envs may share one.
    """

    def __init__(self, points: Sequence[Mapping[str, float]]) -> None:
        if not points:
            raise PerturbationError("SequenceSampler needs at least one point")
        self.points = [dict(p) for p in points]

    def __call__(self, rng: np.random.Generator) -> Values:
        return dict(self.points[int(rng.integers(len(self.points)))])


class _StateFields:
    """``capture_state``/``restore_state`` (:mod:`rlrobust.core.env_state`'s protocol) of the
    attributes named in ``_state_fields``: the wrapper's generator, its current values and the
    adversary's last observation, so a resumed run continues mid-episode bit for bit. A sampler
    with state of its own may implement the same two methods."""

    _state_fields: tuple[str, ...] = ()

    def capture_state(self) -> dict[str, Any]:
        state = {k: copy.deepcopy(getattr(self, k)) for k in self._state_fields}
        sampler = getattr(self, "sampler", None)
        if callable(getattr(sampler, "capture_state", None)):
            state["sampler"] = sampler.capture_state()  # type: ignore[union-attr]
        return state

    def restore_state(self, state: Mapping[str, Any]) -> None:
        for key in self._state_fields:
            setattr(self, key, copy.deepcopy(state[key]))
        if "sampler" in state:
            self.sampler.restore_state(state["sampler"])  # type: ignore[attr-defined]
        if "_active" in self._state_fields:  # the model parameters live in the model: write them back
            self.physical.apply(self._active)  # type: ignore[attr-defined]


class _AdversaryMixin:
    """The adversary-policy plumbing shared by the acting adversaries."""

    _adversary: AdversaryPolicy | str | None
    _held: np.ndarray | None
    _obs: Any
    _rng: np.random.Generator | None

    @property
    def adversary(self) -> AdversaryPolicy | str | None:
        """The adversary policy (``obs -> action``), ``"random"``, or None (held action / none)."""
        return self._adversary

    @adversary.setter
    def adversary(self, policy: AdversaryPolicy | str | None) -> None:
        if not (policy is None or policy == "random" or callable(policy)):
            raise ConfigError(f"adversary must be a callable obs -> action, 'random' or None, got {policy!r}")
        self._adversary = policy

    def set_adversary(self, policy: AdversaryPolicy | str | None) -> None:
        """Set the adversary policy (also reachable as ``vector_env.call("set_adversary", p)``)."""
        self.adversary = policy

    def set_adversary_action(self, action: Any | None) -> None:
        """Hold ``action`` (in the adversary action space) until changed; None clears it."""
        self._held = None if action is None else np.asarray(action, dtype=np.float64).copy()

    def _adversary_action(self, space: gym.spaces.Box) -> np.ndarray | None:
        if callable(self._adversary):
            action = np.asarray(self._adversary(self._obs), dtype=np.float64)
        elif self._adversary == "random":
            assert self._rng is not None
            action = self._rng.uniform(space.low, space.high)
        elif self._held is not None:
            action = self._held
        else:
            return None
        if action.shape != space.shape:
            raise SpaceError(f"adversary action has shape {action.shape}; expected {space.shape}")
        return np.clip(action, space.low, space.high)


class _ParameterWrapper(gym.Wrapper):
    """Owns the env's :class:`PhysicalParameters`; at most one such wrapper per env."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        inner = env
        while isinstance(inner, gym.Wrapper):
            if isinstance(inner, _ParameterWrapper):
                raise PerturbationError(
                    f"{env.unwrapped} already has a parameter wrapper ({type(inner).__name__}); "
                    "use one ParameterPerturbation or DynamicParameterAdversary per env"
                )
            inner = inner.env
        self.physical: PhysicalParameters = physical_parameters(env)

    def get_params(self) -> Values:
        """Every parameter's current value."""
        return self.physical.get()

    def nominal_params(self) -> Values:
        """Every parameter's nominal value (read from the model at construction)."""
        return self.physical.nominal()


class ParameterPerturbation(_StateFields, _ParameterWrapper, gym.utils.RecordConstructorArgs):
    """Static robust-MDP model: physical parameters held for an episode.

    Args:
        env: a MuJoCo or CartPole/Pendulum env (wrappers allowed).
        sampler: optional ``rng -> {name: value}`` called at each reset, e.g.
            :class:`UniformSampler` (domain randomization) or :class:`SequenceSampler`.
        bounds: optional box ``{name: (low, high)}``; every value set or sampled must lie in it.
            Defaults to the sampler's ``bounds`` when it has one.
        **values: fixed values, kept across resets (a sampler redraws the names it covers).

    ``reset(options={"params": {...}})`` sets values for that episode only.

    Raises:
        PerturbationError: unknown name, unphysical value or value outside ``bounds``.
    """

    _state_fields = ("_rng", "_fixed", "_active")

    def __init__(
        self,
        env: gym.Env,
        *,
        sampler: Callable[[np.random.Generator], Mapping[str, float]] | None = None,
        bounds: Mapping[str, Sequence[float]] | None = None,
        **values: float,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, sampler=sampler, bounds=bounds, **values)
        super().__init__(env)
        if bounds is None and sampler is not None:
            bounds = getattr(sampler, "bounds", None)
        self.bounds: Bounds | None = None if bounds is None else self.physical.check_bounds(bounds)
        if isinstance(sampler, SequenceSampler):
            for point in sampler.points:
                self._check(point)
        self.sampler = sampler
        self._fixed = self._check(values)
        self._active: Values = dict(self._fixed)
        self._rng: np.random.Generator | None = None
        self.physical.apply(self._active)

    def _check(self, values: Mapping[str, Any]) -> Values:
        return self.physical.validate(values, self.bounds)

    def set_params(self, **values: float) -> None:
        """Set parameters now and keep them for later episodes (names left out are unchanged)."""
        values = self._check(values)
        self._fixed.update(values)
        self._active.update(values)
        self.physical.apply(self._active)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None or self._rng is None:
            self._rng = stream_generator(seed, "params")
        options = dict(options or {})
        episode = dict(self._fixed)
        if "params" in options:
            episode.update(self._check(options.pop("params")))
        elif self.sampler is not None:
            episode.update(self._check(self.sampler(self._rng)))
        self._active = episode
        # Before the inner reset: observations computed at reset (e.g. Ant's contact forces,
        # HumanoidStandup's inertias) must already see this episode's model.
        self.physical.apply(episode)
        obs, info = self.env.reset(seed=seed, options=options or None)
        info["params"] = dict(episode)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["params"] = dict(self._active)
        return obs, reward, terminated, truncated, info


class DynamicParameterAdversary(
    _StateFields, _AdversaryMixin, _ParameterWrapper, gym.utils.RecordConstructorArgs
):
    """Dynamic robust-MDP model: an adversary picks the parameters before every step.

    The adversary acts in ``adversary_action_space = Box(-1, 1, (d,))``; action ``u`` maps
    affinely onto the box: ``low + (u + 1) / 2 * (high - low)``. Without an adversary (None and
    no held action) the model stays nominal. ``info["adversarial_reward"] = -reward``.

    Args:
        env: a MuJoCo or CartPole/Pendulum env.
        bounds: ``{name: (low, high)}``, the box the adversary moves in.
        adversary: policy ``obs -> u``, ``"random"``, or None.
    """

    _state_fields = ("_rng", "_active", "_held", "_obs")

    def __init__(
        self,
        env: gym.Env,
        bounds: Mapping[str, Sequence[float]],
        adversary: AdversaryPolicy | str | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, bounds=bounds, adversary=adversary)
        super().__init__(env)
        if not bounds:
            raise PerturbationError(
                f"DynamicParameterAdversary needs a box; valid names: {choices(self.physical.infos)}"
            )
        self.bounds: Bounds = self.physical.check_bounds(bounds)
        self._low = np.array([lo for lo, _ in self.bounds.values()])
        self._high = np.array([hi for _, hi in self.bounds.values()])
        self.adversary_action_space = gym.spaces.Box(-1.0, 1.0, (len(self.bounds),), np.float64)
        self._adversary = None
        self.adversary = adversary
        self._held = None
        self._obs = None
        self._rng = None
        self._active: Values = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None or self._rng is None:
            self._rng = stream_generator(seed, "dynamic")
        self.physical.restore()
        self._active = {}
        self._obs, info = self.env.reset(seed=seed, options=options)
        info["params"] = {}
        return self._obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        u = self._adversary_action(self.adversary_action_space)
        if u is not None:
            values = self._low + (u + 1.0) / 2.0 * (self._high - self._low)
            self._active = dict(zip(self.bounds, map(float, values)))
            self.physical.apply(self._active)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._obs = obs
        info["params"] = dict(self._active)
        info["adversarial_reward"] = -float(reward)
        return obs, reward, terminated, truncated, info


class ExternalForceAdversary(_StateFields, _AdversaryMixin, gym.Wrapper, gym.utils.RecordConstructorArgs):
    """RARL's adversary: world-frame forces on named bodies (MuJoCo ``xfrc_applied``).

    The adversary acts in ``Box(-1, 1, (len(bodies) * len(axes),))``, scaled by ``max_force``
    (newtons), body-major: ``[b0_ax0, b0_ax1, ..., b1_ax0, ...]``. Forces are written before
    every step and written again after ``reset`` (``mj_resetData`` zeroes ``xfrc_applied``), so
    ``info["forces"]`` — shape ``(len(bodies), 3)`` — always shows what acts.

    Args:
        env: a MuJoCo env.
        bodies: body names (``["foot"]``).
        max_force: force at adversary action +-1 (RRLS/RARL sets use 3.0).
        axes: which world axes the adversary pushes along, e.g. ``"xz"`` for planar robots.
        adversary: policy ``obs -> u``, ``"random"``, or None (held action or no force).
    """

    _state_fields = ("_rng", "_held", "_obs", "_forces")

    def __init__(
        self,
        env: gym.Env,
        bodies: Sequence[str],
        *,
        max_force: float = 3.0,
        axes: str = "xyz",
        adversary: AdversaryPolicy | str | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, bodies=bodies, max_force=max_force, axes=axes, adversary=adversary
        )
        super().__init__(env)
        base = env.unwrapped
        if not hasattr(base, "model") or not hasattr(base, "data"):
            raise PerturbationError(f"ExternalForceAdversary needs a MuJoCo env, got {base}")
        model = base.model  # type: ignore[attr-defined]
        valid = [model.body(i).name for i in range(1, model.nbody) if model.body(i).name]
        unknown = [b for b in bodies if b not in valid]
        if not bodies or unknown:
            raise PerturbationError(
                f"unknown or missing bodies {unknown or list(bodies)!r}; valid: {choices(valid)}"
            )
        if not axes or set(axes) - set("xyz") or len(set(axes)) != len(axes):
            raise PerturbationError(f"axes must be distinct letters of 'xyz', got {axes!r}")
        if not max_force >= 0:
            raise PerturbationError(f"max_force must be >= 0, got {max_force!r}")
        self.bodies = list(bodies)
        self.axes = axes
        self.max_force = float(max_force)
        self._body_ids = [model.body(b).id for b in bodies]
        self._axis_ids = ["xyz".index(a) for a in axes]
        self.adversary_action_space = gym.spaces.Box(-1.0, 1.0, (len(bodies) * len(axes),), np.float64)
        self._adversary = None
        self.adversary = adversary
        self._held = None
        self._obs = None
        self._rng = None
        self._forces = np.zeros((len(bodies), 3))

    def _apply_forces(self, u: np.ndarray | None) -> None:
        self._forces = np.zeros((len(self.bodies), 3))
        if u is not None:
            self._forces[:, self._axis_ids] = u.reshape(len(self.bodies), len(self.axes)) * self.max_force
        data = self.env.unwrapped.data  # type: ignore[attr-defined]
        data.xfrc_applied[self._body_ids, :3] = self._forces

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None or self._rng is None:
            self._rng = stream_generator(seed, "force")
        self._obs, info = self.env.reset(seed=seed, options=options)
        # A held push persists across resets; a policy's push is chosen at the next step.
        self._apply_forces(
            self._adversary_action(self.adversary_action_space) if self._adversary is None else None
        )
        info["forces"] = self._forces.copy()
        return self._obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self._apply_forces(self._adversary_action(self.adversary_action_space))
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._obs = obs
        info["forces"] = self._forces.copy()
        info["adversarial_reward"] = -float(reward)
        return obs, reward, terminated, truncated, info


class _ActionAdversary(_StateFields, _AdversaryMixin, gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Shared parts of the NR-MDP and PR-MDP wrappers."""

    _state_fields = ("_rng", "_held", "_obs")

    def __init__(self, env: gym.Env, alpha: float, adversary: AdversaryPolicy | str | None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, alpha=alpha, adversary=adversary)
        super().__init__(env)
        if not 0.0 <= float(alpha) <= 1.0:
            raise ConfigError(f"alpha must lie in [0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self._adversary = None
        self.adversary = adversary
        self._held = None
        self._obs = None
        self._rng = None

    @property
    def adversary_action_space(self) -> gym.Space:
        """The adversary plays in the agent's own action space."""
        return self.env.action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None or self._rng is None:
            self._rng = stream_generator(seed, "action")
        self._obs, info = self.env.reset(seed=seed, options=options)
        return self._obs, info

    def _adversary_move(self) -> Any:
        space = self.env.action_space
        if isinstance(space, gym.spaces.Discrete):  # PR-MDP only
            if callable(self._adversary):
                return int(self._adversary(self._obs))
            if self._adversary == "random":
                assert self._rng is not None
                return int(space.start + self._rng.integers(space.n))
            return int(self._held) if self._held is not None else None
        return self._adversary_action(space)

    def _executed(self, action: Any) -> Any:
        raise NotImplementedError

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        executed = self._executed(action)
        obs, reward, terminated, truncated, info = self.env.step(executed)
        self._obs = obs
        info["executed_action"] = executed
        info["adversarial_reward"] = -float(reward)
        return obs, reward, terminated, truncated, info


def _check_random_box(space: gym.Space, adversary: Any) -> None:
    if adversary in (None, "random") and isinstance(space, gym.spaces.Box) and not space.is_bounded():
        raise SpaceError(f"a random action adversary needs a bounded Box action space, got {space}")


class NoisyActionAdversary(_ActionAdversary):
    """NR-MDP (Tessler et al. 2019): executes ``(1 - alpha) * a + alpha * a_adv``.

    Args:
        env: an env with a bounded ``Box`` action space.
        alpha: weight of the adversary's action (0 = no adversary).
        adversary: policy ``obs -> a_adv``; ``"random"`` (default) draws ``a_adv`` uniformly
            from the action space with the wrapper's own generator; None uses a held action.
    """

    def __init__(
        self, env: gym.Env, alpha: float = 0.1, adversary: AdversaryPolicy | str | None = "random"
    ) -> None:
        if not isinstance(env.action_space, gym.spaces.Box):
            raise SpaceError(f"NoisyActionAdversary blends continuous actions; got {env.action_space}")
        _check_random_box(env.action_space, adversary)
        super().__init__(env, alpha, adversary)

    def _executed(self, action: Any) -> Any:
        adv = self._adversary_move()
        action = np.asarray(action)
        if adv is None:
            return action
        return ((1.0 - self.alpha) * action + self.alpha * adv).astype(action.dtype)


class ProbabilisticActionAdversary(_ActionAdversary):
    """PR-MDP (Tessler et al. 2019): with probability ``alpha`` the adversary's action is executed.

    The coin is drawn from the wrapper's own generator (seeded at reset) at every step.

    Args:
        env: an env with a ``Box`` or ``Discrete`` action space.
        alpha: probability of the switch.
        adversary: policy ``obs -> a_adv``; ``"random"`` (default) draws a uniform action; None
            uses a held action.
    """

    def __init__(
        self, env: gym.Env, alpha: float = 0.1, adversary: AdversaryPolicy | str | None = "random"
    ) -> None:
        if not isinstance(env.action_space, gym.spaces.Box | gym.spaces.Discrete):
            raise SpaceError(
                f"ProbabilisticActionAdversary needs a Box or Discrete action space; got {env.action_space}"
            )
        _check_random_box(env.action_space, adversary)
        super().__init__(env, alpha, adversary)

    def _executed(self, action: Any) -> Any:
        assert self._rng is not None, "call reset() before step()"
        if self._rng.random() >= self.alpha:  # one coin per step, from the wrapper's own stream
            return action
        adv = self._adversary_move()
        if adv is None:
            return action
        return adv.astype(np.asarray(action).dtype) if isinstance(adv, np.ndarray) else adv
