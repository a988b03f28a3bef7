"""Observation disruptions: the agent sees a disturbed state, the environment is untouched.

* :class:`ObservationNoise` — random noise (Gaussian or uniform) of a given scale, absolute
  per dimension or relative to each dimension's spread (Robust-Gymnasium's "observed state,
  random" disruption, Gu et al., ICLR 2025).
* :class:`ObservationAttack` — an adversary moves the observation within an ℓ∞ ball of
  radius ``eps`` to change the evaluated policy's decision: the state-adversarial MDP of Zhang
  et al. (NeurIPS 2020, https://arxiv.org/abs/2003.08938). With a torch policy (rlrobust's
  IQN/DSAC, SB3's DQN/QR-DQN/PPO/A2C/SAC/TD3/TQC, or any ``torch.nn.Module``) it is a gradient
  attack: FGSM (one signed step, Goodfellow et al. 2015) or PGD (projected signed steps, Madry et
  al. 2018). For a black-box callable it is a random search over the ball.

Both keep the observation space: a disturbed observation is clipped to the space's finite
bounds (CartPole's, for instance), and keeps the env's dtype. Both draw from their own
generator, seeded by ``reset(seed=...)``. Nothing they do reaches the simulator, so there is no
nominal model to restore; a scale or ``eps`` of 0 hands the env's observation through
unchanged, bit for bit. Both compose with the parameter wrappers of
:mod:`rlrobust.envs.perturbation` and with each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobust.core.errors import ConfigError, SpaceError, choices
from rlrobust.envs.perturbation import stream_generator

NOISE_DISTRIBUTIONS = ("gaussian", "uniform")
ATTACK_METHODS = ("fgsm", "pgd", "random")


def check_scale(value: Any, name: str, *, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``value`` as a float array of finite, non-negative entries (a scalar or one per dimension).

    Raises:
        ConfigError: a negative or non-finite entry, or a per-dimension array of the wrong shape.
    """
    arr = np.asarray(value, dtype=np.float64)
    if not (np.all(np.isfinite(arr)) and np.all(arr >= 0)):
        raise ConfigError(f"{name} must be finite and >= 0 (0 = no disruption), got {value!r}")
    if shape is not None and arr.ndim > 0 and arr.shape != shape:
        raise ConfigError(
            f"{name} must be a scalar or one value per observation dimension {shape}, got shape {arr.shape}"
        )
    return arr


def _box(env: gym.Env, wrapper: str) -> gym.spaces.Box:
    space = env.observation_space
    if not isinstance(space, gym.spaces.Box) or not np.issubdtype(space.dtype, np.floating):
        raise SpaceError(f"{wrapper} disturbs float Box observations; got {space}")
    return space


def _clip_to_space(obs: np.ndarray, space: gym.spaces.Box) -> np.ndarray:
    """Clip to the space's bounds (infinite bounds leave a dimension free), in the space's dtype."""
    return np.clip(obs, space.low, space.high).astype(space.dtype, copy=False)


def observation_spread(env: gym.Env, *, steps: int = 2000, seed: int = 0) -> np.ndarray:
    """Per-dimension standard deviation of the observations of ``steps`` uniformly random actions
    (episodes restarted as needed): a task's natural scale for :class:`ObservationNoise`'s
    ``relative_to``. Dimensions that never move get 1 so a relative scale still means something."""
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    seen = [np.asarray(obs, dtype=np.float64)]
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        seen.append(np.asarray(obs, dtype=np.float64))
        if terminated or truncated:
            obs, _ = env.reset()
    std = np.std(seen, axis=0)
    return np.where(std > 0, std, 1.0)


class _ObservationDisruption(gym.ObservationWrapper):
    """Shared plumbing: a generator per ``stream`` seeded at reset, and ``_disturb(obs, info)``
    applied to the observation of every reset and step (with ``info`` for what was done)."""

    stream: str
    _rng: np.random.Generator | None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None or self._rng is None:
            self._rng = stream_generator(seed, self.stream)
        obs, info = self.env.reset(seed=seed, options=options)
        return self._disturb(obs, info)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        obs, info = self._disturb(obs, info)
        return obs, reward, terminated, truncated, info

    def observation(self, observation: Any) -> Any:
        return self._disturb(observation, {})[0]

    def _disturb(self, obs: Any, info: dict) -> tuple[Any, dict]:
        raise NotImplementedError


class ObservationNoise(_ObservationDisruption, gym.utils.RecordConstructorArgs):
    """Adds random noise to every observation the agent receives (at reset and each step).

    Args:
        env: an env with a float ``Box`` observation space.
        scale: noise scale, a scalar or one value per dimension: the standard deviation for
            ``"gaussian"``, the half-width for ``"uniform"`` (``U[-scale, scale]``).
        distribution: ``"gaussian"`` or ``"uniform"``.
        relative_to: None (``scale`` is absolute), a per-dimension spread that ``scale``
            multiplies (e.g. :func:`observation_spread`), or ``"bounds"``: half the width of the
            observation space (every bound must be finite).

    The noise actually added is in ``info["observation_noise"]``.

    Raises:
        ConfigError: a negative or non-finite scale, an unknown distribution, a bad spread.
        SpaceError: a non-float or (with ``"bounds"``) unbounded observation space.
    """

    stream = "observation"

    def __init__(
        self,
        env: gym.Env,
        scale: float | Sequence[float] = 0.0,
        *,
        distribution: str = "gaussian",
        relative_to: Sequence[float] | str | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, scale=scale, distribution=distribution, relative_to=relative_to
        )
        gym.ObservationWrapper.__init__(self, env)
        space = _box(env, "ObservationNoise")
        if distribution not in NOISE_DISTRIBUTIONS:
            raise ConfigError(
                f"unknown noise distribution {distribution!r}; valid: {choices(NOISE_DISTRIBUTIONS)}"
            )
        self.distribution = distribution
        if isinstance(relative_to, str):
            if relative_to != "bounds":
                raise ConfigError(
                    f"relative_to must be None, 'bounds' or a per-dimension spread, got {relative_to!r}"
                )
            if not space.is_bounded():
                raise SpaceError(f"relative_to='bounds' needs finite observation bounds; got {space}")
            spread = (space.high.astype(np.float64) - space.low) / 2.0
        elif relative_to is None:
            spread = np.ones(space.shape)
        else:
            spread = check_scale(relative_to, "relative_to", shape=space.shape) * np.ones(space.shape)
        self._spread = spread
        self._rng: np.random.Generator | None = None
        self.set_disruption(scale=scale)

    def set_disruption(self, *, scale: float | Sequence[float]) -> None:
        """Change the noise scale (also what a suite's grid point sets)."""
        self.scale = check_scale(scale, "scale", shape=self.observation_space.shape)
        self._std = self.scale * self._spread  # per-dimension, in observation units
        self._active = bool(np.any(self._std > 0))

    def _disturb(self, obs: Any, info: dict) -> tuple[Any, dict]:
        if not self._active:  # zero scale: the env's observation, untouched
            return obs, info
        assert self._rng is not None, "call reset() before step()"
        shape = self.observation_space.shape
        if self.distribution == "gaussian":
            noise = self._rng.normal(0.0, 1.0, shape) * self._std
        else:
            noise = self._rng.uniform(-1.0, 1.0, shape) * self._std
        info["observation_noise"] = noise
        return _clip_to_space(np.asarray(obs, dtype=np.float64) + noise, self.observation_space), info


# ---------------------------------------------------------------------------------------------
# Adversarial attack
# ---------------------------------------------------------------------------------------------


def _decision(module: Any, obs: Any, discrete: bool) -> Any:
    """The action of a torch module read as a policy: argmax of its scores, or its output."""
    import torch

    param = next(module.parameters(), None)
    with torch.no_grad():
        x = torch.as_tensor(
            np.asarray(obs), dtype=torch.float32, device=None if param is None else param.device
        )
        out = module(x.unsqueeze(0))[0]
    return int(out.argmax()) if discrete else out.cpu().numpy()


def differentiable_policy(policy: Any) -> Callable[[Any], Any] | None:
    """The torch function ``obs (B, d) -> output`` behind ``policy``, or None if it has none.

    The output is what the policy decides from: per-action scores (Q-values or logits,
    ``(B, A)``) for discrete actions, the deterministic action ``(B, d_a)`` for continuous
    ones. Recognised: objects with a ``policy_output`` method (rlrobust's IQN and DSAC, and the
    :class:`~rlrobust.interop.policies.AgentPolicy` around them), SB3 models and policies
    (and :class:`~rlrobust.interop.sb3.SB3Policy`), and ``torch.nn.Module``.
    """
    return _torch_forward(policy)[0]


def _torch_forward(policy: Any) -> tuple[Callable[[Any], Any] | None, Any]:
    """(``differentiable_policy(policy)``, the torch device its inputs go to)."""
    agent = getattr(policy, "agent", policy)  # AgentPolicy wraps an agent
    if hasattr(agent, "policy_output"):
        return agent.policy_output, getattr(agent, "device", "cpu")
    for candidate in (policy, getattr(policy, "policy", None)):  # SB3 policy, SB3Policy or algorithm
        if type(candidate).__module__.startswith(("stable_baselines3", "sb3_contrib")):
            forward = _sb3_forward(candidate)
            if forward is not None:
                return forward, candidate.device
    import torch

    if isinstance(policy, torch.nn.Module):
        param = next(policy.parameters(), None)
        return policy, "cpu" if param is None else param.device
    return None, None


def _sb3_forward(policy: Any) -> Callable[[Any], Any] | None:
    """Differentiable decision output of an SB3 ``BasePolicy``: Q-values (DQN), mean quantiles
    (QR-DQN), action logits (discrete actor-critic) or the deterministic action (SAC, TD3, TQC,
    PPO/A2C's Gaussian mean)."""
    import torch

    if not isinstance(policy, torch.nn.Module) or not hasattr(policy, "predict"):
        return None
    if hasattr(policy, "q_net"):  # DQN
        return lambda obs: policy.q_net(obs)
    if hasattr(policy, "quantile_net"):  # QR-DQN: (B, n_quantiles, A) -> expected Q
        return lambda obs: policy.quantile_net(obs).mean(dim=1)
    if hasattr(policy, "get_distribution") and isinstance(policy.action_space, gym.spaces.Discrete):
        return lambda obs: policy.get_distribution(obs).distribution.logits
    if isinstance(policy.action_space, gym.spaces.Box):
        return lambda obs: policy._predict(obs, deterministic=True)
    return None


class ObservationAttack(_ObservationDisruption, gym.utils.RecordConstructorArgs):
    """Replaces each observation by the worst one for ``policy`` within ``‖δ‖∞ ≤ eps`` (SA-MDP).

    The adversary knows the evaluated policy (``policy``, or later ``set_policy``) and pushes
    it off its clean decision:

    * ``"fgsm"`` / ``"pgd"`` (gradient; needs a torch policy, see :func:`differentiable_policy`).
      Discrete actions: maximise the cross-entropy of the scores against the clean greedy action
      (SA-DQN's attack). Continuous actions: maximise ``‖π(s + δ) − π(s)‖²`` (the
      maximal-action-difference attack of SA-DDPG/SA-PPO), from a random start in the ball
      because that objective's gradient vanishes at ``δ = 0``. PGD takes ``steps`` signed steps
      of ``step_size`` (default ``2.5·eps/steps``, Madry et al.), projecting onto the ball.
    * ``"random"`` (black box, any callable ``obs -> action``): ``samples`` uniform draws in the
      ball; the one that moves the action most (discrete: the first that changes it) is used.

    ``info["observation_attack"]`` holds the applied ``δ``.

    Args:
        env: an env with a float ``Box`` observation space.
        eps: radius of the ℓ∞ ball, a scalar or one per dimension (0 = no attack).
        policy: the attacked policy (may be set later with ``set_policy``).
        method: ``"pgd"``, ``"fgsm"`` or ``"random"``.
        steps: PGD iterations.
        step_size: PGD step (None: ``2.5 * eps / steps``).
        samples: random-search draws per step.
        fallback: with a gradient method and a policy that has no torch function, use random
            search instead of raising.

    Raises:
        ConfigError: a negative or non-finite ``eps``, an unknown method, bad ``steps``/``samples``,
            or a gradient method on a non-differentiable policy without ``fallback``.
    """

    stream = "attack"

    def __init__(
        self,
        env: gym.Env,
        eps: float | Sequence[float] = 0.0,
        *,
        policy: Callable[[Any], Any] | None = None,
        method: str = "pgd",
        steps: int = 10,
        step_size: float | None = None,
        samples: int = 32,
        fallback: bool = False,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, eps=eps, method=method, steps=steps, step_size=step_size, samples=samples, fallback=fallback
        )
        gym.ObservationWrapper.__init__(self, env)
        _box(env, "ObservationAttack")
        if method not in ATTACK_METHODS:
            raise ConfigError(f"unknown attack method {method!r}; valid: {choices(ATTACK_METHODS)}")
        if int(steps) < 1 or int(samples) < 1:
            raise ConfigError(f"steps and samples must be >= 1, got steps={steps!r}, samples={samples!r}")
        if step_size is not None and not (math.isfinite(step_size) and step_size > 0):
            raise ConfigError(
                f"step_size must be finite and > 0 (or None: 2.5 * eps / steps), got {step_size!r}"
            )
        self.method, self.steps, self.samples, self.fallback = (
            method,
            int(steps),
            int(samples),
            bool(fallback),
        )
        self.step_size = step_size
        self.discrete = isinstance(env.action_space, gym.spaces.Discrete)
        self._rng: np.random.Generator | None = None
        self.policy: Callable[[Any], Any] | None = None
        self._act: Callable[[Any], Any] | None = None
        self._forward: Callable[[Any], Any] | None = None
        self._device: Any = None
        self.set_disruption(eps=eps)
        if policy is not None:
            self.set_policy(policy)

    @property
    def active_method(self) -> str:
        """The method in use: ``method``, or ``"random"`` after a fallback."""
        return "random" if self._forward is None and self.method != "random" else self.method

    def set_disruption(self, *, eps: float | Sequence[float]) -> None:
        """Change the ball's radius (also what a suite's grid point sets)."""
        self.eps = check_scale(eps, "eps", shape=self.observation_space.shape) * np.ones(
            self.observation_space.shape
        )

    def set_policy(self, policy: Callable[[Any], Any]) -> None:
        """Attack ``policy`` (an agent, SB3 model, :mod:`rlrobust.interop.policies` wrapper,
        torch module or callable ``obs -> action``)."""
        import torch

        from rlrobust.interop.policies import as_policy

        forward, device = _torch_forward(policy)
        if self.method != "random" and forward is None and not self.fallback:
            raise ConfigError(
                f"the {self.method!r} attack needs a differentiable torch policy (rlrobust IQN/DSAC, an SB3 "
                f"model, a torch.nn.Module or an object with policy_output); {type(policy).__name__} is not one. "
                "Use method='random' or fallback=True for a black-box random-search attack"
            )
        self.policy = policy
        self._forward = None if self.method == "random" else forward
        self._device = device
        if isinstance(policy, torch.nn.Module) and forward is policy:  # decide from its output
            self._act = lambda obs: _decision(policy, obs, self.discrete)
        else:
            self._act = as_policy(policy)

    def _disturb(self, obs: Any, info: dict) -> tuple[Any, dict]:
        if not np.any(self.eps > 0):  # eps 0: the env's observation, untouched
            return obs, info
        if self.policy is None:
            raise ConfigError(
                "ObservationAttack has no policy to attack: pass policy=... or call set_policy first"
            )
        assert self._rng is not None, "call reset() before step()"
        clean = np.asarray(obs, dtype=np.float64)
        if self.active_method == "random":
            adv = self._random_search(clean)
        else:
            adv = self._gradient_attack(clean)
        adv = _clip_to_space(adv, self.observation_space)
        info["observation_attack"] = adv.astype(np.float64) - clean
        return adv, info

    def _random_search(self, clean: np.ndarray) -> np.ndarray:
        assert self._act is not None and self._rng is not None
        space = self.observation_space
        base = np.asarray(self._act(_clip_to_space(clean, space)))
        best, best_gap = clean, -1.0
        for _ in range(self.samples):
            cand = clean + self._rng.uniform(-1.0, 1.0, clean.shape) * self.eps
            action = np.asarray(self._act(_clip_to_space(cand, space)))
            if self.discrete:
                if not np.array_equal(action, base):
                    return cand
                continue
            gap = float(np.sum((action.astype(np.float64) - base) ** 2))
            if gap > best_gap:
                best, best_gap = cand, gap
        return best

    def _gradient_attack(self, clean: np.ndarray) -> np.ndarray:
        import torch

        assert self._forward is not None and self._rng is not None
        forward, device, dtype = self._forward, self._device, torch.float32
        x0 = torch.as_tensor(clean, dtype=dtype, device=device).unsqueeze(0)
        eps = torch.as_tensor(self.eps, dtype=dtype, device=device)
        with torch.no_grad():
            out0 = forward(x0)
            target = out0.argmax(dim=1) if self.discrete else out0
        if self.discrete:
            delta = torch.zeros_like(x0)
        else:  # MAD's gradient is 0 at delta = 0: start inside the ball
            delta = (
                torch.as_tensor(self._rng.uniform(-1.0, 1.0, clean.shape), dtype=dtype, device=device) * eps
            )
            delta = delta.unsqueeze(0)
        if self.method == "fgsm":
            steps, size = 1, eps
        else:
            steps = self.steps
            size = eps * (2.5 / steps) if self.step_size is None else torch.full_like(eps, self.step_size)
        for _ in range(steps):
            delta.requires_grad_(True)
            with torch.enable_grad():
                out = forward(x0 + delta)
                if self.discrete:
                    loss = torch.nn.functional.cross_entropy(out, target)
                else:
                    loss = ((out - target) ** 2).sum()
                (grad,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                delta = torch.maximum(torch.minimum(delta + size * grad.sign(), eps), -eps)
        return clean + delta.detach().squeeze(0).cpu().double().numpy()
